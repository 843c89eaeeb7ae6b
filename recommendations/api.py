"""REST endpoints of recommendations: explained rows, similar movies, predicted stars.

A thin adapter over recommendations.selectors (the personal top-N through the per-user cache in
recommendations.cache, as the website serves it).
"""
import functools

from django.db.models import prefetch_related_objects
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.exceptions import APIException, NotAuthenticated, NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import selectors as catalog_selectors
from catalog.models import Movie
from movierec.api import TokenAuthentication
from recommendations import cache, discovery, impressions, selectors
from recommendations.serializers import (
    ROWS,
    DiscoverySerializer,
    PredictedRatingSerializer,
    RecommendationQuerySerializer,
    RecommendationRowSerializer,
    SimilarMoviesSerializer,
)

SIMILAR_COUNT = 12


def _movie_context(request, movies, *, unrated: bool = False) -> dict:
    """Serializer context; ``unrated``: the films are known to be none the user rated (their
    personal rows are checked against their ratings), so their ratings are not looked up."""
    prefetch_related_objects(movies, "genres")
    rating_map = {} if unrated else catalog_selectors.user_rating_map(request.user, [m.pk for m in movies])
    return {"request": request, "rating_map": rating_map}


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
    row = cache.get_because_row(user, n=n, anchor=anchor)
    if row is None:
        if anchor is not None:
            raise NotFound("You have not rated this movie.")
        return ROWS["because"], []
    title, explanation, movies = row
    return title, _unscored(movies, explanation)


class Recommendations(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        summary="A row of explained recommendations",
        description="Each item has the movie, a score, the stars the model expects you to give and why it is "
        "recommended. Rows the model ranks (top, genre) hold its n best films, shown highest predicted stars "
        "first. Anonymous visitors get popular movies for top and genre; because needs a sign-in. "
        "Movies you rated or hid are never recommended to you.",
        parameters=[RecommendationQuerySerializer],
        responses=RecommendationRowSerializer,
    )
    def get(self, request):
        # A signed-in user's answer is kept whole (recommendations.cache: keyed by the query, their
        # taste and the model); reading a kept one logs its impressions too.
        slot = cache.answer_slot(request.user, request.query_params.dict())
        kept = None
        if slot is not None:
            kept = cache.read_answer(slot, count_hit=request.query_params.get("row", "top") == "top",
                                     shown_to=request.user)
        if kept is None:
            row, movie_ids, data = self._row(request)
            kept = [(row, movie_ids)], [JSONRenderer().render(data).decode()]
            if slot is not None:
                cache.keep_answer(slot, *kept, shown_to=request.user)
            impressions.log_rows(request.user, kept[0])
        rows, (body,) = kept
        return HttpResponse(body, content_type="application/json")

    def _row(self, request) -> tuple[str, list[int], dict]:
        """(row, ids of the films in it, the response's data) computed for this request."""
        query = RecommendationQuerySerializer(data=request.query_params.dict())  # "?row=" is an error
        query.is_valid(raise_exception=True)
        row, n, user = query.validated_data["row"], query.validated_data["n"], request.user
        level = query.validated_data.get("discovery")
        title = ROWS[row]
        if row == "top":
            if level is None or level == selectors.discovery_level(user):
                picks = cache.get_recommendations(user, n=n)
            else:
                picks = selectors.recommend_for_user(user, n=n, discovery=level)
            items = [_item(r) for r in selectors.by_predicted_stars(picks)]
        elif row == "genre":
            genre = query.validated_data["genre"]
            title = f"Top picks in {genre.name}"
            picks = cache.get_genre_row(user, n=n, genre=genre, discovery=level)
            items = [_item(r) for r in selectors.by_predicted_stars(picks)]
        elif row == "trending":
            items = [{"movie": movie, "score": None, "predicted_stars": None, "explanation": why}
                     for movie, why in selectors.trending_for_user(user, n=n)]
        elif row == "similar":
            movie = query.validated_data["movie"]
            title = f"More like {movie.title}"
            items = _unscored(selectors.similar_movies(movie, n=n, user=user), f"Similar to {movie.title}")
        else:
            if not user.is_authenticated:
                raise NotAuthenticated("Sign in to get movies like the ones you rated.")
            title, items = _because_row(user, query.validated_data.get("movie"), n)
        # top, genre and because never hold a film the signed-in user rated (see their selectors).
        unrated = row in ("top", "genre", "because") and user.is_authenticated
        context = _movie_context(request, [item["movie"] for item in items], unrated=unrated)
        data = RecommendationRowSerializer({"row": row, "title": title, "results": items}, context=context).data
        return row, [item["movie"].pk for item in items], data


