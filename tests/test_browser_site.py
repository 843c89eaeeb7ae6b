"""A new visitor in real Chromium: sign up, verify the email (which signs them in), search with a typo, rate in half stars."""
import re

import pytest
from django.core import mail

from catalog.models import Rating
from tests.browser import SCREENSHOTS, browser_page  # noqa: F401 (fixture)
from tests.factories import make_movie, make_rating, make_user


EMAIL = "newcomer@example.com"
PASSWORD = "Very-secret-popcorn-42"


@pytest.fixture
def catalogue(transactional_db):
    godfather = make_movie(
        "The Godfather", year=1972, genres=["Crime", "Drama"], directors=["Francis Ford Coppola"],
        actors=["Marlon Brando", "Al Pacino", "James Caan"], runtime=175,
        synopsis="The ageing head of a crime dynasty hands his empire to his reluctant youngest son.",
    )
    make_movie("The Godfather Part II", year=1974, genres=["Crime", "Drama"], directors=["Francis Ford Coppola"], actors=["Al Pacino"])
    amelie = make_movie("Amélie", year=2001, genres=["Comedy", "Romance"], directors=["Jean-Pierre Jeunet"], actors=["Audrey Tautou"])
    for score in (4.0, 5.0, 4.5):
        make_rating(make_user(), godfather, score)
    make_rating(make_user(), amelie, 4.0)
    return godfather


@pytest.mark.browser
def test_a_new_user_signs_up_verifies_searches_with_a_typo_and_rates_half_stars(live_server, browser_page, catalogue):
    page = browser_page
    page.goto(live_server.url + "/")
    page.screenshot(path=SCREENSHOTS / "home.png", full_page=True)

    page.get_by_role("link", name="Sign up").first.click()
    page.fill("#main input[name=email]", EMAIL)
    page.fill("#main input[name=password1]", PASSWORD)
    page.fill("#main input[name=password2]", PASSWORD)
    page.screenshot(path=SCREENSHOTS / "signup.png", full_page=True)
    page.locator("#main form button[type=submit]").click()
    page.wait_for_load_state()

    assert len(mail.outbox) == 1
    link = re.search(r"https?://\S+/confirm-email/\S+/", mail.outbox[0].body).group(0)
    page.goto(live_server.url + re.sub(r"^https?://[^/]+", "", link))
    page.locator("#main form button[type=submit]").click()
    page.get_by_role("button", name="Log out").wait_for()  # confirming the email signed the new user in
    page.wait_for_url(re.compile(r"/welcome/"))  # and their first stop is telling us their tastes

    page.fill("#header-search-q", "godfater")
    page.press("#header-search-q", "Enter")
    page.wait_for_url(re.compile(r"/search/\?q=godfater"))
    page.screenshot(path=SCREENSHOTS / "search.png", full_page=True)
    page.locator(".card__link", has_text=re.compile(r"^\s*The Godfather\s*$")).first.click()
    page.wait_for_url(re.compile(rf"/movies/{catalogue.pk}/$"))

    page.locator(f"label[for='rate-{catalogue.pk}-4.5']").click()
    page.get_by_text("You rated this 4.5 stars.").wait_for()
    page.screenshot(path=SCREENSHOTS / "movie_rated.png", full_page=True)
    assert page.locator("[data-save]").is_hidden()  # with JavaScript, choosing stars saves
    assert page.url.endswith(f"/movies/{catalogue.pk}/")  # updated in place, no reload
    assert Rating.objects.get(user__email=EMAIL, movie=catalogue).score == 4.5
    assert page.locator("[data-average-count]").inner_text() == "4"

    page.keyboard.press("ArrowLeft")  # the focused radio group steps down half a star
    page.get_by_text("You rated this 4 stars.").wait_for()
    assert Rating.objects.get(user__email=EMAIL, movie=catalogue).score == 4.0

    broken = make_movie("Broken Poster", year=1999, poster_url=live_server.url + "/no-such-poster.jpg")
    page.goto(live_server.url + broken.get_absolute_url())
    poster = page.locator(".movie__poster img")
    page.wait_for_function("image => image.complete && image.naturalWidth > 0", arg=poster.element_handle())
    assert poster.get_attribute("src").endswith(f"/movies/{broken.pk}/poster.svg")  # never a broken image

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server.url + "/me/ratings/")
    page.screenshot(path=SCREENSHOTS / "my_ratings_mobile.png", full_page=True)
