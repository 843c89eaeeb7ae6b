"""Template helpers of the catalogue pages: posters, stars, pagination links."""
from django import template
from django.conf import settings
from django.template.loader import render_to_string
from django.urls import get_script_prefix
from django.utils.safestring import mark_safe

from catalog import selectors
from catalog.posters import poster_url
from catalog.models import HALF_STARS, id_url

register = template.Library()


@register.simple_tag
def poster_src(movie) -> str:
    """The stored poster's URL, else the poster hosted elsewhere, else the generated placeholder."""
    return poster_url(movie)


@register.simple_tag
def placeholder_src(movie) -> str:
    """The generated placeholder, used when a remote poster fails to load."""
    return id_url("catalog:poster", movie.pk)


@register.simple_tag
def half_star_choices():
    """(value, label) from 0.5 up to 5, so arrow keys step through the stars in reading order."""
    return [(f"{value:.1f}", f"{value:g} star{'s' if value != 1 else ''}") for value in HALF_STARS]


@register.simple_tag
def star_inputs(movie_id: int, current: str = "") -> str:
    """The rating widget's half stars (radio and label each, left and right halves in turn) for
    one film, ``current`` (a score_value) checked: what a template loop over half_star_choices
    renders, a tenth of its cost (a film's page shows one widget, the ratings page one a film)."""
    movie_id = int(movie_id)
    return mark_safe("".join(
        f'<input type="radio" class="visually-hidden" id="rate-{movie_id}-{value}" name="score" value="{value}"'
        f'{" checked" if value == current else ""}><label for="rate-{movie_id}-{value}" '
        f'class="star-half star-half--{"left" if index % 2 == 0 else "right"}" title="{label}">'
        f'<span class="visually-hidden">{label}</span></label>'
        for index, (value, label) in enumerate(half_star_choices())))


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


# Rendered cards, by everything a card shows: pages list dozens of films, the same popular films
# on many users' pages, and rendering a card's template costs more than its queries. Cleared
# when full; not used with DEBUG, where templates change under a running server.
_CARDS: dict = {}
CARD_CACHE_SIZE = 4096


def _card_genres(movie) -> list:
    """The film's genres in name order: those read with it for its card (selectors.card_movies),
    else its own (prefetched by the caller)."""
    kept = getattr(movie, "card_genres", None)
    return kept if kept is not None else list(movie.genres.all())


@register.simple_tag
def movie_card(movie, score=None, predicted=None, explanation=""):
    """A film's card (catalog/_movie_card.html): poster, title, year, two genres, average stars,
    the user's stars (``score``) or the predicted ones, and why it is shown."""
    genre_names = [genre.name for genre in _card_genres(movie)[:2]]
    context = {"movie": movie, "genre_names": genre_names, "score": score, "predicted": predicted,
               "explanation": explanation}
    if settings.DEBUG:
        return render_to_string("catalog/_movie_card.html", context)
    key = (movie.pk, movie.title, movie.year, movie.poster.name, movie.poster_url, movie.rating_count,
           movie.rating_mean, tuple(genre_names), score, predicted, explanation, get_script_prefix())
    html = _CARDS.get(key)
    if html is None:
        html = render_to_string("catalog/_movie_card.html", context)
        if len(_CARDS) >= CARD_CACHE_SIZE:
            _CARDS.clear()
        _CARDS[key] = html
    return html


@register.simple_tag
def movie_cards(movies, user_ratings=None):
    """Each film's movie_card in a list item, with the user's stars from ``user_ratings`` ({film id:
    score}) on theirs: a grid's items in one call instead of a template loop (a page of search
    results holds 60 cards)."""
    return mark_safe("".join(
        f"<li>{movie_card(movie, score=lookup(user_ratings, movie.pk))}</li>" for movie in movies))
