"""Watch together in real Chromium: a member opens the group's list, filters it, makes an
invitation link; a friend follows the link, joins and sees the list with their own predictions."""
import re

import pytest

from recommendations.group_services import add_guest
from tests.browser import SCREENSHOTS, browser_page  # noqa: F401 (fixture)
from tests.factories import DEFAULT_PASSWORD, make_user
from tests.groups_data import horror_guest_file, make_world

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def log_in(page, live_server, user):
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#main input[name=login]", user.email)
    page.fill("#main input[name=password]", DEFAULT_PASSWORD)
    page.locator("#main form button[type=submit]").click()
    page.get_by_role("button", name="Log out").wait_for()


def log_out(page):
    page.get_by_role("button", name="Log out").click()
    page.wait_for_load_state()


@pytest.mark.browser
def test_a_member_filters_the_list_invites_a_friend_who_joins(live_server, browser_page, transactional_db, settings,
                                                              tmp_path):
    settings.MEDIA_ROOT = tmp_path
    world = make_world()
    data, _ = horror_guest_file()
    add_guest(world.group, by=world.ana, name="Gus", filename="ratings.csv", data=data)
    page = browser_page
    page.set_viewport_size(DESKTOP)
    log_in(page, live_server, world.ben)

    page.get_by_role("link", name="Watch together").click()
    page.get_by_role("link", name="Friday films").click()
    cards = page.locator(".wt-pick")
    cards.first.wait_for()
    assert cards.count() == 20
    first = cards.first.locator(".wt-stars li")
    assert [first.nth(i).locator(".wt-stars__name").inner_text() for i in range(4)] == ["Ana", "Ben", "Cleo", "Gus"]
    page.screenshot(path=SCREENSHOTS / "groups_detail_desktop.png", full_page=True)

    page.select_option("#id_genre", "western")
    page.select_option("#id_max_runtime", "180")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"genre=western"))
    titles = page.locator(".wt-pick .card__title").all_inner_texts()
    assert titles and all(t.startswith("Leone Western") for t in titles)  # the only Westerns with a runtime
    assert "Ana loves Sergio Leone" in page.locator(".wt-pick").first.inner_text()

    page.get_by_role("button", name="New invitation link").click()
    link = page.locator(".wt-link").first.input_value()
    assert re.search(r"/groups/join/[\w-]{40,}/$", link)
    page.set_viewport_size(PHONE)
    page.goto(live_server.url + f"/groups/{world.group.pk}/")
    page.screenshot(path=SCREENSHOTS / "groups_detail_phone.png", full_page=True)
    log_out(page)

    dan = make_user("dan@example.com")
    log_in(page, live_server, dan)
    page.goto(link)
    page.screenshot(path=SCREENSHOTS / "groups_join_phone.png", full_page=True)
    page.fill("#id_member_name", "Dan")
    page.get_by_role("button", name="Join Friday films").click()
    page.get_by_text("Welcome to Friday films").wait_for()
    names = page.locator(".wt-pick").first.locator(".wt-stars__name").all_inner_texts()
    assert names == ["Ana", "Ben", "Cleo", "Gus", "Dan"]
    page.set_viewport_size(DESKTOP)
    page.goto(live_server.url + "/groups/")
    page.screenshot(path=SCREENSHOTS / "groups_list_desktop.png", full_page=True)
