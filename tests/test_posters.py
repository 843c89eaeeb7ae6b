"""Posters: fetched from TMDB (a stand-in server on 127.0.0.1, never the network), stored in MEDIA,
shown on pages; generated placeholders that tell films apart."""
import http.server
import io
import json
import threading
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from PIL import Image

from catalog.models import Movie
from catalog.posters import fetch_posters, placeholder_svg
from catalog.tasks import fetch_posters_task
from catalog.tmdb import TMDBAuthError
from tests.factories import make_movie, make_user

pytestmark = pytest.mark.django_db


def jpeg(width=20, height=30, colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "JPEG")
    return buffer.getvalue()


class StandInTMDB:
    """Answers like api.themoviedb.org/3 and image.tmdb.org/t/p from a table of routes.

    A route's answer is (status, headers, body) or a list of them, given one per request (the
    last one repeats). Every request is recorded with its time and headers.
    """

    def __init__(self):
        self.routes: dict[str, object] = {}
        self.requests: list[dict] = []
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                path, _, query = self.path.partition("?")
                stand_in.requests.append({"path": path, "query": query, "headers": dict(self.headers), "at": time.monotonic()})
                answers = stand_in.routes.get(path, (404, {"Content-Type": "application/json"}, b'{"status_code": 34}'))
                if isinstance(answers, list):
                    answer = answers.pop(0) if len(answers) > 1 else answers[0]
                else:
                    answer = answers
                status, headers, body = answer
                self.send_response(status)
                for name, value in headers.items():
                    if value is not None:  # None: leave the header out
                        self.send_header(name, value)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def film(self, tmdb_id, poster_path):
        self.routes[f"/3/movie/{tmdb_id}"] = (200, {"Content-Type": "application/json"},
                                              json.dumps({"id": tmdb_id, "poster_path": poster_path}).encode())

    def image(self, poster_path, body, content_type="image/jpeg", **headers):
        self.routes[f"/t/p/w500{poster_path}"] = (200, {"Content-Type": content_type, **headers}, body)

    def api_requests(self):
        return [request for request in self.requests if request["path"].startswith("/3/")]


@pytest.fixture
def tmdb(settings, tmp_path):
    stand_in = StandInTMDB()
    settings.TMDB_API_KEY = "0123456789abcdef0123456789abcdef"
    settings.TMDB_API_URL = f"{stand_in.url}/3"
    settings.TMDB_IMAGE_URL = f"{stand_in.url}/t/p"
    settings.TMDB_REQUESTS_PER_SECOND = 1000
    settings.MEDIA_ROOT = tmp_path / "media"
    yield stand_in
    stand_in.server.shutdown()


def stored_files(settings) -> list[Path]:
    return sorted(Path(settings.MEDIA_ROOT).rglob("*.*")) if Path(settings.MEDIA_ROOT).exists() else []


def test_a_poster_is_fetched_by_tmdb_id_stored_in_media_and_shown_on_the_pages(tmdb, client, settings):
    movie = make_movie("The Matrix", year=1999, tmdb_id=603)
    tmdb.film(603, "/matrix.jpg")
    tmdb.image("/matrix.jpg", jpeg())

    run = fetch_posters(progress=False)

    assert (run.stored, run.failed) == (1, [])
    movie.refresh_from_db()
    assert movie.poster.name == f"posters/{movie.pk}.jpg"
    assert stored_files(settings) == [Path(settings.MEDIA_ROOT) / "posters" / f"{movie.pk}.jpg"]
    assert Image.open(movie.poster.path).size == (20, 30)
    assert "api_key=0123456789abcdef0123456789abcdef" in tmdb.api_requests()[0]["query"]
    for url in (movie.get_absolute_url(), reverse("catalog:search") + "?q=matrix"):
        assert f'src="/media/posters/{movie.pk}.jpg"' in client.get(url).text


def test_a_film_without_a_tmdb_id_is_found_by_its_imdb_id(tmdb):
    movie = make_movie("Heat", year=1995, imdb_id="tt0113277")
    tmdb.routes["/3/find/tt0113277"] = (200, {"Content-Type": "application/json"},
                                        json.dumps({"movie_results": [{"id": 949, "poster_path": "/heat.png"}]}).encode())
    buffer = io.BytesIO()
    Image.new("RGB", (10, 15)).save(buffer, "PNG")
    tmdb.image("/heat.png", buffer.getvalue(), content_type="image/png")

    assert fetch_posters(progress=False).stored == 1
    assert Movie.objects.get(pk=movie.pk).poster.name.endswith(".png")
    assert "external_source=imdb_id" in tmdb.api_requests()[0]["query"]


def test_a_v4_read_access_token_is_sent_as_a_bearer_header(tmdb, settings):
    settings.TMDB_API_KEY = "eyJhbGciOiJIUzI1NiJ9.stand-in.token"
    make_movie("Heat", tmdb_id=949)
    tmdb.film(949, "/heat.jpg")
    tmdb.image("/heat.jpg", jpeg())

    assert fetch_posters(progress=False).stored == 1
    request = tmdb.api_requests()[0]
    assert request["headers"]["Authorization"] == "Bearer eyJhbGciOiJIUzI1NiJ9.stand-in.token"
    assert "api_key" not in request["query"]


