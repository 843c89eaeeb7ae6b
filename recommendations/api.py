"""REST endpoints of recommendations: explained rows, similar movies, predicted stars.

A thin adapter over recommendations.selectors (the personal top-N through the per-user cache in
recommendations.cache, as the website serves it).
"""
from django.db.models import prefetch_related_objects
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.exceptions import NotAuthenticated, NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import selectors as catalog_selectors
from catalog.models import Movie
from recommendations import cache, selectors
from recommendations.serializers import (
    ROWS,
    PredictedRatingSerializer,
    RecommendationQuerySerializer,
    RecommendationRowSerializer,
    SimilarMoviesSerializer,
)

SIMILAR_COUNT = 12


def _movie_context(request, movies) -> dict:
    prefetch_related_objects(movies, "genres")
    return {"request": request, "rating_map": catalog_selectors.user_rating_map(request.user, [m.pk for m in movies])}


def _item(recommendation) -> dict:
    return {
        "movie": recommendation.movie,
        "score": recommendation.score,
        "predicted_stars": recommendation.predicted_stars,
        "explanation": recommendation.explanation,
    }


def _unscored(movies, explanation: str) -> list[dict]:
    return [{"movie": movie, "score": None, "predicted_stars": None, "explanation": explanation} for movie in movies]


def _because_row(user, anchor, n: int) -> tuple[str, list[dict]]:
    """Movies similar to one the user rated highly (the anchor, else their latest liked one)."""
    rating, movies = selectors.because_you_liked(user, n=n, anchor=anchor)
    if rating is None:
        if anchor is not None:
            raise NotFound("You have not rated this movie.")
        return ROWS["because"], []
    return f"Because you liked {rating.movie.title}", _unscored(movies, selectors.because_you_liked_explanation(rating))


class Recommendations(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        summary="A row of explained recommendations",
        description="Each item has the movie, a score, the stars the model expects you to give and why it is "
        "recommended. Anonymous visitors get popular movies for top and genre; because needs a sign-in. "
        "Movies you rated or hid are never recommended to you.",
        parameters=[RecommendationQuerySerializer],
        responses=RecommendationRowSerializer,
    )
    def get(self, request):
        query = RecommendationQuerySerializer(data=request.query_params.dict())  # "?row=" is an error
        query.is_valid(raise_exception=True)
        row, n, user = query.validated_data["row"], query.validated_data["n"], request.user
        title = ROWS[row]
        if row == "top":
            items = [_item(r) for r in cache.get_recommendations(user, n=n)]
        elif row == "genre":
            genre = query.validated_data["genre"]
            title = f"Top picks in {genre.name}"
            items = [_item(r) for r in selectors.recommend_for_user(user, n=n, genre=genre)]
        elif row == "trending":
            items = _unscored(selectors.trending_movies(n=n), selectors.TRENDING_EXPLANATION)
        elif row == "similar":
            movie = query.validated_data["movie"]
            title = f"More like {movie.title}"
            items = _unscored(selectors.similar_movies(movie, n=n), f"Similar to {movie.title}")
        else:
            if not user.is_authenticated:
                raise NotAuthenticated("Sign in to get movies like the ones you rated.")
            title, items = _because_row(user, query.validated_data.get("movie"), n)
        context = _movie_context(request, [item["movie"] for item in items])
        return Response(RecommendationRowSerializer({"row": row, "title": title, "results": items}, context=context).data)


class SimilarMovies(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(summary="Movies like this one", responses=SimilarMoviesSerializer)
    def get(self, request, movie_id):
        movie = get_object_or_404(Movie, pk=movie_id)
        movies = selectors.similar_movies(movie, n=SIMILAR_COUNT)
        context = _movie_context(request, movies)
        return Response(SimilarMoviesSerializer({"movie": movie.pk, "results": movies}, context=context).data)


class PredictedRating(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(summary="The stars the model expects me to give this movie", responses=PredictedRatingSerializer)
    def get(self, request, movie_id):
        movie = get_object_or_404(Movie, pk=movie_id)
        value = selectors.predicted_rating(request.user, movie)
        return Response({"movie": movie.pk, "predicted_rating": value})


urlpatterns = [
    path("recommendations/", Recommendations.as_view(), name="recommendations"),
    path("movies/<int:movie_id>/similar/", SimilarMovies.as_view(), name="movie-similar"),
    path("movies/<int:movie_id>/predicted-rating/", PredictedRating.as_view(), name="movie-predicted-rating"),
]
