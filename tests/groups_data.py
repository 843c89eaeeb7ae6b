"""A small world for the "watch together" tests: the taste catalogue (Westerns, Musicals, Horror),
four Sergio Leone westerns, three members with their own ratings, and a fitted model.

- Ana loves Westerns and gave two Leone films 5 stars (a favourite director);
- Ben likes Westerns too; Cleo likes Horror and hid one Western.
"""
import io
import zipfile
from dataclasses import dataclass

from catalog.models import Movie
from catalog.services import add_to_watchlist, hide_movie
from recommendations import services
from recommendations.group_services import create_group, create_invitation, join_group
from tests.factories import make_movie, make_rating, make_user
from tests.pipeline_data import FAST_FIT, make_taste_catalogue

GROUP_FIT = {**FAST_FIT, "epochs": 10, "ease_min_count": 1}


@dataclass
class World:
    ana: object
    ben: object
    cleo: object
    group: object
    leone: list
    rated: dict  # member name -> ids of films they rated
    hidden: set


def make_world(*, fit: bool = True, cleo_joins: bool = True) -> World:
    fans = make_taste_catalogue(users_per_genre=6, films_per_genre=16)
    leone = [make_movie(f"Leone Western {i}", year=1964 + i, genres=["Western"], directors=["Sergio Leone"],
                        runtime=[100, 130, 160, 175][i]) for i in range(4)]
    for fan in fans["Western"]:
        for movie in leone:
            make_rating(fan, movie, 4.5)
    westerns = list(Movie.objects.filter(genres__name="Western", title__startswith="Western").order_by("pk"))
    horror = list(Movie.objects.filter(genres__name="Horror").order_by("pk"))
    ana, ben, cleo = (make_user(f"{name}@example.com") for name in ("ana", "ben", "cleo"))
    for movie in (leone[0], leone[1]):
        make_rating(ana, movie, 5.0)
    for movie in westerns[:4]:
        make_rating(ana, movie, 4.5)
    for movie in westerns[4:8]:
        make_rating(ben, movie, 4.0)
    for movie in horror[:6]:
        make_rating(cleo, movie, 4.5)
    hide_movie(user=cleo, movie=westerns[10])
    rated = {
        "Ana": {leone[0].pk, leone[1].pk, *(m.pk for m in westerns[:4])},
        "Ben": {m.pk for m in westerns[4:8]},
        "Cleo": {m.pk for m in horror[:6]},
    }
    if fit:
        services.publish_model(services.fit_model(hyperparameters=GROUP_FIT, progress=False))
    group = create_group(owner=ana, name="Friday films", member_name="Ana")
    invitation = create_invitation(group, by=ana)
    join_group(token=invitation.token, user=ben, member_name="Ben")
    if cleo_joins:
        join_group(token=invitation.token, user=cleo, member_name="Cleo")
    return World(ana, ben, cleo, group, leone, rated, {westerns[10].pk})


def letterboxd_ratings(rows) -> bytes:
    """A Letterboxd ratings.csv of (title, year, stars)."""
    lines = ["Date,Name,Year,Letterboxd URI,Rating"]
    lines += [f"2024-01-02,{title},{year},https://boxd.it/x{i},{stars:g}" for i, (title, year, stars) in enumerate(rows)]
    return ("\n".join(lines) + "\n").encode()


def letterboxd_zip(ratings: bytes, watchlist_rows=()) -> bytes:
    """A Letterboxd export zip with ratings.csv and watchlist.csv of (title, year)."""
    watchlist = "Date,Name,Year,Letterboxd URI\n" + "".join(
        f"2024-02-01,{title},{year},https://boxd.it/w{i}\n" for i, (title, year) in enumerate(watchlist_rows))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("letterboxd-guest-2024-03-01-10-00-utc/ratings.csv", ratings)
        archive.writestr("letterboxd-guest-2024-03-01-10-00-utc/watchlist.csv", watchlist)
    return buffer.getvalue()


def horror_guest_file() -> tuple[bytes, set]:
    """A guest who rated five Horror films highly: (ratings.csv, their movie ids)."""
    movies = list(Movie.objects.filter(genres__name="Horror").order_by("-pk")[:5])
    return letterboxd_ratings([(m.title, m.year, 5.0) for m in movies]), {m.pk for m in movies}


def western_watchlist_film() -> Movie:
    return Movie.objects.filter(genres__name="Western", title__startswith="Western").order_by("-pk").first()


def put_on_watchlist(user, movie):
    add_to_watchlist(user=user, movie=movie)
