"""API representations of the catalogue and of a user's ratings and lists.

Serializers only shape data; what a rating may be and what rating one changes is decided by
catalog.services (a serializer that writes hands over to a service).
"""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from django.urls import get_script_prefix
from rest_framework import serializers

from catalog.models import CastMember, Director, Genre, Movie, Rating
from catalog.posters import poster_url
from catalog.search import MAX_QUERY_LENGTH
from catalog.selectors import BROWSE_SORTS
from movierec.api import StrictFloatField, StrictPrimaryKeyRelatedField

# Bounds of the year filters: wide enough for any catalogue, narrow enough for every database.
YEAR_MIN, YEAR_MAX = 1800, 2200


@extend_schema_field({"type": "number", "format": "double", "minimum": 0.5, "maximum": 5.0, "multipleOf": 0.5})
class StarsField(StrictFloatField):
    """A half-star rating; the rule itself is enforced by catalog.services.rate_movie."""


class GenreSerializer(serializers.ModelSerializer):
    class Meta:
        model = Genre
        fields = ["id", "name", "slug"]


class PersonSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class CastMemberSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="actor.id")
    name = serializers.CharField(source="actor.name")

    class Meta:
        model = CastMember
        fields = ["id", "name", "order"]


class _WithPosterURL(serializers.ModelSerializer):
    poster_url = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.URI)
    def get_poster_url(self, movie) -> str:
        """The stored poster, else the one hosted elsewhere, else the generated placeholder (SVG)."""
        request = self.context.get("request")
        return request.build_absolute_uri(poster_url(movie)) if request else poster_url(movie)


class MovieSummarySerializer(_WithPosterURL):
    """A movie inside another object (a rating, a list entry, a filmography)."""

    class Meta:
        model = Movie
        fields = ["id", "title", "year", "poster_url"]


class MovieListSerializer(_WithPosterURL):
    """A movie in a list; my_rating is the signed-in user's stars (context["rating_map"])."""

    genres = GenreSerializer(many=True, read_only=True)
    my_rating = serializers.SerializerMethodField()

    class Meta:
        model = Movie
        fields = ["id", "title", "year", "poster_url", "genres", "rating_count", "rating_mean", "my_rating"]

    @extend_schema_field(StarsField(allow_null=True))
    def get_my_rating(self, movie) -> float | None:
        return self.context.get("rating_map", {}).get(movie.pk)

    def to_representation(self, movie):
        """As DRF serializes it, remembered per process under everything the representation
        holds (lists repeat the same films for every user; the genres come prefetched)."""
        if type(self) is not MovieListSerializer:
            return super().to_representation(movie)
        request = self.context.get("request")
        key = (movie.pk, movie.title, movie.year, movie.poster.name, movie.poster_url, movie.rating_count,
               movie.rating_mean, tuple((genre.pk, genre.name, genre.slug) for genre in movie.genres.all()),
               self.get_my_rating(movie), request.build_absolute_uri("/") if request else None, get_script_prefix())
        data = _LISTED.get(key)
        if data is None:
            data = super().to_representation(movie)
            if len(_LISTED) >= LISTED_CACHE_SIZE:
                _LISTED.clear()
            _LISTED[key] = data
        return dict(data)


_LISTED: dict = {}
LISTED_CACHE_SIZE = 8192


class MovieDetailSerializer(MovieListSerializer):
    """A movie with everything the movie page shows; the flags are the signed-in user's."""

    alternative_titles = serializers.SerializerMethodField()
    directors = PersonSerializer(many=True, read_only=True)
    cast = CastMemberSerializer(many=True, read_only=True)
    keywords = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")
    on_watchlist = serializers.SerializerMethodField()
    not_interested = serializers.SerializerMethodField()

    class Meta(MovieListSerializer.Meta):
        fields = MovieListSerializer.Meta.fields + [
            "alternative_titles",
            "synopsis",
            "runtime",
            "release_date",
            "imdb_id",
            "tmdb_id",
            "movielens_id",
            "directors",
            "cast",
            "keywords",
            "on_watchlist",
            "not_interested",
        ]

    def get_alternative_titles(self, movie) -> list[str]:
        return [line.strip() for line in movie.alternative_titles.splitlines() if line.strip()]

    def get_on_watchlist(self, movie) -> bool:
        return self.context.get("flags", {}).get("on_watchlist", False)

    def get_not_interested(self, movie) -> bool:
        return self.context.get("flags", {}).get("hidden", False)


