"""HTML views of the catalogue: home, browse, search, movie and person pages, the user's lists.

Writes go through catalog.services, reads through catalog.selectors. The forms that write
(rating, watchlist, not interested) work without JavaScript (POST then redirect) and answer
JSON when the request asks for it (static/js/site.js).
"""
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import prefetch_related_objects
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import get_script_prefix, reverse
from django.utils.cache import patch_cache_control
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import condition, require_GET, require_POST

from catalog import selectors, services
from catalog.forms import BrowseForm, RatingForm, SearchForm
from catalog.models import Actor, Director, Genre, Movie
from catalog.posters import movie_placeholder_svg
from catalog.search import search_catalogue
from recommendations import cache as recommendation_cache
from recommendations import discovery, impressions, onboarding
from recommendations import selectors as recommendation_selectors
from recommendations.cache import get_home_rows, get_recommendations
from recommendations.rerank import DISCOVERY_LEVELS

HOME_LIST_SIZE = 12
PAGE_SIZE = 24
POSTER_MAX_AGE = 24 * 3600


def _wants_json(request) -> bool:
    return request.headers.get("Accept", "").startswith("application/json")


def _safe_next(request, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return default


def _page(request, items, per_page: int = PAGE_SIZE):
    return Paginator(items, per_page).get_page(request.GET.get("page"))


def _ratings_context(request, movies) -> dict:
    return {"user_ratings": selectors.user_rating_map(request.user, [movie.pk for movie in movies])}


def _kept_html(name: str, render) -> str:
    """A part of a page that is the same for every visitor, rendered by ``render()`` and kept in
    the shared cache for GUEST_LISTS_SECONDS (the guests' lists are as old as that already).
    Not kept with DEBUG, where templates change under a running server."""
    if settings.DEBUG:
        return mark_safe(render())
    key = f"catalog:html:{name}:{get_script_prefix()}"
    html = cache.get(key)
    if html is None:
        html = render()
        cache.set(key, html, selectors.GUEST_LISTS_SECONDS)
    return mark_safe(html)


def _guest_shelves() -> str:
    lists = selectors.guest_home_lists(HOME_LIST_SIZE)
    lists["trending"] = recommendation_selectors.trending_movies(n=HOME_LIST_SIZE)
    prefetch_related_objects(lists["trending"], "genres")
    return render_to_string("catalog/_guest_shelves.html", lists)


def _browse_chips() -> str:
    return render_to_string("catalog/_browse_chips.html",
                            {"genres": Genre.objects.all(), "decades": selectors.catalogue_decades()})


def _member_rows(user, level: int) -> tuple[list | None, list[str]]:
    """(the signed-in user's rows, or None when they were kept; the rows rendered), their
    impressions logged. Kept rendered with their API answers while nothing they are made of
    changes (recommendations.cache)."""
    # Not kept with DEBUG, where templates change under a running server.
    slot = None if settings.DEBUG else recommendation_cache.home_rows_slot(user, n=HOME_LIST_SIZE, discovery=level)
    kept = recommendation_cache.read_answer(slot, count_hit=True, shown_to=user) if slot is not None else None
    rows = None
    if kept is None:
        top_picks = get_recommendations(user, n=HOME_LIST_SIZE)
        rows = get_home_rows(user, top_picks=top_picks, n=HOME_LIST_SIZE, discovery=level)
        kept = ([(row.key, [item.movie.pk for item in row.items]) for row in rows],
                [render_to_string("catalog/_home_row.html", {"row": row}) for row in rows])
        if slot is not None:
            recommendation_cache.keep_answer(slot, *kept, shown_to=user)
        impressions.log_rows(user, kept[0])
    _, parts = kept
    return rows, [mark_safe(part) for part in parts]


@require_GET
def home(request):
    """Guests: popular, top rated, trending. Signed-in users: their explained rows (see
    recommendations.selectors.home_rows). The parts the same for everyone are kept rendered."""
    context = {"browse_chips": _kept_html("browse-chips", _browse_chips)}
    if request.user.is_authenticated:
        level = recommendation_selectors.discovery_level(request.user)
        context["rows"], context["rows_html"] = _member_rows(request.user, level)
        context["discovery_level"] = level
        context["discovery_levels"] = list(DISCOVERY_LEVELS.items())
        rated = onboarding.rated_count(request.user, request.session)
        if rated < onboarding.RATINGS_FOR_GOOD_SUGGESTIONS:
            context["ratings_to_go"] = onboarding.RATINGS_FOR_GOOD_SUGGESTIONS - rated
    else:
        context["guest_rating_count"] = len(onboarding.guest_ratings(request.session))
        context["guest_shelves"] = _kept_html(f"guest-shelves:{HOME_LIST_SIZE}", _guest_shelves)
    return render(request, "catalog/home.html", context)


@login_required
@require_POST
def set_discovery(request):
    """The home page's discovery dial: remember the position, then back to the lists."""
    level = {str(level): level for level in DISCOVERY_LEVELS}.get(request.POST.get("discovery", ""))
    if level is None:
        return HttpResponse("Choose one of the discovery dial's positions (0 to 4).", status=400,
                            content_type="text/plain; charset=utf-8")
    discovery.set_discovery_level(user=request.user, level=level)
    messages.success(request, f"Your lists now lean towards: {DISCOVERY_LEVELS[level].lower()}.")
    return redirect(f"{reverse('catalog:home')}#row-top-heading")


@require_GET
def browse(request):
    form = BrowseForm(request.GET or None, decades=selectors.catalogue_decades())
    status = 200
    if form.is_bound and not form.is_valid():
        status = 400
        movies = Movie.objects.none()
        sort = "popular"
    else:
        filters = form.filters() if form.is_bound else {}
        sort = (form.cleaned_data.get("sort") if form.is_bound else None) or "popular"
        movies = selectors.browse_movies(sort=sort, **filters)
    page = _page(request, movies)
    context = {"form": form, "page": page, "sort": sort, "genres": Genre.objects.all()}
    context.update(_ratings_context(request, page.object_list))
    return render(request, "catalog/browse.html", context, status=status)


@require_GET
def genre(request, slug):
    genre = get_object_or_404(Genre, slug=slug)
    query = request.GET.copy()
    query["genre"] = genre.slug
    return redirect(f"{reverse('catalog:browse')}?{query.urlencode()}")


@require_GET
def search(request):
    form = SearchForm(request.GET or None)
    context = {"form": form, "results": [], "people": [], "searched": False}
    status = 200
    if form.is_bound and form.is_valid():
        query = form.cleaned_data["q"]
        try:
            found = search_catalogue(query, cards=True, **form.filters())
            context["results"], context["people"], context["approximate"] = found.movies, found.people, found.approximate
            context["searched"] = bool(query) or any(form.filters().values())
        except ValidationError as error:
            form.add_error("q", error)
            status = 400
    elif form.is_bound:
        status = 400
    context["query"] = form.data.get("q", "")
    context.update(_ratings_context(request, context["results"]))
    return render(request, "catalog/search.html", context, status=status)


SHELF_SIZE = 12  # films on each shelf of a film's page


def _movie_or_404(movie_id: int) -> Movie:
    try:
        return selectors.movie_detail(movie_id)
    except Movie.DoesNotExist:
        raise Http404("No movie with this id.")


def _movie_page(request, movie, *, rating_error: str = "", status: int = 200, shelves=None):
    """The film's page; ``shelves``: the ids of its similar films and of more from its directors,
    when read with the film (selectors.movie_page_parts)."""
    if shelves is None:
        shelves = (recommendation_selectors.similar_movie_ids(movie, n=SHELF_SIZE, user=request.user),
                   selectors.more_from_directors_ids(movie, n=SHELF_SIZE))
    similar_ids, director_ids = shelves
    # The shelves' films in one read; the user's own stars for the film and its shelves in another.
    shown = {m.pk: m for m in selectors.movies_in_order(list(dict.fromkeys(similar_ids + director_ids)), cards=True)}
    similar = [shown[pk] for pk in similar_ids if pk in shown]
    by_directors = [shown[pk] for pk in director_ids if pk in shown]
    reads = selectors.member_film_reads(request.user, movie) if request.user.is_authenticated else None
    if reads is not None:
        user_ratings = {pk: reads.ratings[pk] for pk in [movie.pk, *director_ids] if pk in reads.ratings}
        user_score = user_ratings.get(movie.pk)
    else:
        user_ratings, user_score = {}, onboarding.guest_ratings(request.session).get(movie.pk)
    context = {
        "movie": movie,
        "user_score": user_score,
        "user_ratings": user_ratings,
        "has_simulated_ratings": selectors.movie_has_simulated_ratings(movie),
        "rating_error": rating_error,
        "similar": similar,
        "by_directors": by_directors,
        "on_watchlist": reads is not None and reads.on_watchlist,
        "hidden": reads is not None and reads.hidden,
    }
    impressions.log_shown(request.user, "similar", similar)
    if reads is not None and user_score is None:
        context["predicted"] = recommendation_selectors.predicted_rating(
            request.user, movie, ratings=reads.ratings, picked=reads.picked_genres)
    return render(request, "catalog/movie_detail.html", context, status=status)


@require_GET
def movie_detail(request, movie_id):
    try:
        movie, *shelves = selectors.movie_page_parts(movie_id, n=SHELF_SIZE, user=request.user)
    except Movie.DoesNotExist:
        raise Http404("No movie with this id.")
    with impressions.one_write():
        impressions.log_outcome(request.user, movie.pk, "opened")
        return _movie_page(request, movie, shelves=shelves)


def _poster_etag(request, movie_id):
    updated = Movie.objects.filter(pk=movie_id).values_list("updated_at", flat=True).first()
    return f"poster-{movie_id}-{updated.timestamp() if updated else 'none'}"


@require_GET
@condition(etag_func=_poster_etag)
def movie_poster(request, movie_id):
    """The generated SVG placeholder of a movie (catalog.posters.placeholder_svg)."""
    movie = get_object_or_404(Movie, pk=movie_id)
    response = HttpResponse(movie_placeholder_svg(movie), content_type="image/svg+xml")
    patch_cache_control(response, public=True, max_age=POSTER_MAX_AGE)
    return response


def _login_then_back(request, movie):
    """Anonymous writes go to the login page, which brings the user back to the movie."""
    if _wants_json(request):
        login_url = f"{reverse('account_login')}?next={movie.get_absolute_url()}"
        return JsonResponse({"error": "Log in to do this.", "login_url": login_url}, status=401)
    return redirect_to_login(movie.get_absolute_url())


def _movie_stats(movie) -> dict:
    movie.refresh_from_db(fields=["rating_count", "rating_mean"])
    return {"rating_count": movie.rating_count, "rating_mean": round(movie.rating_mean, 2)}


def _rate_as_guest(request, movie):
    """A guest's rating is kept in the session until they sign up or log in (see
    recommendations.onboarding); the movie's statistics do not count it yet."""
    if request.POST.get("remove"):
        onboarding.forget_guest_rating(request.session, movie=movie)
        if _wants_json(request):
            return JsonResponse({"score": None, **_movie_stats(movie)})
        messages.success(request, f"Your rating of {movie.title} was removed.")
        return redirect(_safe_next(request, movie.get_absolute_url()))
    form = RatingForm(request.POST)
    score = None
    if form.is_valid():
        try:
            score = onboarding.remember_guest_rating(request.session, movie=movie, score=form.cleaned_data["score"])
        except ValidationError as error:
            form.add_error("score", error)
    if score is None:
        error = " ".join(form.errors.get("score", ["Choose a rating."]))
        if _wants_json(request):
            return JsonResponse({"error": error}, status=400)
        return _movie_page(request, movie, rating_error=error, status=400)
    if _wants_json(request):
        return JsonResponse({"score": score, "guest": True, **_movie_stats(movie)})
    messages.success(request, f"You rated {movie.title} {score:g} stars. Sign up to keep your rating.")
    return redirect(_safe_next(request, movie.get_absolute_url()))


def rate_movie(request, movie_id):
    """POST score=0.5..5.0 rates the movie, POST remove=1 removes the rating; GET goes to the movie."""
    movie = _movie_or_404(movie_id)
    if request.method != "POST":
        return redirect(movie)
    if not request.user.is_authenticated:
        return _rate_as_guest(request, movie)
    if request.POST.get("remove"):
        services.remove_rating(user=request.user, movie=movie)
        if _wants_json(request):
            return JsonResponse({"score": None, **_movie_stats(movie)})
        messages.success(request, f"Your rating of {movie.title} was removed.")
        return redirect(_safe_next(request, movie.get_absolute_url()))
    form = RatingForm(request.POST)
    if form.is_valid():
        try:
            rating = services.rate_movie(user=request.user, movie=movie, score=form.cleaned_data["score"])
        except ValidationError as error:
            form.add_error("score", error)
    if not form.is_valid():
        error = " ".join(form.errors.get("score", ["Choose a rating."]))
        if _wants_json(request):
            return JsonResponse({"error": error}, status=400)
        return _movie_page(request, movie, rating_error=error, status=400)
    if _wants_json(request):
        return JsonResponse({"score": rating.score, **_movie_stats(movie)})
    messages.success(request, f"You rated {movie.title} {rating.score:g} stars.")
    return redirect(_safe_next(request, movie.get_absolute_url()))


def _list_toggle(request, movie_id, *, add, remove, added_message, removed_message, state_key):
    movie = _movie_or_404(movie_id)
    if request.method != "POST":
        return redirect(movie)
    if not request.user.is_authenticated:
        return _login_then_back(request, movie)
    adding = request.POST.get("action", "add") != "remove"
    (add if adding else remove)(user=request.user, movie=movie)
    if _wants_json(request):
        return JsonResponse({state_key: adding})
    messages.success(request, (added_message if adding else removed_message).format(title=movie.title))
    return redirect(_safe_next(request, movie.get_absolute_url()))


def toggle_watchlist(request, movie_id):
    """POST action=add|remove puts the movie on or off the user's watchlist."""
    return _list_toggle(
        request, movie_id,
        add=services.add_to_watchlist, remove=services.remove_from_watchlist,
        added_message="{title} is on your watchlist.", removed_message="{title} is off your watchlist.",
        state_key="on_watchlist",
    )


def toggle_not_interested(request, movie_id):
    """POST action=add|remove hides the movie from recommendations or restores it."""
    return _list_toggle(
        request, movie_id,
        add=services.hide_movie, remove=services.unhide_movie,
        added_message="{title} will not be recommended to you.",
        removed_message="{title} may be recommended to you again.",
        state_key="hidden",
    )


def _person_page(request, person, role):
    films = selectors.person_filmography(person)
    context = {"person": person, "role": role, "films": films}
    context.update(_ratings_context(request, films))
    return render(request, "catalog/person_detail.html", context)


@require_GET
def director_detail(request, person_id):
    return _person_page(request, get_object_or_404(Director, pk=person_id), "Director")


@require_GET
def actor_detail(request, person_id):
    return _person_page(request, get_object_or_404(Actor, pk=person_id), "Actor")


@login_required
@require_GET
def my_ratings(request):
    page = _page(request, selectors.user_ratings(request.user), per_page=30)
    return render(request, "catalog/my_ratings.html", {"page": page})


@login_required
@require_GET
def my_watchlist(request):
    """?sort=predicted orders by the stars the engine expects; ?pick=1 picks one for tonight."""
    sort = "predicted" if request.GET.get("sort") == "predicted" else "added"
    if sort == "predicted":
        entries = recommendation_selectors.watchlist_by_prediction(request.user)
    else:
        entries = selectors.user_watchlist(request.user)
    page = _page(request, entries)
    predicted = recommendation_selectors.predicted_stars_map(request.user, [entry.movie for entry in page.object_list])
    prefetch_related_objects([entry.movie for entry in page.object_list], "genres")
    context = {"page": page, "sort": sort, "predicted": predicted}
    if request.GET.get("pick"):
        context["tonight"] = recommendation_selectors.pick_for_tonight(request.user)
    context.update(_ratings_context(request, [entry.movie for entry in page.object_list]))
    return render(request, "catalog/watchlist.html", context)


@login_required
@require_GET
def my_not_interested(request):
    page = _page(request, selectors.user_not_interested(request.user))
    return render(request, "catalog/not_interested.html", {"page": page})
