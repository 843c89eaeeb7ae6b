"""In real Chromium, desktop (1366x900) and phone (390x844): a hostile upload is refused with its
reason on the page, a tampered confirmation is refused, and a real export keeps its diary dates."""
import re
import zipfile

import pytest

from catalog.models import Rating
from recommendations.models import HistoryImport
from tests.browser import SCREENSHOTS, browser_page  # noqa: F401 (fixture)
from tests.factories import make_movie, make_user
from tests.hostile_uploads import zip_bomb
from tests.test_browser_experience import eager_celery, log_in  # noqa: F401 (fixture)

DESKTOP, PHONE = {"width": 1366, "height": 900}, {"width": 390, "height": 844}


def shoot(page, name):
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=SCREENSHOTS / f"{name}_mobile.png", full_page=True)
    page.set_viewport_size(DESKTOP)


@pytest.mark.browser
def test_hostile_uploads_are_refused_on_the_page_and_a_real_export_keeps_its_dates(
    live_server, browser_page, transactional_db, eager_celery, tmp_path
):
    page = browser_page
    matrix, heat = make_movie("The Matrix", year=1999), make_movie("Heat", year=1995)
    solaris = [make_movie("Solaris", year=1972), make_movie("Solaris", year=2002)]
    user = make_user()
    log_in(page, live_server, user)

    bomb = tmp_path / "letterboxd-export.zip"
    bomb.write_bytes(zip_bomb(zipfile.ZIP_BZIP2, 16 << 20, declared=1024))
    page.goto(live_server.url + "/import/")
    page.set_input_files("#main input[type=file]", str(bomb))
    page.get_by_role("button", name="Show me what matches").click()
    page.get_by_role("alert").wait_for()
    assert "compressed with bzip2" in page.get_by_role("alert").inner_text()
    shoot(page, "history_upload_refused")
    assert not HistoryImport.objects.exists()

    export = tmp_path / "ratings.csv"
    export.write_text(
        "Date,Name,Year,Letterboxd URI,Rating\n"
        "2023-03-04,The Matrix,1999,https://boxd.it/2b0k,4.5\n"
        "2022-11-20,Heat,1995,https://boxd.it/2a1q,4\n"
        "2021-07-14,Solaris,,https://boxd.it/1Vjs,3\n"
    )
    page.set_input_files("#main input[type=file]", str(export))
    page.get_by_role("button", name="Show me what matches").click()
    page.get_by_role("heading", name="Check your import").wait_for()
    assert "4 Mar 2023" in page.inner_text("table")
    shoot(page, "history_preview_dates")

    # A tampered form (the page offered 1972 or 2002) is refused, and nothing is imported.
    page.locator('input[name^="choice_"]').first.evaluate("radio => { radio.value = '²'; radio.checked = true; }")
    page.get_by_role("button", name="Import the ticked films").click()
    page.get_by_text("Nothing was imported").wait_for()
    shoot(page, "history_confirm_refused")
    assert not Rating.objects.exists()

    page.get_by_label("Solaris (2002)").check()
    page.get_by_role("button", name="Import the ticked films").click()
    page.get_by_role("link", name="See your recommendations").wait_for()
    assert {rating.movie_id: rating.updated_at.date().isoformat() for rating in Rating.objects.filter(user=user)} == {
        matrix.pk: "2023-03-04", heat.pk: "2022-11-20", solaris[1].pk: "2021-07-14",
    }

    page.goto(live_server.url + "/me/ratings/")
    page.get_by_text(re.compile("Rated 4 Mar 2023")).wait_for()
    shoot(page, "history_my_ratings_dates")
