"""In real Chromium: onboarding (genres, then rating), a Letterboxd import with preview and
progress bar, and the taste-profile charts."""
import re

import pytest
from celery import current_app

from catalog.models import Movie, Rating
from recommendations import services
from recommendations.models import GenrePreference
from tests.browser import SCREENSHOTS, browser_page  # noqa: F401 (fixture)
from tests.factories import DEFAULT_PASSWORD, make_movie, make_rating, make_user
from tests.pipeline_data import FAST_FIT, make_taste_catalogue


@pytest.fixture
def eager_celery():
    """The import job runs in the live server's process (no worker in this test)."""
    previous = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = True
    yield
    current_app.conf.task_always_eager = previous


@pytest.fixture
def catalogue(transactional_db):
    movies = {
        "matrix": make_movie("The Matrix", year=1999, genres=["Action", "Sci-Fi"], directors=["Lana Wachowski"]),
        "amelie": make_movie("Amélie", year=2001, genres=["Comedy", "Romance"], directors=["Jean-Pierre Jeunet"]),
        "alien": make_movie("Alien", year=1979, genres=["Horror", "Sci-Fi"], directors=["Ridley Scott"]),
        "gladiator": make_movie("Gladiator", year=2000, genres=["Action", "Drama"], directors=["Ridley Scott"]),
        "casablanca": make_movie("Casablanca", year=1942, genres=["Romance", "Drama"]),
        "solaris_72": make_movie("Solaris", year=1972, genres=["Drama", "Sci-Fi"]),
        "solaris_02": make_movie("Solaris", year=2002, genres=["Drama", "Sci-Fi"]),
    }
    others = [make_user() for _ in range(3)]
    for number, movie in enumerate(movies.values()):
        for other in others:
            make_rating(other, movie, 2.0 + (number % 3))
    return movies


def log_in(page, live_server, user):
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#main input[name=login]", user.email)
    page.fill("#main input[name=password]", DEFAULT_PASSWORD)
    page.locator("#main form button[type=submit]").click()
    page.get_by_role("button", name="Log out").wait_for()


