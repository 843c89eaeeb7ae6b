"""The fast ratings path of import_movielens gives exactly what the exact reader gives.

Release.iter_rating_blocks (numpy, used on PostgreSQL) must yield the same rows as
Release.iter_ratings for every plain ratings.csv, and refuse (UnusualLayout) every file it does
not read exactly; the import then reads those with the exact reader, so the catalogue comes out
the same on SQLite and PostgreSQL, whichever path a file takes. Releases are written by the tests
(never real MovieLens data).
"""
from datetime import UTC, datetime

import numpy as np
import pytest
from django.core.management import CommandError
from django.db import connection
from django.utils import timezone

from accounts.models import User
from catalog.importers import formats
from catalog.importers.formats import ReleaseError, UnusualLayout, open_release
from catalog.importers.synthetic import generate_release
from catalog.models import Movie, Rating
from catalog.services import refresh_movie_stats
from tests.test_import_interrupted import catalogue_snapshot, expected_counts
from tests.test_import_movielens import RATINGS_CSV, catalogue_counts, csv_release, run_import

pytestmark = pytest.mark.django_db


def block_rows(release):
    rows = []
    for block in release.iter_rating_blocks():
        rows += zip(map(str, block.users.tolist()), block.movies.tolist(), block.scores.tolist(),
                    block.timestamps.tolist())
    return rows


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
@pytest.mark.parametrize("block_bytes", [40, 1 << 20])
def test_block_reader_yields_what_the_exact_reader_yields(tmp_path, monkeypatch, line_end, block_bytes):
    monkeypatch.setattr(formats, "RATING_BLOCK_BYTES", block_bytes)
    ratings = RATINGS_CSV + "0,3,5.0,0\n10,1,1.5,99999999999\n3,2,3.0,1445714997"  # no newline at the end
    release = open_release(csv_release(tmp_path / "rel", **{"ratings.csv": ratings.replace("\n", line_end)}))
    exact = list(release.iter_ratings())
    assert block_rows(release) == exact
    assert len(exact) == 8


# Files the block reader leaves to the exact reader, which accepts them: the import must too.
ACCEPTED_BY_THE_EXACT_READER = {
    "blank lines": RATINGS_CSV.replace("\n1,2", "\n\n1,2") + "\n\n",
    "user id with a leading zero (a distinct external id)": RATINGS_CSV + "03,1,2.0,1445714997\n",
    "whole-star ratings without a decimal": RATINGS_CSV + "9,1,4,1445714997\n",
    "two decimals": RATINGS_CSV + "9,1,4.50,1445714997\n",
    "byte order mark before the header": "\ufeff" + RATINGS_CSV,
    "quoted header": RATINGS_CSV.replace("userId,movieId", '"userId","movieId"', 1),
}


@pytest.mark.parametrize("case", ACCEPTED_BY_THE_EXACT_READER.keys())
def test_unusual_but_valid_files_import_like_the_exact_reader_reads_them(tmp_path, case):
    release_path = csv_release(tmp_path / "rel", **{"ratings.csv": ACCEPTED_BY_THE_EXACT_READER[case]})
    release = open_release(release_path)
    exact = list(release.iter_ratings())
    with pytest.raises(UnusualLayout):
        block_rows(release)

    run_import(release_path)

    stored = sorted(
        Rating.objects.values_list("user__external_id", "movie__movielens_id", "score", "created_at")
    )
    expected = sorted(
        (user, movie, score, datetime.fromtimestamp(ts, tz=UTC)) for user, movie, score, ts in exact
    )
    assert stored == expected
    assert User.objects.filter(source=User.Source.MOVIELENS).count() == len({user for user, *_ in exact} | {"2", "3"})


def test_every_malformed_row_is_refused_by_the_block_reader_and_named_by_the_exact_reader(tmp_path):
    bad_lines = ["1,1,4.0", "1,1,4.0,5,6", "1;1;4.0;5", "1,1,6.0,5", "1,1,0.0,5", "1,99,4.0,5", "x1,1,4.0,5",
                 "1,1,4.0,-5", "1,1,,5", "1,1,4..0,5", "+1,1,4.0,5", " 1,1,4.0,5", '"1",1,4.0,5', "1,1,4.0,5\\."]
    for number, bad in enumerate(bad_lines):
        release = open_release(csv_release(tmp_path / f"bad{number}", **{"ratings.csv": RATINGS_CSV + bad + "\n"}))
        with pytest.raises(UnusualLayout):
            block_rows(release)
        with pytest.raises(ReleaseError, match="ratings.csv, line 7: "):
            list(release.iter_ratings())


def test_first_load_in_several_blocks_matches_the_files_and_the_stats(tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "RATING_BLOCK_BYTES", 4096)  # dozens of blocks, users split across them
    release = generate_release(tmp_path / "gen", users=60, movies=150, ratings=4000, seed=3, progress=False).path
    with open(release / "ratings.csv", "a") as ratings:  # user 1 again, after everybody else (a new block)
        ratings.write("1,150,2.5,1500000000\n" if "\n1,150," not in (release / "ratings.csv").read_text() else "")

    output = run_import(release)

    if connection.vendor == "postgresql":
        assert "first load: binary COPY" in output
    assert catalogue_counts() == expected_counts(release)
    assert User.objects.filter(source=User.Source.MOVIELENS, external_id="1").count() == 1
    exact = sorted(open_release(release).iter_ratings())
    assert sorted(
        Rating.objects.values_list("user__external_id", "movie__movielens_id", "score", "created_at")
    ) == sorted((u, m, s, datetime.fromtimestamp(t, tz=UTC)) for u, m, s, t in exact)
    stats = list(Movie.objects.order_by("pk").values_list("pk", "rating_count", "rating_mean"))
    refresh_movie_stats()
    after = list(Movie.objects.order_by("pk").values_list("pk", "rating_count", "rating_mean"))
    assert [(pk, n) for pk, n, _ in stats] == [(pk, n) for pk, n, _ in after]
    assert np.allclose([m for *_, m in stats], [m for *_, m in after], rtol=0, atol=1e-12)
    # The ids the load used are taken from the sequence: a rating saved afterwards gets a fresh one.
    Rating.objects.create(user=User.objects.create(username="later"), movie=Movie.objects.first(), score=4.0,
                          created_at=timezone.now(), updated_at=timezone.now())
    assert "new or changed" in output

    snapshot = catalogue_snapshot()
    again = run_import(release)
    assert catalogue_snapshot()["ratings"] == snapshot["ratings"]
    assert "0 new or changed" in again


def test_a_pair_rated_twice_far_apart_is_named_and_nothing_written(tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "RATING_BLOCK_BYTES", 64)
    twice = RATINGS_CSV + "1,2,1.0,1500000002\n"
    with pytest.raises(CommandError, match="Nothing was imported.*(user 1 rates movie 2 more than once|one_rating)"):
        run_import(csv_release(tmp_path / "twice", **{"ratings.csv": twice}))
    assert catalogue_counts() == (0, 0, 0, 0)
    assert not Rating.objects.exists()
