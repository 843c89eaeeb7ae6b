"""Small helpers that build catalogue rows and users for tests. Every test module may use them."""
import functools
import itertools

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.utils.text import slugify

from catalog.models import Actor, CastMember, Director, Genre, Movie
from catalog.services import rate_movie

DEFAULT_PASSWORD = "a-Long-test-passw0rd"
_sequence = itertools.count(1)


def make_genre(name: str) -> Genre:
    genre, _ = Genre.objects.get_or_create(name=name, defaults={"slug": slugify(name)})
    return genre


def make_movie(title: str | None = None, *, year: int | None = 2000, genres=(), directors=(), actors=(), **fields) -> Movie:
    """A movie with genres, directors and cast given by name (created as needed, cast in order)."""
    movie = Movie.objects.create(title=title or f"Movie {next(_sequence)}", year=year, **fields)
    movie.genres.set([make_genre(name) for name in genres])
    movie.directors.set([Director.objects.get_or_create(name=name)[0] for name in directors])
    for order, name in enumerate(actors):
        CastMember.objects.create(movie=movie, actor=Actor.objects.get_or_create(name=name)[0], order=order)
    return movie


@functools.cache
def _hashed(password: str) -> str:
    # Hashing is deliberately slow; tests create many users with the same password.
    return make_password(password)


def make_user(email: str | None = None, *, password: str = DEFAULT_PASSWORD, verified: bool = True, **fields):
    """A site user who can log in with email/password (email verified unless verified=False)."""
    email = email or f"user{next(_sequence)}@example.com"
    user = get_user_model().objects.create_user(email=email, **fields)
    user.password = _hashed(password)
    user.save(update_fields=["password"])
    EmailAddress.objects.create(user=user, email=email, verified=verified, primary=True)
    return user


def make_rating(user, movie, score: float = 4.0):
    """Rate through the real service, so movie statistics stay current."""
    return rate_movie(user=user, movie=movie, score=score)
