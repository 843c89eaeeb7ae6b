"""In real Chromium, as deployed (DEBUG off): the site's own error pages, list buttons that update in
place, the profile's API tokens, the staff model page under the content security policy, the
favicon, and a member's home on a phone. Screenshots go to screenshots/."""
import re

import pytest
from django.urls import path

from accounts.services import issue_api_token
from catalog.models import NotInterested, WatchlistEntry
from movierec.urls import *  # noqa: F401,F403 (this module is a URLconf too: the site's, plus a failing page)
from movierec.urls import urlpatterns as site_urlpatterns
from recommendations import services
from recommendations.models import ModelVersion
from tests.browser import SCREENSHOTS, browser_page  # noqa: F401 (fixture)
from tests.factories import DEFAULT_PASSWORD, make_movie, make_user
from tests.pipeline_data import FAST_FIT, make_taste_catalogue

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def _failing_page(request):
    raise RuntimeError("a bug")


urlpatterns = [path("failing/", _failing_page), *site_urlpatterns]


def log_in(page, live_server, user):
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#main input[name=login]", user.email)
    page.fill("#main input[name=password]", DEFAULT_PASSWORD)
    page.locator("#main form button[type=submit]").click()
    page.get_by_role("button", name="Log out").wait_for()


def console_errors(page) -> list[str]:
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    return errors


def shoot(page, name, *, full_page=True):
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        page.reload()
        page.screenshot(path=SCREENSHOTS / f"{name}_{label}.png", full_page=full_page)
    page.set_viewport_size(DESKTOP)


@pytest.mark.browser
def test_error_pages_are_the_sites_own(live_server, browser_page, transactional_db, settings):
    settings.ROOT_URLCONF = __name__
    page = browser_page
    errors = console_errors(page)

    missing_film = page.goto(live_server.url + "/movies/987654/")
    assert missing_film.status == 404
    assert page.locator("h1").inner_text() == "We can't find that page"
    assert page.locator(".site-header .brand").is_visible(), "the site's own layout, not Django's page"
    shoot(page, "error_404")
    page.fill("#error-q", "alien")
    page.press("#error-q", "Enter")
    page.wait_for_url(re.compile(r"/search/\?q=alien"))

    failing = page.goto(live_server.url + "/failing/")
    assert failing.status == 500
    assert page.locator("h1").inner_text() == "Something went wrong on our side"
    assert "a bug" not in page.content()
    shoot(page, "error_500")

    log_in(page, live_server, make_user("member@example.com"))
    forbidden = page.goto(live_server.url + "/admin/")
    assert forbidden.status == 403
    assert page.locator("h1").inner_text() == "You can't open this page"
    assert "it is for staff" in page.locator("#main").inner_text()
    shoot(page, "error_403")
    assert [e for e in errors if "Content Security Policy" in e] == []


@pytest.mark.browser
def test_watchlist_and_not_interested_buttons_update_the_page_in_place(live_server, browser_page, transactional_db):
    page = browser_page
    member = make_user("member@example.com")
    movie = make_movie("Alien", year=1979, genres=["Horror"])
    log_in(page, live_server, member)
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(live_server.url + movie.get_absolute_url())
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)

    watchlist = page.locator("[data-state-key=on_watchlist] button")
    watchlist.click()
    page.get_by_role("button", name="✓ On your watchlist").wait_for()
    assert watchlist.get_attribute("aria-pressed") == "true"
    assert WatchlistEntry.objects.filter(user=member, movie=movie).exists()

    hide = page.locator("[data-state-key=hidden] button")
    hide.click()
    page.get_by_role("button", name="Hidden from suggestions (undo)").wait_for()
    assert NotInterested.objects.filter(user=member, movie=movie).exists()
    page.screenshot(path=SCREENSHOTS / "movie_lists_in_place.png")

    watchlist.click()  # and back: the form's action field followed the state
    page.get_by_role("button", name="+ Watchlist").wait_for()
    assert not WatchlistEntry.objects.filter(user=member, movie=movie).exists()

    assert navigations == [], "updated in place, no page load"
    assert not [url for url in requests if "object" in url], "never posts to /movies/<id>/[object HTMLInputElement]"
    posts = [url for url in requests if "/watchlist/" in url or "/not-interested/" in url]
    assert len(posts) == 3


