"""REST endpoints of the catalogue and of the signed-in user's ratings and lists.

A thin adapter: reads go through catalog.selectors, writes through catalog.services, the same
functions the HTML views use. Movies are written by staff only; every /me/ endpoint acts on the
signed-in user's own data and never takes a user from the request body or URL.
"""
from contextlib import contextmanager

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, permissions, serializers, status, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from catalog import selectors, services
from catalog.models import Actor, Director, Genre, Movie
from catalog.search import search_movies, search_people
from catalog.serializers import (
    BulkRateInputSerializer,
    BulkRateResultSerializer,
    GenreSerializer,
    ListEntrySerializer,
    MovieDetailSerializer,
    MovieFilterSerializer,
    MovieListSerializer,
    MovieReferenceSerializer,
    MovieWriteSerializer,
    PersonDetailSerializer,
    PersonQuerySerializer,
    PersonSearchSerializer,
    PersonSerializer,
    RateInputSerializer,
    RatingSerializer,
    ScoreInputSerializer,
)
from movierec.api import IsStaffOrReadOnly
from recommendations import impressions

# Up to 18 digits: every such id fits a 64-bit key; longer ones are answered 404 by the router.
ID_PATTERN = "[0-9]{1,18}"


def movie_list_context(request, movies) -> dict:
    """Serializer context for a list of movies: the signed-in user's stars for them."""
    return {"request": request, "rating_map": selectors.user_rating_map(request.user, [m.pk for m in movies])}


def _validated_query(serializer_class, request) -> dict:
    # A plain dict, not the QueryDict: DRF reads "?sort=" from a QueryDict as "not given".
    query = serializer_class(data=request.query_params.dict())
    query.is_valid(raise_exception=True)
    return query.validated_data


@contextmanager
def errors_of_field(field: str):
    """Report a service's or selector's ValidationError as an error of one input field."""
    try:
        yield
    except DjangoValidationError as error:
        raise serializers.ValidationError({field: error.messages})


# --- Catalogue -----------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List, filter and search movies",
        parameters=[MovieFilterSerializer],
        responses=MovieListSerializer(many=True),
    ),
    retrieve=extend_schema(summary="A movie with genres, directors, cast in billing order and statistics"),
    create=extend_schema(summary="Add a movie (staff only)"),
    update=extend_schema(summary="Replace a movie's details (staff only)"),
    partial_update=extend_schema(summary="Change some of a movie's details (staff only)"),
    destroy=extend_schema(summary="Delete a movie (staff only)"),
)
class MovieViewSet(viewsets.ModelViewSet):
    """The catalogue: everyone reads, staff write."""

    queryset = Movie.objects.all()
    # IsAuthenticatedOrReadOnly first: anonymous writes get 401, and the schema shows reads are open.
    permission_classes = [permissions.IsAuthenticatedOrReadOnly, IsStaffOrReadOnly]
    lookup_value_regex = ID_PATTERN

    def get_serializer_class(self):
        if self.action == "list":
            return MovieListSerializer
        if self.action == "retrieve":
            return MovieDetailSerializer
        return MovieWriteSerializer

    def list(self, request):
        filters = _validated_query(MovieFilterSerializer, request)
        query = filters.get("q", "").strip()
        bounds = {"genre": filters.get("genre"), "year_from": filters.get("year_from"), "year_to": filters.get("year_to")}
        if query:
            with errors_of_field("q"):
                movies = search_movies(query, **bounds)
        else:
            movies = selectors.browse_movies(**bounds, sort=filters["sort"])
        page = self.paginate_queryset(movies)
        serializer = MovieListSerializer(page, many=True, context=movie_list_context(request, page))
        return self.get_paginated_response(serializer.data)

    def retrieve(self, request, pk):
        try:
            movie = selectors.movie_detail(int(pk))
        except Movie.DoesNotExist:
            raise NotFound("No movie with this id.")
        impressions.log_outcome(request.user, movie.pk, "opened")
        context = movie_list_context(request, [movie])
        context["flags"] = selectors.movie_flags_for_user(request.user, movie)
        return Response(MovieDetailSerializer(movie, context=context).data)


class GenreList(generics.ListAPIView):
    """Every genre, by name."""

    queryset = Genre.objects.all()
    serializer_class = GenreSerializer
    pagination_class = None
    permission_classes = [permissions.AllowAny]


