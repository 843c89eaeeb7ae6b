"""Hostile history uploads and confirmations: each gets a clear form error (HTTP 400) naming the
file, line and reason, never a 500, and nothing is written.

The corpus (tests/hostile_uploads.py) is built in memory by the tests: zip bombs of every
compression method, damaged members, non-UTF-8 text, huge numbers, nan. Their peak memory is
measured by `python -m bench uploads`, not here.
"""
import html
import io
import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from catalog.history_import import create_history_import
from catalog.models import Rating, WatchlistEntry
from recommendations.models import HistoryImport
from tests.factories import make_movie, make_user
from tests.hostile_uploads import BIG, CORPUS

pytestmark = pytest.mark.django_db


def upload(client, filename, data):
    handle = io.BytesIO(data)
    handle.name = filename
    return client.post(reverse("history:upload"), {"file": handle})


def nothing_written():
    return not HistoryImport.objects.exists() and not Rating.objects.exists() and not WatchlistEntry.objects.exists()


@pytest.mark.parametrize("hostile", CORPUS, ids=[hostile.name for hostile in CORPUS])
def test_a_hostile_upload_gets_a_form_error_naming_the_reason_and_writes_nothing(client, hostile):
    make_movie("Heat", year=1995)
    make_movie("The Matrix", year=1999, imdb_id="tt0133093")
    client.force_login(make_user())

    response = upload(client, hostile.filename, hostile.build())

    assert response.status_code == 400
    assert html.escape(hostile.message) in response.content.decode()
    assert nothing_written()


def test_a_windows_1252_export_is_read_not_refused(client):
    """Not every non-UTF-8 file is hostile: Excel saves Letterboxd CSVs in Windows-1252."""
    amelie = make_movie("Amélie", year=2001)
    client.force_login(make_user())

    response = upload(client, "ratings.csv", "Date,Name,Year,Letterboxd URI,Rating\n2023-01-02,Amélie,2001,,4\n".encode("cp1252"))

    assert response.status_code == 302
    assert HistoryImport.objects.get().rows[0]["movie_id"] == amelie.pk


# --- the confirm form ---------------------------------------------------------------------------

@pytest.fixture
def preview(client):
    """A preview with row 0 matched (Heat) and row 1 ambiguous (two films called Solaris)."""
    user = make_user()
    heat = make_movie("Heat", year=1995)
    solaris = [make_movie("Solaris", year=1972), make_movie("Solaris", year=2002)]
    data = b"Date,Name,Year,Letterboxd URI,Rating\n2023-01-02,Heat,1995,,4\n2023-01-03,Solaris,,,3\n"
    job = create_history_import(user=user, filename="ratings.csv", data=data)
    assert [row["status"] for row in job.rows] == ["matched", "ambiguous"]
    client.force_login(user)
    return {"job": job, "heat": heat, "solaris": solaris}


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"include": "²"}, "Films to import"),
        ({"include": BIG}, "Films to import"),
        ({"include": "-1"}, "Films to import"),
        ({"include": "1"}, "Films to import"),  # row 1 is ambiguous, not a matched row
        ({"choice_1": "²"}, "Solaris (ratings.csv, line 3)"),
        ({"choice_1": BIG}, "Solaris (ratings.csv, line 3)"),
        ({"choice_1": "{heat}"}, "Solaris (ratings.csv, line 3)"),  # a film the preview did not offer
        ({"scale": "times_ten"}, "IMDb scale"),
    ],
)
def test_a_confirmation_with_answers_the_preview_did_not_offer_is_a_form_error(client, preview, answers, message):
    answers = {key: value.replace("{heat}", str(preview["heat"].pk)) for key, value in answers.items()}

    response = client.post(reverse("history:confirm", args=[preview["job"].pk]), answers)

    assert response.status_code == 400
    page = response.content.decode()
    assert "Nothing was imported" in page and html.escape(message) in page
    preview["job"].refresh_from_db()
    assert preview["job"].status == HistoryImport.Status.PREVIEW
    assert not Rating.objects.exists()


def test_a_valid_confirmation_still_imports_the_picked_films(client, preview, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("history:confirm", args=[preview["job"].pk]), {"include": "0", "choice_1": str(preview["solaris"][1].pk)}
        )

    assert response.status_code == 302
    assert dict(Rating.objects.values_list("movie_id", "score")) == {preview["heat"].pk: 4.0, preview["solaris"][1].pk: 3.0}


@pytest.mark.django_db(transaction=True)
def test_concurrent_confirms_run_the_import_once_and_its_counters_are_true():
    """Three tabs (or a triple click) confirm the same import at the same moment, on the real database."""
    user = make_user()
    films = [make_movie(f"Film {index}", year=1950 + index % 60) for index in range(400)]
    rows = "".join(f"2023-01-02,Film {index},{1950 + index % 60},,{1 + index % 9 / 2}\n" for index in range(400))
    job = create_history_import(user=user, filename="ratings.csv", data=f"Date,Name,Year,Letterboxd URI,Rating\n{rows}".encode())
    answers = {"include": [str(index) for index in range(400)]}
    clients = []
    for _ in range(3):
        client = Client()
        client.force_login(user)
        clients.append(client)
    start, responses = threading.Barrier(3), []

    def confirm(client):
        try:
            start.wait()
            responses.append(client.post(reverse("history:confirm", args=[job.pk]), answers))
        finally:
            connection.close()

    threads = [threading.Thread(target=confirm, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [response.status_code for response in responses] == [302, 302, 302]
    assert {response["Location"] for response in responses} == {reverse("history:status", args=[job.pk])}
    job.refresh_from_db()
    assert job.status == HistoryImport.Status.DONE
    assert (job.total, job.done, job.ratings_saved) == (400, 400, 400)
    assert Rating.objects.filter(user=user).count() == len(films)


def test_a_confirmation_from_a_stale_copy_of_the_import_changes_nothing(preview):
    """The interleaving behind concurrent confirms, made certain: two requests both loaded the
    import while it was a preview; the second to confirm must neither re-plan nor re-queue it."""
    from catalog.history_import import AlreadyConfirmed, apply_history_import, confirm_history_import

    first, second = (HistoryImport.objects.get(pk=preview["job"].pk) for _ in range(2))
    confirm_history_import(first, choices={}, excluded=set())
    with pytest.raises(AlreadyConfirmed):
        confirm_history_import(second, choices={1: preview["solaris"][0].pk}, excluded=set())
    apply_history_import(first.pk)
    apply_history_import(first.pk)  # a duplicate task delivery

    job = HistoryImport.objects.get(pk=first.pk)
    assert (job.status, job.total, job.ratings_saved) == (HistoryImport.Status.DONE, 1, 1)
    assert list(Rating.objects.values_list("movie_id", flat=True)) == [preview["heat"].pk]
