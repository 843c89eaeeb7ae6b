"""Taste profile: what a user's ratings say about them, and small inline SVG charts of it.

Selectors compute the figures in the database (a fixed handful of queries whatever the number
of ratings); the *_svg functions turn them into self-contained SVG (no remote assets, no JS).
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Avg, Count, ExpressionWrapper, F, FloatField
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from catalog.models import HALF_STARS, CastMember, Director, Genre, Rating

TOP_BILLED = 5  # actors billed lower than this do not count towards "favourite actors"


@dataclass(frozen=True)
class Figure:
    """One labelled value of a chart: label, value, how many ratings it rests on, and a link."""

    label: str
    value: float
    count: int = 0
    url: str = ""
    reference: float | None = None  # e.g. everyone else's average, for comparisons


def rating_summary(user) -> dict:
    """{"count": number of ratings, "mean": average stars or None}."""
    return Rating.objects.filter(user=user).aggregate(count=Count("id"), mean=Avg("score"))


def rating_histogram(user) -> list[Figure]:
    """How many movies the user gave each half-star value, ½ to 5 (all ten, zeros included)."""
    counts = dict(Rating.objects.filter(user=user).values_list("score").annotate(n=Count("id")))
    return [Figure(label=f"{score:g}", value=counts.get(score, 0), count=counts.get(score, 0)) for score in HALF_STARS]


def genre_averages(user, *, min_ratings: int = 1) -> list[Figure]:
    """The user's average stars per genre (best first), for genres with at least min_ratings."""
    rows = (
        Genre.objects.filter(movies__ratings__user=user)
        .annotate(n=Count("movies__ratings"), average=Avg("movies__ratings__score"))
        .filter(n__gte=min_ratings)
        .order_by("-average", "-n", "name")
    )
    return [Figure(label=genre.name, value=genre.average, count=genre.n) for genre in rows]


def ratings_against_everyone(user, *, n: int = 5, min_gap: float = 1.0, min_others: int = 2) -> dict:
    """Movies the user rates far above / below everyone else: {"above": [...], "below": [...]}.

    Everyone else's average leaves the user's own rating out (from the denormalised
    Movie.rating_mean / rating_count); only movies at least min_others others rated count.
    """
    others_mean = ExpressionWrapper(
        (F("movie__rating_mean") * F("movie__rating_count") - F("score")) / (F("movie__rating_count") - 1),
        output_field=FloatField(),
    )
    rated = (
        Rating.objects.filter(user=user, movie__rating_count__gt=min_others)
        .annotate(others_mean=others_mean)
        .annotate(gap=ExpressionWrapper(F("score") - F("others_mean"), output_field=FloatField()))
        .select_related("movie")
    )

    def figures(queryset):
        return [
            Figure(
                label=str(rating.movie),
                value=rating.gap,
                url=rating.movie.get_absolute_url(),
                reference=rating.others_mean,
                count=rating.movie.rating_count - 1,
            )
            for rating in queryset[:n]
        ]

    return {
        "above": figures(rated.filter(gap__gte=min_gap).order_by("-gap", "movie__title")),
        "below": figures(rated.filter(gap__lte=-min_gap).order_by("gap", "movie__title")),
    }


def favourite_directors(user, *, n: int = 5, min_movies: int = 2, prior: float | None = None) -> list[Figure]:
    """Directors whose movies the user rates highest (at least min_movies rated)."""
    people = (
        Director.objects.filter(movies__ratings__user=user)
        .annotate(n=Count("movies__ratings"), average=Avg("movies__ratings__score"))
        .filter(n__gte=min_movies)
    )
    mean = prior if prior is not None else rating_summary(user)["mean"] or 0.0
    ranked = sorted(people, key=lambda person: (-_shrunk(person.average, person.n, mean), person.name))
    return [Figure(label=p.name, value=p.average, count=p.n, url=p.get_absolute_url()) for p in ranked[:n]]


def favourite_actors(user, *, n: int = 5, min_movies: int = 2, prior: float | None = None) -> list[Figure]:
    """Top-billed actors whose movies the user rates highest (at least min_movies rated)."""
    roles = (
        CastMember.objects.filter(order__lt=TOP_BILLED, movie__ratings__user=user)
        .values("actor_id", "actor__name")
        .annotate(n=Count("movie__ratings"), average=Avg("movie__ratings__score"))
        .filter(n__gte=min_movies)
    )
    mean = prior if prior is not None else rating_summary(user)["mean"] or 0.0
    ranked = sorted(roles, key=lambda row: (-_shrunk(row["average"], row["n"], mean), row["actor__name"]))
    return [
        Figure(
            label=row["actor__name"],
            value=row["average"],
            count=row["n"],
            url=reverse("catalog:actor", args=[row["actor_id"]]),
        )
        for row in ranked[:n]
    ]


def _shrunk(average: float, count: int, prior: float, weight: int = 2) -> float:
    """Average pulled towards the user's overall mean, so 2 films at 5★ don't beat 10 at 4.8★."""
    return (average * count + prior * weight) / (count + weight)