class PersonViewSet(viewsets.ReadOnlyModelViewSet):
    """Directors or actors by name; one with their filmography."""

    permission_classes = [permissions.AllowAny]
    lookup_value_regex = ID_PATTERN
    serializer_class = PersonSerializer

    def get_serializer_class(self):
        return PersonDetailSerializer if self.action == "retrieve" else PersonSerializer

    def retrieve(self, request, pk):
        person = self.get_object()
        movies = selectors.person_filmography(person)
        data = {"id": person.pk, "name": person.name, "filmography": movies}
        return Response(PersonDetailSerializer(data, context=movie_list_context(request, movies)).data)


@extend_schema_view(list=extend_schema(summary="Directors by name"), retrieve=extend_schema(summary="A director and their movies"))
class DirectorViewSet(PersonViewSet):
    queryset = Director.objects.order_by("name", "id")


@extend_schema_view(list=extend_schema(summary="Actors by name"), retrieve=extend_schema(summary="An actor and their movies"))
class ActorViewSet(PersonViewSet):
    queryset = Actor.objects.order_by("name", "id")


class PeopleSearch(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        summary="Search directors and actors by name",
        parameters=[PersonQuerySerializer],
        responses=PersonSearchSerializer(many=True),
    )
    def get(self, request):
        query = _validated_query(PersonQuerySerializer, request)["q"]
        with errors_of_field("q"):
            people = search_people(query)
        return Response(PersonSearchSerializer(people, many=True).data)


# --- My ratings ----------------------------------------------------------------------------------


def _rating_response(request, movie, *, existed: bool) -> Response:
    rating = selectors.user_ratings(request.user).get(movie=movie)
    return Response(
        RatingSerializer(rating).data, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED
    )


def _has_rated(user, movie) -> bool:
    return movie.pk in selectors.user_rating_map(user, [movie.pk])


@extend_schema_view(get=extend_schema(summary="My ratings, most recently changed first"))
class MyRatingList(generics.ListAPIView):
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = RatingSerializer

    def get_queryset(self):
        return selectors.user_ratings(self.request.user)

    @extend_schema(
        summary="Rate a movie (or change my rating of it)",
        request=RateInputSerializer,
        responses={201: RatingSerializer, 200: OpenApiResponse(RatingSerializer, description="Rating changed.")},
    )
    def post(self, request):
        payload = RateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        movie = payload.validated_data["movie"]
        existed = _has_rated(request.user, movie)
        with errors_of_field("score"):
            services.rate_movie(user=request.user, movie=movie, score=payload.validated_data["score"])
        return _rating_response(request, movie, existed=existed)


