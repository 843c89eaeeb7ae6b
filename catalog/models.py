from functools import lru_cache

from django.conf import settings
from django.core.signals import setting_changed
from django.db import models
from django.dispatch import receiver
from django.urls import get_script_prefix, get_urlconf, reverse

from catalog.text import normalize

HALF_STARS = [x / 2 for x in range(1, 11)]

# Letters some sources spell with two ASCII letters (HetRec's "doris_doerrie" for Dörrie), where
# unidecode writes one ("dorrie"): a name is keyed both ways, so both spellings find one person.
_TWO_LETTER_SPELLINGS = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss", "æ": "ae", "Æ": "Ae",
     "ø": "oe", "Ø": "Oe", "œ": "oe", "Œ": "Oe", "å": "aa", "Å": "Aa"}
)


def name_keys(name: str) -> set[str]:
    """The normalised spellings under which a person's name is the same person: 'Alfonso Cuarón'
    and 'Alfonso Cuaron' share 'alfonso cuaron'; 'Doris Dörrie' has 'doris dorrie' and 'doris doerrie';
    'Brian De Palma' and 'Brian DePalma' share 'briandepalma'."""
    keys = {normalize(name), normalize(name.translate(_TWO_LETTER_SPELLINGS))}
    keys |= {key.replace(" ", "") for key in keys}
    keys.discard("")
    return keys



_URL_ID_MARKER = 2_147_483_647


@lru_cache(maxsize=32)
def _id_url_parts(name: str, urlconf, root_urlconf) -> tuple[str, str]:
    path = reverse(name, args=[_URL_ID_MARKER], urlconf=urlconf).removeprefix(get_script_prefix())
    before, after = path.split(str(_URL_ID_MARKER))
    return before, after


@receiver(setting_changed)
def _forget_id_urls(*, setting, **kwargs):
    if setting == "ROOT_URLCONF":
        _id_url_parts.cache_clear()


def id_url(name: str, pk: int) -> str:
    """reverse(name, args=[pk]) for a URL whose only argument is an integer id, without resolving
    the pattern each time: pages list dozens of films, and a reverse() costs about 0.1 ms."""
    before, after = _id_url_parts(name, get_urlconf(), settings.ROOT_URLCONF)
    return f"{get_script_prefix()}{before}{int(pk)}{after}"