@pytest.mark.browser
def test_onboarding_then_letterboxd_import_then_taste_profile(
    live_server, browser_page, catalogue, eager_celery, tmp_path
):
    page = browser_page
    user = make_user()
    log_in(page, live_server, user)

    page.goto(live_server.url + "/welcome/")
    page.get_by_label("Sci-Fi").check()
    page.get_by_label("Romance").check()
    page.screenshot(path=SCREENSHOTS / "onboarding_genres.png", full_page=True)
    page.get_by_role("button", name="Next: rate some movies").click()
    page.wait_for_url(re.compile(r"/welcome/rate/$"))
    assert set(GenrePreference.objects.filter(user=user).values_list("genre__name", flat=True)) == {"Sci-Fi", "Romance"}

    alien = catalogue["alien"]
    card = page.locator(f'[data-movie="{alien.pk}"]')
    card.locator("label", has=page.locator('input[value="4.5"]')).click()
    page.locator(f'[data-movie="{catalogue["casablanca"].pk}"]').get_by_text("Haven't seen").click()
    page.screenshot(path=SCREENSHOTS / "onboarding_rate.png", full_page=True)
    page.get_by_role("button", name=re.compile("Done")).click()
    page.wait_for_url(live_server.url + "/")
    assert dict(Rating.objects.filter(user=user).values_list("movie_id", "score")) == {alien.pk: 4.5}

    export = tmp_path / "ratings.csv"
    export.write_text(
        "Date,Name,Year,Letterboxd URI,Rating\n"
        "2024-01-02,The Matrix,1999,https://boxd.it/2b0k,5\n"
        "2024-01-03,Amelie,2001,https://boxd.it/2aZg,3.5\n"
        "2024-01-04,Solaris,2003,https://boxd.it/1Vjs,2\n"
        "2024-01-05,Gladiator,2000,https://boxd.it/1qgW,4\n"
        "2024-01-06,Nobody Knows This One,1950,,1\n"
    )
    page.goto(live_server.url + "/import/")
    page.set_input_files("#main input[type=file]", str(export))
    page.get_by_role("button", name="Show me what matches").click()
    page.get_by_role("heading", name="Check your import").wait_for()
    page.screenshot(path=SCREENSHOTS / "import_preview.png", full_page=True)
    assert not Rating.objects.filter(user=user, movie=catalogue["matrix"]).exists()  # the preview saves nothing
    page.get_by_label("Import Gladiator").uncheck()
    page.get_by_label("Solaris (2002)").check()  # 2003 in the file: one year off, the user confirms
    page.get_by_role("button", name="Import the ticked films").click()

    page.get_by_role("link", name="See your recommendations").wait_for()
    assert page.locator("progress").get_attribute("value") == "100"
    page.screenshot(path=SCREENSHOTS / "import_done.png", full_page=True)
    assert dict(Rating.objects.filter(user=user).values_list("movie_id", "score")) == {
        alien.pk: 4.5,
        catalogue["matrix"].pk: 5.0,
        catalogue["amelie"].pk: 3.5,
        catalogue["solaris_02"].pk: 2.0,
    }

    page.goto(live_server.url + "/me/taste/")
    for chart in ("chart-histogram", "chart-genres", "chart-contrasts"):
        svg = page.locator(f"#{chart} svg")
        assert svg.is_visible() and svg.bounding_box()["height"] > 20
    assert page.locator("#chart-histogram svg rect").count() == 10
    page.screenshot(path=SCREENSHOTS / "taste_profile.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=SCREENSHOTS / "taste_profile_mobile.png", full_page=True)


@pytest.mark.browser
def test_signed_in_home_rows_explain_themselves_and_a_hidden_movie_leaves_them(
    live_server, browser_page, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path / "media"
    groups = make_taste_catalogue()
    with django_capture_on_commit_callbacks(execute=True):
        services.publish_model(services.fit_model(hyperparameters=FAST_FIT, progress=False))
    fan = groups["Western"][0]
    for genre in ("Musical", "Horror"):  # more tastes than the Westerns the top picks use up
        for movie in Movie.objects.filter(genres__name=genre).exclude(ratings__user=fan)[:2]:
            make_rating(fan, movie, 5.0)
    page = browser_page
    csp_errors = []
    page.on("console", lambda message: csp_errors.append(message.text) if "Content Security Policy" in message.text else None)
    log_in(page, live_server, fan)

    page.goto(live_server.url + "/")
    top_picks = page.locator('[data-row="top"]')
    top_picks.get_by_role("heading", name="Top picks for you").wait_for()
    for row in ("top", "because", "trending", "genre"):
        cards = page.locator(f'[data-row="{row}"] .card')
        assert cards.count() > 0, row
        assert cards.first.locator(".card__why").inner_text().strip(), row
    assert top_picks.locator(".predicted").first.inner_text().startswith("For you: ")
    page.screenshot(path=SCREENSHOTS / "home_signed_in.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") == 390, "rows scroll inside themselves, not the page"
    page.screenshot(path=SCREENSHOTS / "home_signed_in_mobile.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    first = top_picks.locator(".card__title").first.inner_text()
    top_picks.locator(".card__link").first.click()
    page.get_by_role("button", name="Not interested").click()
    page.get_by_role("button", name="Hidden from suggestions (undo)").wait_for()
    page.goto(live_server.url + "/")
    page.locator('[data-row="top"]').wait_for()
    titles = page.locator("[data-row] .card__title").all_inner_texts()
    assert titles and first not in titles

    page.locator('[data-row="top"] .card__link').first.click()
    page.get_by_text("Your predicted rating").wait_for()
    page.get_by_role("button", name="+ Watchlist").click()
    page.get_by_role("button", name="✓ On your watchlist").wait_for()
    page.screenshot(path=SCREENSHOTS / "movie_predicted.png", full_page=True)
    page.goto(live_server.url + "/me/watchlist/?sort=predicted")
    page.get_by_role("button", name="Pick one for tonight").click()
    page.get_by_role("heading", name=re.compile("^Tonight: ")).wait_for()
    page.screenshot(path=SCREENSHOTS / "watchlist_tonight.png", full_page=True)
    assert not csp_errors
