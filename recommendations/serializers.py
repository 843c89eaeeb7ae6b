"""API representations of recommendations and predictions."""
from rest_framework import serializers

from catalog.models import Genre, Movie
from catalog.serializers import MovieListSerializer
from movierec.api import StrictPrimaryKeyRelatedField
from recommendations.rerank import DISCOVERY_LEVELS

ROWS = {
    "top": "Top picks for you",
    "because": "Because you liked a movie",
    "trending": "Trending",
    "similar": "More like this movie",
    "genre": "Top picks in a genre",
}
MAX_ITEMS = 60


class RecommendationQuerySerializer(serializers.Serializer):
    row = serializers.ChoiceField(
        choices=list(ROWS),
        default="top",
        help_text="top: your personal top picks; because: movies like one you rated highly (signed in); "
        "trending: films gaining attention from people who like them (else well-liked recent releases); "
        "similar: movies like `movie`; genre: your top picks in `genre`.",
    )
    movie = StrictPrimaryKeyRelatedField(
        queryset=Movie.objects.all(),
        required=False,
        help_text="The movie the row is about: required for similar; for because, one you rated "
        "(default: your latest highly rated).",
    )
    genre = serializers.SlugRelatedField(
        queryset=Genre.objects.all(), slug_field="slug", required=False, help_text="Genre slug; required for row=genre."
    )
    n = serializers.IntegerField(required=False, default=20, min_value=1, max_value=MAX_ITEMS, help_text="How many.")
    discovery = serializers.ChoiceField(
        choices=list(DISCOVERY_LEVELS.items()),
        required=False,
        help_text="For top and genre: move the list from popular films (0) to hidden gems (4) for this request; "
        "default: your remembered position (PUT /api/v1/me/discovery/ to change it).",
    )

    def validate(self, data):
        if data["row"] == "similar" and "movie" not in data:
            raise serializers.ValidationError({"movie": ["Give the movie to find similar ones for."]})
        if data["row"] == "genre" and "genre" not in data:
            raise serializers.ValidationError({"genre": ["Give the genre (its slug)."]})
        return data


class RecommendationSerializer(serializers.Serializer):
    movie = MovieListSerializer()
    score = serializers.FloatField(
        allow_null=True,
        help_text="The model's score (higher is better) for rows the model ranks (top, genre: the n best by this "
        "score, shown highest predicted stars first); null for rows chosen without one (similar, because, trending).",
    )
    predicted_stars = serializers.FloatField(allow_null=True, help_text="Stars the model expects you to give, if known.")
    explanation = serializers.CharField(help_text="Why this movie is here, in words.")


class RecommendationRowSerializer(serializers.Serializer):
    row = serializers.ChoiceField(choices=list(ROWS))
    title = serializers.CharField()
    results = RecommendationSerializer(many=True)


class PredictedRatingSerializer(serializers.Serializer):
    movie = serializers.IntegerField()
    predicted_rating = serializers.FloatField(
        allow_null=True, help_text="Stars (0.5–5) the model expects you to give; null when it cannot tell."
    )


class SimilarMoviesSerializer(serializers.Serializer):
    movie = serializers.IntegerField()
    results = MovieListSerializer(many=True)


class DiscoverySerializer(serializers.Serializer):
    level = serializers.ChoiceField(
        choices=list(DISCOVERY_LEVELS.items()),
        help_text="Where your lists sit between popular films (0) and hidden gems (4); 2 is balanced.",
    )
    label = serializers.SerializerMethodField()

    def get_label(self, data) -> str:
        return DISCOVERY_LEVELS[data["level"]]
