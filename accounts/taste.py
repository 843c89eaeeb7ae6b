"""Taste profile: what a user's ratings say about them, and small inline SVG charts of it.

The user's ratings are read once into a pandas DataFrame (with the films' statistics), and the
films' genres, directors and top-billed actors joined to it as frames (a fixed handful of queries
whatever the number of ratings); pandas computes every aggregate. The *_svg functions turn the
figures into self-contained SVG (no remote assets, no JS).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import pandas as pd
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from catalog.models import HALF_STARS, CastMember, Movie, Rating

TOP_BILLED = 5  # actors billed lower than this do not count towards "favourite actors"


@dataclass(frozen=True)
class Figure:
    """One labelled value of a chart: label, value, how many ratings it rests on, and a link."""

    label: str
    value: float
    count: int = 0
    url: str = ""
    reference: float | None = None  # e.g. everyone else's average, for comparisons


class UserRatings:
    """One user's ratings as DataFrames: `frame` (movie_id, score, the film's rating_mean and
    rating_count) and, on demand, the same rows joined to the films' genres, directors and actors."""

    def __init__(self, user):
        self.user = user

    @cached_property
    def frame(self) -> pd.DataFrame:
        rows = Rating.objects.filter(user=self.user).values_list(
            "movie_id", "score", "movie__rating_mean", "movie__rating_count")
        return pd.DataFrame.from_records(rows, columns=["movie_id", "score", "rating_mean", "rating_count"])

    def _joined(self, rows, columns) -> pd.DataFrame:
        links = pd.DataFrame.from_records(rows, columns=["movie_id", *columns])
        return links.merge(self.frame[["movie_id", "score"]], on="movie_id")

    @cached_property
    def genres(self) -> pd.DataFrame:
        rows = Movie.genres.through.objects.filter(movie__ratings__user=self.user).values_list("movie_id", "genre__name")
        return self._joined(rows, ["name"])

    @cached_property
    def directors(self) -> pd.DataFrame:
        rows = Movie.directors.through.objects.filter(movie__ratings__user=self.user).values_list(
            "movie_id", "director_id", "director__name")
        return self._joined(rows, ["person_id", "name"])

    @cached_property
    def actors(self) -> pd.DataFrame:
        rows = CastMember.objects.filter(order__lt=TOP_BILLED, movie__ratings__user=self.user).values_list(
            "movie_id", "actor_id", "actor__name")
        return self._joined(rows, ["person_id", "name"])


def _ratings(user, ratings: UserRatings | None) -> UserRatings:
    return ratings if ratings is not None else UserRatings(user)


def rating_summary(user, *, ratings: UserRatings | None = None) -> dict:
    """{"count": number of ratings, "mean": average stars or None}."""
    scores = _ratings(user, ratings).frame["score"]
    return {"count": len(scores), "mean": float(scores.mean()) if len(scores) else None}


def rating_histogram(user, *, ratings: UserRatings | None = None) -> list[Figure]:
    """How many movies the user gave each half-star value, ½ to 5 (all ten, zeros included)."""
    counts = _ratings(user, ratings).frame["score"].value_counts().reindex(HALF_STARS, fill_value=0)
    return [Figure(label=f"{score:g}", value=int(n), count=int(n)) for score, n in counts.items()]


