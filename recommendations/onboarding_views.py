"""Onboarding pages: pick favourite genres, then rate a few informative movies.

Ids posted by the forms are read with onboarding.parse_id: anything else (other digits, huge
numbers) is a clear 400, and nothing is saved.
"""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from catalog import services as catalog_services
from catalog.models import HALF_STARS, Genre
from recommendations import onboarding

BATCH_SIZE = 12


@require_GET
def start(request):
    """Signed-in users start with genres; guests go straight to rating (kept until they sign up)."""
    return redirect("onboarding:genres" if request.user.is_authenticated else "onboarding:rate")


@login_required
@require_http_methods(["GET", "POST"])
def genres(request):
    all_genres = list(onboarding.all_genres())
    error = None
    if request.method == "POST":
        picked_ids = [onboarding.parse_id(value) for value in request.POST.getlist("genres")]
        if None in picked_ids:
            error = "Pick genres from the list."
        else:
            onboarding.set_favourite_genres(user=request.user, genres=Genre.objects.filter(pk__in=picked_ids))
            return redirect("onboarding:rate")
    chosen = set(onboarding.favourite_genre_ids(request.user))
    return render(request, "experience/onboarding_genres.html", {"genres": all_genres, "chosen": chosen, "error": error},
                  status=400 if error else 200)


@require_http_methods(["GET", "POST"])
def rate(request):
    error = None
    if request.method == "POST":
        offered = [onboarding.parse_id(value) for value in request.POST.getlist("movies")]
        answers = {movie_id: request.POST.get(f"answer_{movie_id}", onboarding.SKIP) for movie_id in offered if movie_id}
        try:
            if None in offered:
                raise ValidationError("The form named a movie that is not in the catalogue; nothing was saved.")
            onboarding.save_onboarding_answers(user=request.user, session=request.session, answers=answers)
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            if "finish" in request.POST:
                if request.user.is_authenticated:
                    messages.success(request, "Thanks! Your recommendations now follow your ratings.")
                    return redirect("catalog:home")
                messages.info(request, "Sign up to keep your ratings and get recommendations.")
                return redirect("account_signup")
            return redirect("onboarding:rate")

    session = request.session
    exclude = onboarding.dismissed_movie_ids(session) + list(onboarding.guest_ratings(session))
    movies = onboarding.informative_movies(
        user=request.user,
        n=BATCH_SIZE,
        exclude_ids=exclude,
        favourite_genre_ids=onboarding.favourite_genre_ids(request.user),
    )
    rated = onboarding.rated_count(request.user, session)
    context = {
        "movies": movies,
        "stars": [(value, f"{value:g}") for value in HALF_STARS],
        "rated": rated,
        "target": onboarding.RATINGS_FOR_GOOD_SUGGESTIONS,
        "remaining": max(onboarding.RATINGS_FOR_GOOD_SUGGESTIONS - rated, 0),
        "error": error,
        "rating_rule": catalog_services.RATING_RULE,
    }
    return render(request, "experience/onboarding_rate.html", context, status=400 if error else 200)