def test_a_film_tmdb_does_not_know_is_counted_and_not_asked_again_unless_asked(tmdb):
    make_movie("Unknown Film", tmdb_id=111)  # the stand-in answers 404
    make_movie("No Ids At All")

    first = fetch_posters(progress=False)
    assert (first.stored, first.not_on_tmdb, first.without_ids) == (0, 1, 1)
    asked = len(tmdb.api_requests())

    again = fetch_posters(progress=False)
    assert (again.stored, again.not_on_tmdb, len(tmdb.api_requests())) == (0, 0, asked)

    tmdb.film(111, "/found-later.jpg")
    tmdb.image("/found-later.jpg", jpeg())
    assert fetch_posters(progress=False, retry_missing=True).stored == 1


def test_a_run_that_stops_keeps_what_it_stored_and_the_next_run_does_only_the_rest(tmdb, settings):
    popular = make_movie("Popular", tmdb_id=1, rating_count=100)
    rare = make_movie("Rare", tmdb_id=2, rating_count=1)
    Movie.objects.filter(pk=popular.pk).update(rating_count=100)
    tmdb.film(1, "/one.jpg")
    tmdb.image("/one.jpg", jpeg())
    tmdb.routes["/3/movie/2"] = (401, {"Content-Type": "application/json"}, b'{"status_code": 7}')

    with pytest.raises(TMDBAuthError, match="refused the API key"):
        fetch_posters(progress=False)
    assert Movie.objects.get(pk=popular.pk).poster  # stored before the run stopped
    assert not Movie.objects.get(pk=rare.pk).poster

    tmdb.film(2, "/two.jpg")
    tmdb.image("/two.jpg", jpeg())
    tmdb.requests.clear()
    run = fetch_posters(progress=False)
    assert (run.stored, run.had_one) == (1, 1)
    assert [request["path"] for request in tmdb.api_requests()] == ["/3/movie/2"]
    assert len(stored_files(settings)) == 2


def test_a_429_waits_for_retry_after_and_then_gets_the_poster(tmdb):
    make_movie("Busy", tmdb_id=5)
    ok = (200, {"Content-Type": "application/json"}, json.dumps({"poster_path": "/busy.jpg"}).encode())
    tmdb.routes["/3/movie/5"] = [(429, {"Retry-After": "1", "Content-Type": "application/json"}, b'{"status_code": 25}'), ok]
    tmdb.image("/busy.jpg", jpeg())

    run = fetch_posters(progress=False)

    assert (run.stored, run.failed) == (1, [])
    first, second = tmdb.api_requests()
    assert second["at"] - first["at"] >= 0.95


def test_a_server_error_is_tried_again_before_the_film_is_given_up(tmdb):
    make_movie("Flaky", tmdb_id=6)
    ok = (200, {"Content-Type": "application/json"}, json.dumps({"poster_path": "/flaky.jpg"}).encode())
    tmdb.routes["/3/movie/6"] = [(503, {"Content-Type": "text/plain"}, b"busy"), ok]
    tmdb.image("/flaky.jpg", jpeg())
    make_movie("Broken", tmdb_id=9)
    tmdb.routes["/3/movie/9"] = (500, {"Content-Type": "text/plain"}, b"broken")

    run = fetch_posters(progress=False)

    assert run.stored == 1
    assert run.failed == [("Broken (2000)", f"TMDB answered 500 for {tmdb.url}/3/movie/9")]  # the key never shown
    assert len([r for r in tmdb.api_requests() if r["path"] == "/3/movie/9"]) == 4


def test_api_requests_are_paced_to_the_configured_rate(tmdb, settings):
    settings.TMDB_REQUESTS_PER_SECOND = 10
    for tmdb_id in range(1, 6):
        make_movie(f"Film {tmdb_id}", tmdb_id=tmdb_id)  # all unknown: one API request each

    fetch_posters(progress=False)

    times = [request["at"] for request in tmdb.api_requests()]
    assert len(times) == 5
    assert times[-1] - times[0] >= 0.35  # four intervals of 0.1 s, less the network's jitter


@pytest.mark.parametrize(
    "content_type, body, extra_headers, reason",
    [
        ("text/html", b"<html>Not found</html>", {}, "not a JPEG, PNG or WebP image"),
        ("image/jpeg", b"\xff\xd8\xff\xe0 this is not really a JPEG", {}, "not a readable image"),
        ("image/png", None, {}, "holds a jpeg image"),
        ("image/jpeg", None, {"Content-Length": "9000000"}, "over the 2,000,000 allowed"),
        ("image/jpeg", jpeg(200, 300)[:400], {}, "not a readable image"),
    ],
    ids=["html page", "broken jpeg", "type does not match", "too large", "cut short"],
)
def test_a_bad_image_is_refused_named_in_the_summary_and_nothing_is_stored(
    tmdb, settings, content_type, body, extra_headers, reason
):
    movie = make_movie("Bad Image", tmdb_id=7)
    tmdb.film(7, "/bad.jpg")
    tmdb.image("/bad.jpg", body if body is not None else jpeg(), content_type=content_type, **extra_headers)

    run = fetch_posters(progress=False)

    assert run.stored == 0
    [(film, message)] = run.failed
    assert film == "Bad Image (2000)" and reason in message
    assert not Movie.objects.get(pk=movie.pk).poster
    assert stored_files(settings) == []
    assert "Bad Image (2000): " in run.summary()