def taste_profile(user) -> dict:
    """Everything the taste-profile page shows, charts included."""
    summary = rating_summary(user)
    histogram = rating_histogram(user)
    genres = genre_averages(user, min_ratings=2 if summary["count"] >= 20 else 1)[:12]
    contrasts = ratings_against_everyone(user)
    prior = summary["mean"] or 0.0
    directors, actors = favourite_directors(user, prior=prior), favourite_actors(user, prior=prior)
    return {
        "summary": summary,
        "histogram": histogram,
        "histogram_svg": histogram_svg(histogram),
        "genres": genres,
        "genres_svg": stars_bar_svg(genres, title="Your average stars by genre"),
        "contrasts": contrasts,
        "contrasts_svg": gap_bar_svg(
            contrasts["above"] + contrasts["below"], title="Movies you rate far from everyone else"
        ),
        "directors": directors,
        "directors_svg": stars_bar_svg(directors, title="Your favourite directors"),
        "actors": actors,
        "actors_svg": stars_bar_svg(actors, title="Your favourite actors"),
    }


# --- Inline SVG charts ------------------------------------------------------------------------

_FONT = 12


def _svg(width: int, height: int, title: str, body: SafeString) -> SafeString:
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" role="img" aria-label="{}"><title>{}</title>{}</svg>',
        width,
        height,
        title,
        title,
        body,
    )


def histogram_svg(bins: list[Figure], *, title: str = "How you rate: number of movies per star rating") -> SafeString:
    """Vertical bars, one per half star, with the count on top of each bar."""
    width, height, top, bottom, left = 420, 180, 18, 22, 8
    slot = (width - 2 * left) / len(bins)
    highest = max((figure.value for figure in bins), default=0) or 1
    plot = height - top - bottom

    def bar(index, figure):
        bar_height = plot * figure.value / highest
        x, y = left + index * slot + slot * 0.15, top + plot - bar_height
        return (
            f"{x:.1f}", f"{y:.1f}", f"{slot * 0.7:.1f}", f"{bar_height:.1f}",
            f"{figure.label} stars: {figure.value} movies",
            f"{x + slot * 0.35:.1f}", f"{y - 4:.1f}", figure.value,
            f"{x + slot * 0.35:.1f}", height - 6, figure.label,
        )

    body = format_html_join(
        "",
        '<rect class="bar" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>'
        '<text x="{}" y="{}" text-anchor="middle">{}</text>'
        '<text x="{}" y="{}" text-anchor="middle">{}★</text>',
        (bar(index, figure) for index, figure in enumerate(bins)),
    )
    axis = format_html(
        '<line class="axis" x1="{}" y1="{}" x2="{}" y2="{}"></line>', left, top + plot, width - left, top + plot
    )
    return _svg(width, height, title, format_html("{}{}", body, axis))


def stars_bar_svg(figures: list[Figure], *, title: str) -> SafeString:
    """Horizontal bars of average stars (0–5), labelled with the name, the average and the count."""
    if not figures:
        return SafeString("")
    row, label_width, width, value_width = 24, 130, 360, 80
    height = row * len(figures) + 6
    scale = (width - label_width - value_width) / 5

    def line(index, figure):
        y = 3 + index * row
        return (
            y + row * 0.68, _truncate(figure.label, 19),
            label_width, f"{y + 4:.1f}", f"{figure.value * scale:.1f}", row - 8,
            f"{figure.label}: {figure.value:.2f} stars over {figure.count} ratings",
            f"{label_width + figure.value * scale + 6:.1f}", y + row * 0.68,
            f"{figure.value:.1f}★", figure.count,
        )

    body = format_html_join(
        "",
        '<text x="0" y="{}">{}</text>'
        '<rect class="bar" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>'
        '<text x="{}" y="{}">{} ({})</text>',
        (line(index, figure) for index, figure in enumerate(figures)),
    )
    return _svg(width, height, title, body)


def gap_bar_svg(figures: list[Figure], *, title: str) -> SafeString:
    """Bars left (you rate it lower) or right (higher) of a centre line: your stars minus everyone's."""
    if not figures:
        return SafeString("")
    row, label_width, width = 24, 170, 400
    height = row * len(figures) + 6
    centre = label_width + (width - label_width) / 2
    scale = (width - label_width) / 2 / 4.5

    def line(index, figure):
        y = 3 + index * row
        length = abs(figure.value) * scale
        x = centre if figure.value >= 0 else centre - length
        css = "bar bar--above" if figure.value >= 0 else "bar bar--below"
        return (
            y + row * 0.68, _truncate(figure.label, 25),
            css, f"{x:.1f}", f"{y + 4:.1f}", f"{length:.1f}", row - 8,
            f"{figure.label}: you {figure.reference + figure.value:.1f}★, everyone else {figure.reference:.1f}★",
            f"{centre + (6 if figure.value < 0 else -6):.1f}", y + row * 0.68,
            "start" if figure.value < 0 else "end", f"{figure.value:+.1f}",
        )

    body = format_html_join(
        "",
        '<text x="0" y="{}">{}</text>'
        '<rect class="{}" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>'
        '<text x="{}" y="{}" text-anchor="{}">{}</text>',
        (line(index, figure) for index, figure in enumerate(figures)),
    )
    axis = format_html('<line class="axis" x1="{}" y1="0" x2="{}" y2="{}"></line>', centre, centre, height)
    return _svg(width, height, title, format_html("{}{}", body, axis))


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