class MyRatingDetail(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(summary="My rating of a movie", responses=RatingSerializer)
    def get(self, request, movie_id):
        movie = get_object_or_404(Movie, pk=movie_id)
        rating = selectors.user_ratings(request.user).filter(movie=movie).first()
        if rating is None:
            raise NotFound("You have not rated this movie.")
        return Response(RatingSerializer(rating).data)

    @extend_schema(
        summary="Set my rating of a movie",
        request=ScoreInputSerializer,
        responses={200: RatingSerializer, 201: OpenApiResponse(RatingSerializer, description="Rating created.")},
    )
    def put(self, request, movie_id):
        movie = get_object_or_404(Movie, pk=movie_id)
        payload = ScoreInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        existed = _has_rated(request.user, movie)
        with errors_of_field("score"):
            services.rate_movie(user=request.user, movie=movie, score=payload.validated_data["score"])
        return _rating_response(request, movie, existed=existed)

    @extend_schema(summary="Remove my rating of a movie", responses={204: None})
    def delete(self, request, movie_id):
        movie = get_object_or_404(Movie, pk=movie_id)
        if not services.remove_rating(user=request.user, movie=movie):
            raise NotFound("You have not rated this movie.")
        return Response(status=status.HTTP_204_NO_CONTENT)


class MyRatingsBulk(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        summary="Rate many movies at once (all or nothing)",
        description="Stores every rating or, when any of them is invalid, none; the error names each "
        "offending item as ratings[index].field. A movie listed twice gets the later score.",
        request=BulkRateInputSerializer,
        responses={201: BulkRateResultSerializer},
    )
    def post(self, request):
        payload = BulkRateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        items = payload.validated_data["ratings"]
        with transaction.atomic():
            for index, item in enumerate(items):
                try:
                    services.rate_movie(user=request.user, movie=item["movie"], score=item["score"])
                except DjangoValidationError as error:
                    errors = [{} for _ in items]
                    errors[index] = {"score": error.messages}
                    raise serializers.ValidationError({"ratings": errors})
        return Response({"rated": len(items)}, status=status.HTTP_201_CREATED)


# --- My lists --------------------------------------------------------------------------------------


class _MyMovieList(generics.ListAPIView):
    """A per-user list of movies: list it, add a movie."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = ListEntrySerializer
    entries = None  # selector: user -> queryset of entries
    add = None  # service: (user=, movie=) -> entry

    def get_queryset(self):
        return type(self).entries(self.request.user)

    def post(self, request):
        payload = MovieReferenceSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        movie = payload.validated_data["movie"]
        existed = self.get_queryset().filter(movie=movie).exists()
        entry = type(self).add(user=request.user, movie=movie)
        return Response(
            ListEntrySerializer(entry, context={"request": request}).data, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED
        )


class _MyMovieListEntry(APIView):
    """One movie on a per-user list: take it off."""

    permission_classes = [permissions.IsAuthenticated]
    entries = None  # selector: user -> queryset of entries
    remove = None  # service: (user=, movie=)

    def delete(self, request, movie_id):
        movie = get_object_or_404(Movie, pk=movie_id)
        if not type(self).entries(request.user).filter(movie=movie).exists():
            raise NotFound("This movie is not on the list.")
        type(self).remove(user=request.user, movie=movie)
        return Response(status=status.HTTP_204_NO_CONTENT)


_ADD_RESPONSES = {201: ListEntrySerializer, 200: OpenApiResponse(ListEntrySerializer, description="Already there.")}


@extend_schema_view(
    get=extend_schema(summary="My watchlist, latest first"),
    post=extend_schema(summary="Put a movie on my watchlist", request=MovieReferenceSerializer, responses=_ADD_RESPONSES),
)
class MyWatchlist(_MyMovieList):
    entries = staticmethod(selectors.user_watchlist)
    add = staticmethod(services.add_to_watchlist)


@extend_schema_view(delete=extend_schema(summary="Take a movie off my watchlist", responses={204: None}))
class MyWatchlistEntry(_MyMovieListEntry):
    entries = staticmethod(selectors.user_watchlist)
    remove = staticmethod(services.remove_from_watchlist)


@extend_schema_view(
    get=extend_schema(summary="Movies I am not interested in (never recommended to me)"),
    post=extend_schema(
        summary="Never recommend this movie to me", request=MovieReferenceSerializer, responses=_ADD_RESPONSES
    ),
)
class MyNotInterested(_MyMovieList):
    entries = staticmethod(selectors.user_not_interested)
    add = staticmethod(services.hide_movie)


@extend_schema_view(delete=extend_schema(summary="Allow this movie in my recommendations again", responses={204: None}))
class MyNotInterestedEntry(_MyMovieListEntry):
    entries = staticmethod(selectors.user_not_interested)
    remove = staticmethod(services.unhide_movie)


router = SimpleRouter()
router.register("movies", MovieViewSet, basename="movie")
router.register("directors", DirectorViewSet, basename="director")
router.register("actors", ActorViewSet, basename="actor")

urlpatterns = [
    *router.urls,
    path("genres/", GenreList.as_view(), name="genre-list"),
    path("people/", PeopleSearch.as_view(), name="people-search"),
    path("me/ratings/", MyRatingList.as_view(), name="my-rating-list"),
    path("me/ratings/bulk/", MyRatingsBulk.as_view(), name="my-ratings-bulk"),
    path("me/ratings/<int:movie_id>/", MyRatingDetail.as_view(), name="my-rating-detail"),
    path("me/watchlist/", MyWatchlist.as_view(), name="my-watchlist"),
    path("me/watchlist/<int:movie_id>/", MyWatchlistEntry.as_view(), name="my-watchlist-entry"),
    path("me/not-interested/", MyNotInterested.as_view(), name="my-not-interested"),
    path("me/not-interested/<int:movie_id>/", MyNotInterestedEntry.as_view(), name="my-not-interested-entry"),
]
