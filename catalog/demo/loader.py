"""Write the demo catalogue and its simulated users and ratings to the database (idempotently),
and remove it again before real data moves in."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from tqdm import tqdm

from catalog.demo.catalogue import DemoFilm, load_films
from catalog.demo.simulation import DEFAULT_SEED, DEFAULT_USERS, SimulatedRatings, simulate
from catalog.models import Actor, CastMember, Director, Genre, Movie, NotInterested, Rating, Tag, WatchlistEntry
from catalog.services import refresh_movie_stats
from catalog.text import normalize

BATCH_SIZE = 2000
USER_PREFIX = "demo-"


@dataclass(frozen=True)
class DemoLoadSummary:
    """What the demo catalogue holds in the database after a load, and how much of it this load added."""

    movies: int
    people: int
    users: int
    ratings: int
    new_movies: int
    new_people: int
    new_users: int
    new_ratings: int

    def __str__(self) -> str:
        return (
            f"Demo catalogue: {self.movies} movies ({self.new_movies} new), {self.people} people "
            f"({self.new_people} new), {self.users} simulated users ({self.new_users} new), "
            f"{self.ratings} ratings ({self.new_ratings} new). The users and their ratings are simulated, "
            f"not real opinions."
        )


def demo_external_id(index: int) -> str:
    return f"{USER_PREFIX}{index}"


def load_demo_catalogue(*, n_users: int = DEFAULT_USERS, seed: int = DEFAULT_SEED, now: dt.datetime | None = None,
                        progress: bool = True) -> DemoLoadSummary:
    """Load the demo films, their people and genres, the simulated users and their ratings.

    Idempotent: movies are matched by (title, year), people by name, users by (source, external_id)
    and ratings by (user, movie); what already exists is kept as it is, only what is missing is
    added. Everything happens in one transaction, then the movie rating statistics are refreshed.
    Ratings are timestamped within the ~3 years before `now` (default: the start of today, UTC).
    """
    films = load_films()
    if now is None:
        now = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    simulation = simulate(films, n_users=n_users, seed=seed, now=now)

    with transaction.atomic(), tqdm(total=5, desc="Demo catalogue", unit="step", disable=not progress) as bar:
        bar.set_postfix_str("genres and people")
        genre_ids = _ensure_genres(films)
        director_ids, new_directors = _ensure_people(Director, {n for f in films for n in f.directors})
        actor_ids, new_actors = _ensure_people(Actor, {n for f in films for n in f.cast})
        bar.update()
        bar.set_postfix_str("movies")
        movie_ids, new_movies = _ensure_movies(films, genre_ids, director_ids, actor_ids)
        bar.update()
        bar.set_postfix_str("simulated users")
        user_ids, new_users = _ensure_users(simulation)
        bar.update()
        bar.set_postfix_str("simulated ratings")
        new_ratings = _ensure_ratings(simulation, films, movie_ids, user_ids, bar)
        bar.set_postfix_str("movie statistics")
        refresh_movie_stats()
        bar.update()

    return DemoLoadSummary(
        movies=len(movie_ids),
        people=len(director_ids) + len(actor_ids),
        users=len(user_ids),
        ratings=Rating.objects.filter(user_id__in=user_ids.values()).count(),
        new_movies=new_movies,
        new_people=new_directors + new_actors,
        new_users=new_users,
        new_ratings=new_ratings,
    )


def _ensure_genres(films: list[DemoFilm]) -> dict[str, int]:
    names = sorted({g for f in films for g in f.genres})
    existing = set(Genre.objects.filter(name__in=names).values_list("name", flat=True))
    Genre.objects.bulk_create([Genre(name=n, slug=slugify(n)) for n in names if n not in existing])
    return dict(Genre.objects.filter(name__in=names).values_list("name", "pk"))


def _ensure_people(model, names: set[str]) -> tuple[dict[str, int], int]:
    """name -> id for every name, creating the missing people (search_name as Person.save() sets it)."""
    existing = set(model.objects.filter(name__in=names).values_list("name", flat=True))
    missing = sorted(names - existing)
    model.objects.bulk_create([model(name=n, search_name=normalize(n)) for n in missing], batch_size=BATCH_SIZE)
    return dict(model.objects.filter(name__in=names).values_list("name", "pk")), len(missing)


def _existing_movie_ids(films: list[DemoFilm]) -> dict[tuple[str, int], int]:
    titles = {f.title for f in films}
    keys = {f.key for f in films}
    found = {}
    for movie_id, title, year in Movie.objects.filter(title__in=titles).values_list("pk", "title", "year"):
        if (title, year) in keys:
            found.setdefault((title, year), movie_id)
    return found


def _ensure_movies(films, genre_ids, director_ids, actor_ids) -> tuple[dict[tuple[str, int], int], int]:
    """(title, year) -> id for every demo film; only newly created movies get genres, directors and cast."""
    existing = _existing_movie_ids(films)
    new_films = [f for f in films if f.key not in existing]
    movies = []
    for film in new_films:
        alternative_titles = "\n".join(film.alternative_titles)
        movies.append(Movie(
            title=film.title,
            year=film.year,
            alternative_titles=alternative_titles,
            synopsis=film.synopsis,
            runtime=film.runtime,
            search_title=normalize("\n".join([film.title, alternative_titles])),
        ))
    Movie.objects.bulk_create(movies, batch_size=BATCH_SIZE)
    movie_ids = _existing_movie_ids(films)

    genre_links, director_links, cast = [], [], []
    for film in new_films:
        movie_id = movie_ids[film.key]
        genre_links += [Movie.genres.through(movie_id=movie_id, genre_id=genre_ids[g]) for g in film.genres]
        director_links += [Movie.directors.through(movie_id=movie_id, director_id=director_ids[d])
                           for d in film.directors]
        cast += [CastMember(movie_id=movie_id, actor_id=actor_ids[a], order=order) for order, a in enumerate(film.cast)]
    Movie.genres.through.objects.bulk_create(genre_links, batch_size=BATCH_SIZE)
    Movie.directors.through.objects.bulk_create(director_links, batch_size=BATCH_SIZE)
    CastMember.objects.bulk_create(cast, batch_size=BATCH_SIZE)
    return movie_ids, len(new_films)


def _ensure_users(simulation: SimulatedRatings) -> tuple[dict[int, int], int]:
    """simulated user index -> user id, creating missing users (no email, unusable password)."""
    User = get_user_model()
    external_ids = {demo_external_id(u.index): u for u in simulation.users}
    simulated = User.objects.filter(source=User.Source.SIMULATED, external_id__in=external_ids)
    existing = set(simulated.values_list("external_id", flat=True))
    User.objects.bulk_create(
        [
            User(
                username=external_id,
                email="",
                password=make_password(None),
                source=User.Source.SIMULATED,
                external_id=external_id,
                birth_year=user.birth_year,
                gender=user.gender,
                occupation=user.occupation,
            )
            for external_id, user in external_ids.items()
            if external_id not in existing
        ],
        batch_size=BATCH_SIZE,
    )
    ids = dict(simulated.values_list("external_id", "pk"))
    return {u.index: ids[demo_external_id(u.index)] for u in simulation.users}, len(external_ids) - len(existing)


def _ensure_ratings(simulation, films, movie_ids, user_ids, bar) -> int:
    already = set(Rating.objects.filter(user_id__in=user_ids.values()).values_list("user_id", "movie_id"))
    to_create = []
    for u, f, score, stamp in zip(simulation.user_index, simulation.film_index, simulation.score,
                                  simulation.timestamp):
        user_id = user_ids[simulation.users[u].index]
        movie_id = movie_ids[films[f].key]
        if (user_id, movie_id) in already:
            continue
        when = dt.datetime.fromtimestamp(int(stamp), tz=dt.timezone.utc)
        to_create.append(Rating(user_id=user_id, movie_id=movie_id, score=float(score), created_at=when, updated_at=when))
    batches = range(0, len(to_create), BATCH_SIZE)
    bar.total += max(len(batches), 1) - 1  # the ratings step counts one tick per batch
    for start in batches:
        Rating.objects.bulk_create(to_create[start:start + BATCH_SIZE])
        bar.update()
    if not batches:
        bar.update()
    return len(to_create)


# --- removal -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoFootprint:
    """What of the demo catalogue a database holds."""

    users: int
    ratings: int
    movies: int

    def __bool__(self) -> bool:
        return bool(self.users or self.movies)

    def __str__(self) -> str:
        return (f"{self.movies:,} demo films, {self.users:,} simulated users and their {self.ratings:,} "
                "simulated ratings")


def _demo_only_movie_ids() -> set[int]:
    """Films the demo catalogue created: a demo film's title, year and synopsis (written for the
    demo), and no MovieLens, IMDb or TMDB id (a film real data brought, or a demo film a later
    import adopted, has one). A staff-made film of the same title has its own synopsis."""
    fingerprints = {(film.title, film.year, film.synopsis) for film in load_films()}
    candidates = Movie.objects.filter(
        title__in={title for title, _, _ in fingerprints}, movielens_id=None, imdb_id=None, tmdb_id=None
    ).values_list("pk", "title", "year", "synopsis")
    return {pk for pk, *fingerprint in candidates if tuple(fingerprint) in fingerprints}


def demo_footprint() -> DemoFootprint:
    User = get_user_model()
    simulated = User.objects.filter(source=User.Source.SIMULATED)
    return DemoFootprint(users=simulated.count(), ratings=Rating.objects.filter(user__in=simulated).count(),
                         movies=len(_demo_only_movie_ids()))


@dataclass(frozen=True)
class DemoRemovalSummary:
    users: int
    ratings: int
    movies: int
    people: int
    kept_movies: int

    def __str__(self) -> str:
        text = (f"Removed the demo catalogue: {self.users:,} simulated users, their {self.ratings:,} ratings, "
                f"{self.movies:,} demo-only films and {self.people:,} people credited only in them.")
        if self.kept_movies:
            text += (f" Kept {self.kept_movies:,} demo films that site users rated, listed or tagged "
                     "(their ratings are theirs).")
        return text


@transaction.atomic
def remove_demo_catalogue() -> DemoRemovalSummary:
    """Remove the simulated users with everything that is theirs (ratings, tags, lists), the films
    only the demo brought, and the demo's people left without films; nothing else.

    A demo film that a site user rated, listed or tagged stays (with the user's data), and so do
    films and people that real data or staff brought, and genres.
    """
    User = get_user_model()
    simulated = User.objects.filter(source=User.Source.SIMULATED)
    ratings = Rating.objects.filter(user__in=simulated).count()
    demo_movies = _demo_only_movie_ids()
    used = set()
    for model in (Rating, WatchlistEntry, NotInterested, Tag):
        used |= set(model.objects.filter(movie_id__in=demo_movies).exclude(user__source=User.Source.SIMULATED)
                    .values_list("movie_id", flat=True))
    removable = sorted(demo_movies - used)
    demo_people = {model: {name for film in load_films() for name in getattr(film, attribute)}
                   for model, attribute in ((Director, "directors"), (Actor, "cast"))}
    credited = {Director: set(Director.objects.filter(movies__in=removable).values_list("pk", flat=True)),
                Actor: set(Actor.objects.filter(movies__in=removable).values_list("pk", flat=True))}
    users = simulated.count()
    simulated.delete()
    Movie.objects.filter(pk__in=removable).delete()
    people = 0
    for model, pks in credited.items():
        orphans = model.objects.filter(pk__in=pks, name__in=demo_people[model], movies__isnull=True)
        people += orphans.delete()[1].get(model._meta.label, 0)
    refresh_movie_stats()
    return DemoRemovalSummary(users=users, ratings=ratings, movies=len(removable), people=people,
                              kept_movies=len(demo_movies) - len(removable))