def _averages(joined: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Number of ratings (`n`) and average stars (`average`) per group."""
    return joined.groupby(by, as_index=False).agg(n=("score", "size"), average=("score", "mean"))


def genre_averages(user, *, min_ratings: int = 1, ratings: UserRatings | None = None) -> list[Figure]:
    """The user's average stars per genre (best first), for genres with at least min_ratings."""
    table = _averages(_ratings(user, ratings).genres, ["name"])
    table = table[table["n"] >= min_ratings].sort_values(["average", "n", "name"], ascending=[False, False, True])
    return [Figure(label=row.name, value=float(row.average), count=int(row.n)) for row in table.itertuples()]


def ratings_against_everyone(user, *, n: int = 5, min_gap: float = 1.0, min_others: int = 2,
                             ratings: UserRatings | None = None) -> dict:
    """Movies the user rates far above / below everyone else: {"above": [...], "below": [...]}.

    Everyone else's average leaves the user's own rating out (from the denormalised
    Movie.rating_mean / rating_count); only movies at least min_others others rated count.
    """
    frame = _ratings(user, ratings).frame
    frame = frame[frame["rating_count"] > min_others].copy()
    frame["others_mean"] = (frame["rating_mean"] * frame["rating_count"] - frame["score"]) / (frame["rating_count"] - 1)
    frame["gap"] = frame["score"] - frame["others_mean"]
    above = frame[frame["gap"] >= min_gap]
    below = frame[frame["gap"] <= -min_gap]
    movies = Movie.objects.in_bulk(pd.concat([above["movie_id"], below["movie_id"]]).tolist())
    frame_titles = {pk: movie.title for pk, movie in movies.items()}

    def figures(rows, ascending):
        rows = rows.assign(title=rows["movie_id"].map(frame_titles))
        rows = rows.sort_values(["gap", "title"], ascending=[ascending, True]).head(n)
        return [
            Figure(label=str(movies[row.movie_id]), value=float(row.gap), url=movies[row.movie_id].get_absolute_url(),
                   reference=float(row.others_mean), count=int(row.rating_count) - 1)
            for row in rows.itertuples()
        ]

    return {"above": figures(above, False), "below": figures(below, True)}


def _favourite_people(joined: pd.DataFrame, url_name: str, *, n: int, min_movies: int, prior: float) -> list[Figure]:
    table = _averages(joined, ["person_id", "name"])
    table = table[table["n"] >= min_movies].assign(shrunk=lambda t: _shrunk(t["average"], t["n"], prior))
    table = table.sort_values(["shrunk", "name"], ascending=[False, True]).head(n)
    return [Figure(label=row.name, value=float(row.average), count=int(row.n), url=reverse(url_name, args=[row.person_id]))
            for row in table.itertuples()]


def favourite_directors(user, *, n: int = 5, min_movies: int = 2, prior: float | None = None,
                        ratings: UserRatings | None = None) -> list[Figure]:
    """Directors whose movies the user rates highest (at least min_movies rated)."""
    ratings = _ratings(user, ratings)
    prior = prior if prior is not None else rating_summary(user, ratings=ratings)["mean"] or 0.0
    return _favourite_people(ratings.directors, "catalog:director", n=n, min_movies=min_movies, prior=prior)


def favourite_actors(user, *, n: int = 5, min_movies: int = 2, prior: float | None = None,
                     ratings: UserRatings | None = None) -> list[Figure]:
    """Top-billed actors whose movies the user rates highest (at least min_movies rated)."""
    ratings = _ratings(user, ratings)
    prior = prior if prior is not None else rating_summary(user, ratings=ratings)["mean"] or 0.0
    return _favourite_people(ratings.actors, "catalog:actor", n=n, min_movies=min_movies, prior=prior)


def _shrunk(average, count, prior: float, weight: int = 2):
    """Average pulled towards the user's overall mean, so 2 films at 5★ don't beat 10 at 4.8★."""
    return (average * count + prior * weight) / (count + weight)


def taste_profile(user) -> dict:
    """Everything the taste-profile page shows, charts included."""
    ratings = UserRatings(user)
    summary = rating_summary(user, ratings=ratings)
    histogram = rating_histogram(user, ratings=ratings)
    genres = genre_averages(user, min_ratings=2 if summary["count"] >= 20 else 1, ratings=ratings)[:12]
    contrasts = ratings_against_everyone(user, ratings=ratings)
    prior = summary["mean"] or 0.0
    directors = favourite_directors(user, prior=prior, ratings=ratings)
    actors = favourite_actors(user, prior=prior, ratings=ratings)
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