@pytest.mark.browser
def test_profile_lists_and_revokes_api_tokens(live_server, browser_page, transactional_db):
    page = browser_page
    member = make_user("member@example.com")
    _, phone_app = issue_api_token(user=member)
    _, script = issue_api_token(user=member)
    log_in(page, live_server, member)

    page.goto(live_server.url + "/accounts/profile/#api-tokens")
    rows = page.locator(".token-table tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).locator("code").inner_text() == f"{script[:8]}…"
    shoot(page, "profile_tokens", full_page=True)

    rows.nth(1).get_by_role("button", name=re.compile("Revoke")).click()
    page.get_by_text("1 API token revoked").wait_for()
    assert page.locator(".token-table tbody tr").count() == 1
    assert page.locator(".token-table code").inner_text() == f"{script[:8]}…"

    page.get_by_role("link", name="Delete my account").click()
    assert page.get_by_label("Your current password").is_visible()
    shoot(page, "delete_account")


@pytest.mark.browser
def test_the_staff_model_page_fits_1366_pixels_under_the_content_security_policy(
    live_server, browser_page, transactional_db, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    make_taste_catalogue(users_per_genre=4, films_per_genre=12)
    for _ in range(2):
        services.publish_model(services.fit_model(hyperparameters=FAST_FIT, progress=False))
    ModelVersion.objects.create(
        status=ModelVersion.Status.REJECTED,
        error="Holdout nDCG@10 0.0812 is worse than popularity's 0.1172; v2 keeps serving. " * 3,
    )
    page = browser_page
    page.set_viewport_size(DESKTOP)
    errors = console_errors(page)
    log_in(page, live_server, make_user("staff@example.com", is_staff=True, is_superuser=True))

    page.goto(live_server.url + "/admin/recommendations/modelversion/")
    page.screenshot(path=SCREENSHOTS / "admin_model_page_desktop.png", full_page=True)

    assert errors == [], "no inline style blocked, no missing favicon"
    assert page.locator("#cache-status").is_visible()
    table = page.locator("#result_list").bounding_box()
    assert table["x"] + table["width"] <= DESKTOP["width"], "every column is on screen"
    assert page.locator("#result_list th.column-error_summary").is_visible()
    assert page.locator(".refit-form button").is_visible()

    member = make_user("member@example.com")
    issue_api_token(user=member)
    page.goto(live_server.url + f"/admin/accounts/user/{member.pk}/change/")
    page.screenshot(path=SCREENSHOTS / "admin_user_desktop.png", full_page=True)
    assert page.get_by_text("API tokens (delete to revoke)").is_visible()
    assert errors == []


@pytest.mark.browser
def test_a_members_first_screen_on_a_phone_shows_their_top_picks(
    live_server, browser_page, transactional_db, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    groups = make_taste_catalogue(users_per_genre=4, films_per_genre=12)
    services.publish_model(services.fit_model(hyperparameters=FAST_FIT, progress=False))
    page = browser_page
    page.set_viewport_size(PHONE)
    log_in(page, live_server, groups["Western"][0])

    page.goto(live_server.url + "/")
    page.screenshot(path=SCREENSHOTS / "home_member_phone.png")

    first_pick = page.locator("[data-row] .grid > li").first.bounding_box()
    assert first_pick["y"] + first_pick["height"] <= PHONE["height"], "a whole top pick in the first screen"
    header = page.locator(".site-header").bounding_box()
    assert header["height"] < 130
    page.set_viewport_size(DESKTOP)
    page.reload()
    page.screenshot(path=SCREENSHOTS / "home_member_desktop.png")
    assert page.locator(".hero__search").is_visible(), "the big search stays on wide screens"
