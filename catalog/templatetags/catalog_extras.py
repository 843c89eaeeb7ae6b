"""Template helpers of the catalogue pages: posters, stars, pagination links."""
from django import template
from django.urls import reverse

from catalog import selectors
from catalog.posters import poster_url
from catalog.models import HALF_STARS

register = template.Library()


@register.simple_tag
def poster_src(movie) -> str:
    """The stored poster's URL, else the poster hosted elsewhere, else the generated placeholder."""
    return poster_url(movie)


@register.simple_tag
def placeholder_src(movie) -> str:
    """The generated placeholder, used when a remote poster fails to load."""
    return reverse("catalog:poster", args=[movie.pk])


@register.simple_tag
def half_star_choices():
    """(value, label) from 0.5 up to 5, so arrow keys step through the stars in reading order."""
    return [(f"{value:.1f}", f"{value:g} star{'s' if value != 1 else ''}") for value in HALF_STARS]


@register.filter
def score_value(score) -> str:
    """A stored score as the widget's radio value: 4.0 -> "4.0"."""
    return f"{score:.1f}" if score is not None else ""


@register.filter
def lookup(mapping, key):
    return mapping.get(key) if mapping else None


@register.filter
def stars_text(score) -> str:
    """4.5 -> "★★★★½" (for sighted users; pages also give the number)."""
    if score is None:
        return ""
    whole = int(score)
    return "★" * whole + ("½" if score - whole >= 0.5 else "")


@register.simple_tag(takes_context=True)
def query_with(context, **changes) -> str:
    """The current query string with some parameters replaced (pagination, sorting)."""
    query = context["request"].GET.copy()
    for key, value in changes.items():
        query[key] = value
    return "?" + query.urlencode()


@register.simple_tag
def simulated_ratings_exist() -> bool:
    return selectors.simulated_users_exist()