class ListOfRelated(serializers.ManyRelatedField):
    """A to-many relation given as a JSON list (DRF's own also takes an object, as its keys)."""

    def to_internal_value(self, data):
        if not isinstance(data, list):
            self.fail("not_a_list", input_type=type(data).__name__)
        return super().to_internal_value(data)


class MovieWriteSerializer(serializers.ModelSerializer):
    """What staff send to add or change a movie; genres by slug, directors by id."""

    genres = ListOfRelated(
        child_relation=serializers.SlugRelatedField(slug_field="slug", queryset=Genre.objects.all()), required=False
    )
    directors = ListOfRelated(
        child_relation=StrictPrimaryKeyRelatedField(queryset=Director.objects.all()), required=False
    )

    class Meta:
        model = Movie
        fields = [
            "id",
            "title",
            "alternative_titles",
            "year",
            "synopsis",
            "runtime",
            "release_date",
            "poster_url",
            "imdb_id",
            "tmdb_id",
            "movielens_id",
            "genres",
            "directors",
        ]
        extra_kwargs = {"year": {"min_value": 1870, "max_value": 2100}}

    def validate_imdb_id(self, value):
        # No IMDb id is stored as NULL, as the admin does: the column is unique, "" is not.
        return value or None


class MovieFilterSerializer(serializers.Serializer):
    """Query parameters of the movie list."""

    q = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=MAX_QUERY_LENGTH,
        help_text="Search titles, alternative titles, directors and actors: titles that are or start with the "
        "query first, then titles holding its words, then films of people it names; close spellings (typos) "
        "only when nothing matches as typed. Accents never matter; common abbreviations (lotr, t2) work. "
        "At most 60, best first.",
    )
    genre = serializers.SlugField(required=False, help_text="Only movies of this genre (its slug).")
    year_from = serializers.IntegerField(required=False, min_value=YEAR_MIN, max_value=YEAR_MAX)
    year_to = serializers.IntegerField(required=False, min_value=YEAR_MIN, max_value=YEAR_MAX)
    sort = serializers.ChoiceField(
        choices=list(BROWSE_SORTS),
        default="popular",
        help_text="Order when not searching: popular (most rated), top (Bayesian average), newest, title.",
    )


class PersonSearchSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    role = serializers.ChoiceField(choices=["Director", "Actor"])
    film_count = serializers.IntegerField()


class PersonDetailSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    filmography = MovieListSerializer(many=True, help_text="Their movies, newest first.")


class PersonQuerySerializer(serializers.Serializer):
    q = serializers.CharField(max_length=MAX_QUERY_LENGTH, help_text="Part of a name; typos and accents forgiven.")


# --- A user's ratings and lists ------------------------------------------------------------------


class RatingSerializer(serializers.ModelSerializer):
    movie = MovieSummarySerializer(read_only=True)
    score = StarsField(read_only=True)

    class Meta:
        model = Rating
        fields = ["movie", "score", "created_at", "updated_at"]


class RateInputSerializer(serializers.Serializer):
    movie = StrictPrimaryKeyRelatedField(queryset=Movie.objects.all(), help_text="The movie's id.")
    score = StarsField()


class ScoreInputSerializer(serializers.Serializer):
    score = StarsField()


class BulkRateInputSerializer(serializers.Serializer):
    ratings = RateInputSerializer(many=True, allow_empty=False, max_length=1000)


class BulkRateResultSerializer(serializers.Serializer):
    rated = serializers.IntegerField(help_text="How many ratings were stored (created or changed).")


class ListEntrySerializer(serializers.Serializer):
    movie = MovieSummarySerializer()
    added_at = serializers.DateTimeField()


class MovieReferenceSerializer(serializers.Serializer):
    movie = StrictPrimaryKeyRelatedField(queryset=Movie.objects.all(), help_text="The movie's id.")