def test_an_image_without_a_stated_length_is_read_only_up_to_the_limit_and_refused(tmdb, settings):
    settings.TMDB_MAX_POSTER_BYTES = 1000
    make_movie("Huge", tmdb_id=8)
    tmdb.film(8, "/huge.jpg")
    tmdb.routes["/t/p/w500/huge.jpg"] = (200, {"Content-Type": "image/jpeg", "Content-Length": None}, jpeg(400, 600))

    run = fetch_posters(progress=False)

    assert "over the 1,000 bytes allowed" in run.failed[0][1]


def test_the_command_reports_what_it_did_and_says_how_to_set_a_missing_key(tmdb, settings):
    make_movie("Heat", tmdb_id=949)
    tmdb.film(949, "/heat.jpg")
    tmdb.image("/heat.jpg", jpeg())
    out = io.StringIO()
    call_command("fetch_posters", stdout=out, verbosity=0)
    assert "Posters stored: 1; already had one: 0; none on TMDB: 0; no TMDB or IMDb id: 0; failed: 0." in out.getvalue()

    settings.TMDB_API_KEY = ""
    with pytest.raises(CommandError, match="set TMDB_API_KEY"):
        call_command("fetch_posters", verbosity=0)


def test_staff_fetch_posters_for_chosen_movies_from_the_admin(tmdb, client):
    chosen = make_movie("Chosen", tmdb_id=10)
    other = make_movie("Other", tmdb_id=11)
    for tmdb_id in (10, 11):
        tmdb.film(tmdb_id, f"/{tmdb_id}.jpg")
        tmdb.image(f"/{tmdb_id}.jpg", jpeg())
    client.force_login(make_user("staff@example.com", is_staff=True, is_superuser=True))

    response = client.post(
        reverse("admin:catalog_movie_changelist"),
        {"action": "fetch_tmdb_posters", "_selected_action": [chosen.pk]},
        follow=True,
    )

    assert "Fetching posters for 1 movie from TMDB" in response.text
    assert Movie.objects.get(pk=chosen.pk).poster  # tasks run in process in tests
    assert not Movie.objects.get(pk=other.pk).poster


@pytest.mark.redis
@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_the_poster_task_runs_in_a_celery_worker_with_a_progress_bar(tmdb, start_worker, settings):
    from tests.test_pipeline_worker import wait_for

    movie = make_movie("Worker Poster", tmdb_id=12)
    tmdb.film(12, "/worker.jpg")
    tmdb.image("/worker.jpg", jpeg())
    worker = start_worker(env={
        "TMDB_API_KEY": settings.TMDB_API_KEY, "TMDB_API_URL": settings.TMDB_API_URL,
        "TMDB_IMAGE_URL": settings.TMDB_IMAGE_URL,
    })

    fetch_posters_task.delay()

    wait_for(lambda: Movie.objects.get(pk=movie.pk).poster, timeout=60, message=f"poster stored\n{worker.log()[-2000:]}")
    assert (Path(settings.MEDIA_ROOT) / Movie.objects.get(pk=movie.pk).poster.name).exists()
    wait_for(lambda: "Posters stored: 1" in worker.log(), timeout=30, message="summary logged")
    assert "posters: 100%" in worker.log()


# --- Placeholders --------------------------------------------------------------------------------


def test_placeholders_of_films_sharing_a_genre_still_differ_in_colour_and_pattern():
    posters = [placeholder_svg(title=title, year=year, genre_name="Drama")
               for title, year in [("Heat", 1995), ("Heat", 2013), ("Amelie", 2001), ("Seven", 1995)]]
    assert len(set(posters)) == 4
    backgrounds = {poster.split('stop-color="')[1].split('"')[0] for poster in posters}
    assert len(backgrounds) == 4


def test_a_placeholder_is_the_same_every_time_and_carries_title_year_and_genre():
    first = placeholder_svg(title="The Godfather", year=1972, genre_name="Crime")
    assert first == placeholder_svg(title="The Godfather", year=1972, genre_name="Crime")
    assert "Godfather" in first and ">1972<" in first and ">CRIME<" in first
    assert 'aria-label="The Godfather (1972): no poster available"' in first


def test_a_very_long_title_is_shortened_on_the_placeholder_not_spilled():
    title = "Dr. Strangelove or: How I Learned to Stop Worrying and Love the Bomb and Other Stories Besides"
    svg = placeholder_svg(title=title, year=1964)
    assert svg.count("<tspan") <= 5
    assert "…" in svg