# --- Kept answers before DRF ------------------------------------------------------------------
# A token client's row that is kept whole (recommendations.cache, "Whole answers") is served by
# this thin view without DRF's dispatch: the token checked by the same authentication class, the
# answer read, the request counted against the same throttle and the impressions logged in one
# Redis round trip, the same headers. Everything else (no token or a bad one, a session, a
# miss, a full throttle window, Redis down, another method or format) goes to the DRF view,
# which answers exactly as it always did (401, 429 with Retry-After, the computed row).
_JSON_ACCEPTS = {"", "*/*", "application/json", "application/json, */*"}


@functools.lru_cache(maxsize=1)
def _drf_headers() -> dict:
    view = Recommendations()
    view.setup(HttpRequest())
    return view.default_response_headers


def _kept_answer(request) -> HttpResponse | None:
    if (request.method != "GET" or "format" in request.GET
            or request.META.get("HTTP_ACCEPT", "") not in _JSON_ACCEPTS
            or not request.META.get("HTTP_AUTHORIZATION", "")[:6].lower() == "token "):
        return None
    try:
        authenticated = TokenAuthentication().authenticate(request)
    except APIException:
        return None  # the DRF view refuses it, with its own body and WWW-Authenticate
    if authenticated is None:
        return None
    user = request.user = authenticated[0]  # as DRF sets it (the request log reads it)
    slot = cache.answer_slot(user, request.GET.dict())
    if slot is None:
        return None
    view = Recommendations()
    throttles = view.get_throttles()
    if not all(throttle.on_redis for throttle in throttles):
        return None
    windows = [window for throttle in throttles if (window := throttle.window(request, view)) is not None]
    if len(windows) > 1:
        return None
    kept = cache.read_answer(slot, count_hit=request.GET.get("row", "top") == "top", shown_to=user,
                             throttle=windows[0] if windows else None)
    if kept is None:
        return None
    _, (body,) = kept
    response = HttpResponse(body, content_type="application/json")
    for header, value in _drf_headers().items():
        response[header] = value
    return response


_drf_recommendations = Recommendations.as_view()


@functools.wraps(_drf_recommendations)  # its cls and csrf_exempt: the OpenAPI schema documents Recommendations
def recommendations(request, *args, **kwargs):
    """The recommendations endpoint: a kept answer at once, else Recommendations (DRF)."""
    response = _kept_answer(request)
    return _drf_recommendations(request, *args, **kwargs) if response is None else response


class SimilarMovies(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(summary="Movies like this one", responses=SimilarMoviesSerializer)
    def get(self, request, movie_id):
        movie = get_object_or_404(Movie, pk=movie_id)
        movies = selectors.similar_movies(movie, n=SIMILAR_COUNT, user=request.user)
        impressions.log_shown(request.user, "similar", movies)
        context = _movie_context(request, movies)
        return Response(SimilarMoviesSerializer({"movie": movie.pk, "results": movies}, context=context).data)


class PredictedRating(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(summary="The stars the model expects me to give this movie", responses=PredictedRatingSerializer)
    def get(self, request, movie_id):
        movie = get_object_or_404(Movie, pk=movie_id)
        value = selectors.predicted_rating(request.user, movie)
        return Response({"movie": movie.pk, "predicted_rating": value})


class Discovery(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(summary="My discovery dial: popular films or hidden gems", responses=DiscoverySerializer, tags=["me"])
    def get(self, request):
        return Response(DiscoverySerializer({"level": selectors.discovery_level(request.user)}).data)

    @extend_schema(summary="Move my discovery dial (remembered for my lists on the site and here)",
                   request=DiscoverySerializer, responses=DiscoverySerializer, tags=["me"])
    def put(self, request):
        payload = DiscoverySerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        level = discovery.set_discovery_level(user=request.user, level=payload.validated_data["level"])
        return Response(DiscoverySerializer({"level": level}).data)


urlpatterns = [
    path("me/discovery/", Discovery.as_view(), name="my-discovery"),
    path("recommendations/", recommendations, name="recommendations"),
    path("movies/<int:movie_id>/similar/", SimilarMovies.as_view(), name="movie-similar"),
    path("movies/<int:movie_id>/predicted-rating/", PredictedRating.as_view(), name="movie-predicted-rating"),
]