class Genre(models.Model):
    name = models.CharField(max_length=64, unique=True)
    slug = models.SlugField(max_length=64, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Person(models.Model):
    """Shared fields of directors and actors; search_name is the accent-free lower-case name."""

    name = models.CharField(max_length=200)
    search_name = models.CharField(max_length=200, db_index=True, editable=False)
    imdb_name_id = models.CharField(max_length=16, null=True, blank=True, unique=True)

    class Meta:
        abstract = True
        ordering = ["name"]

    def save(self, *args, **kwargs):
        self.search_name = normalize(self.name)
        super().save(*args, **kwargs)

    def __str__(self):
        return self.name


class Director(Person):
    class Meta(Person.Meta):
        constraints = [models.UniqueConstraint(fields=["name"], name="unique_director_name")]

    def get_absolute_url(self):
        return id_url("catalog:director", self.pk)


class Actor(Person):
    class Meta(Person.Meta):
        constraints = [models.UniqueConstraint(fields=["name"], name="unique_actor_name")]

    def get_absolute_url(self):
        return id_url("catalog:actor", self.pk)


class Keyword(models.Model):
    name = models.CharField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Movie(models.Model):
    title = models.CharField(max_length=300)
    alternative_titles = models.TextField(
        blank=True, help_text="Other titles the movie is known by, one per line; searchable."
    )
    year = models.PositiveSmallIntegerField(null=True, blank=True, db_index=True)
    synopsis = models.TextField(blank=True)
    runtime = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Minutes")
    release_date = models.DateField(null=True, blank=True)
    poster_url = models.URLField(max_length=500, blank=True, help_text="A poster hosted elsewhere (used when no poster is stored).")
    poster = models.ImageField(upload_to="posters/", blank=True, help_text="The stored poster (fetched from TMDB or uploaded).")
    # When TMDB was last asked for a poster it did not have (or the answer could not be used): a
    # new run skips the film unless asked to retry.
    poster_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    movielens_id = models.PositiveIntegerField(null=True, blank=True, unique=True)
    imdb_id = models.CharField(max_length=16, null=True, blank=True, unique=True, help_text="e.g. tt0068646")
    tmdb_id = models.PositiveIntegerField(null=True, blank=True, unique=True)
    genres = models.ManyToManyField(Genre, related_name="movies", blank=True)
    directors = models.ManyToManyField(Director, related_name="movies", blank=True)
    actors = models.ManyToManyField(Actor, through="CastMember", related_name="movies", blank=True)
    keywords = models.ManyToManyField(Keyword, related_name="movies", blank=True)
    search_title = models.TextField(editable=False, blank=True)
    # Denormalised rating statistics, kept by catalog.services (never computed per request).
    rating_count = models.PositiveIntegerField(default=0, editable=False)
    rating_mean = models.FloatField(default=0.0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title", "year"]
        indexes = [models.Index(fields=["-rating_count"], name="movie_popularity")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(year__isnull=True) | models.Q(year__gte=1870, year__lte=2100),
                name="movie_year_plausible",
            )
        ]

    def save(self, *args, **kwargs):
        self.search_title = normalize("\n".join([self.title, self.alternative_titles]))
        super().save(*args, **kwargs)

    def __str__(self):
        return f"{self.title} ({self.year})" if self.year else self.title

    def get_absolute_url(self):
        return id_url("catalog:movie", self.pk)

    @property
    def decade(self):
        return self.year // 10 * 10 if self.year else None


class CastMember(models.Model):
    movie = models.ForeignKey(Movie, on_delete=models.CASCADE, related_name="cast")
    actor = models.ForeignKey(Actor, on_delete=models.CASCADE, related_name="roles")
    order = models.PositiveSmallIntegerField(default=0, help_text="Billing order, 0 = top-billed")

    class Meta:
        ordering = ["order"]
        constraints = [models.UniqueConstraint(fields=["movie", "actor"], name="unique_cast_member")]

    def __str__(self):
        return f"{self.actor} in {self.movie}"


class Rating(models.Model):
    """One user's stars for one movie: 0.5 to 5.0 in half steps, enforced by the database."""

    # No single-column indexes: the unique (user, movie) and the (movie, score) indexes below
    # already lead with each key, and every index costs time on a big import.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ratings", db_index=False)
    movie = models.ForeignKey(Movie, on_delete=models.CASCADE, related_name="ratings", db_index=False)
    score = models.FloatField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "movie"], name="one_rating_per_user_and_movie"),
            models.CheckConstraint(condition=models.Q(score__in=HALF_STARS), name="rating_half_stars_0_5_to_5"),
        ]
        indexes = [
            models.Index(fields=["movie", "score"], name="rating_movie_score"),
            # Trending (recommendations.trending) reads the last weeks of ratings and the latest one.
            models.Index(fields=["updated_at"], name="rating_updated_at"),
        ]

    def __str__(self):
        return f"{self.user} rated {self.movie}: {self.score}"


class Tag(models.Model):
    """A free-text tag a user put on a movie (MovieLens tags.csv); a feature for the model."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tags")
    movie = models.ForeignKey(Movie, on_delete=models.CASCADE, related_name="tags")
    tag = models.CharField(max_length=255)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "movie", "tag"], name="unique_user_movie_tag")]

    def __str__(self):
        return self.tag


class ListEntry(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    movie = models.ForeignKey(Movie, on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["-added_at"]


class WatchlistEntry(ListEntry):
    class Meta(ListEntry.Meta):
        constraints = [models.UniqueConstraint(fields=["user", "movie"], name="unique_watchlist_entry")]
        verbose_name_plural = "watchlist entries"


class NotInterested(ListEntry):
    """A movie the user asked never to be recommended again (still found by search)."""

    class Meta(ListEntry.Meta):
        constraints = [models.UniqueConstraint(fields=["user", "movie"], name="unique_not_interested")]
        verbose_name_plural = "not interested"
