"""import_movielens killed midway (SIGKILL of a real `manage.py` process during the write phase).

The import validates and stages everything first, then writes in one transaction, so a kill
must leave the catalogue exactly as it was: no movies, users, ratings or tags of the new
release, no duplicates, no orphans. Re-running the import then completes it, and a third run
changes nothing. The release is generated (never real MovieLens data) and large enough that
the write phase lasts a few seconds, which is when the process is killed.
"""
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from accounts.models import User
from catalog.importers.synthetic import generate_release
from catalog.models import Movie, Rating, Tag
from tests import conftest
from tests.test_import_movielens import catalogue_counts, csv_release

pytestmark = pytest.mark.django_db(transaction=True)

# Enough ratings for the single write transaction to take a few seconds on SQLite and PostgreSQL.
GENERATED_RATINGS = 500_000
WRITE_PHASE_STARTED = "Writing ratings"


def import_process(path: Path, log_path: Path) -> subprocess.Popen:
    """`manage.py import_movielens PATH` on the test database, progress bars going to log_path."""
    env = {**os.environ, "DATABASE_URL": conftest.test_database_url(), "DJANGO_SETTINGS_MODULE": "movierec.settings",
           "PYTHONUNBUFFERED": "1"}
    log = open(log_path, "wb")
    try:
        return subprocess.Popen([sys.executable, "manage.py", "import_movielens", str(path)],
                                cwd=conftest.REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def run_import_to_completion(path: Path, log_path: Path) -> str:
    process = import_process(path, log_path)
    returncode = process.wait(timeout=120)
    output = log_path.read_text(errors="replace")
    assert returncode == 0, output[-3000:]
    assert "Import complete." in output
    return output


def wait_for_output(process: subprocess.Popen, log_path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log_path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise AssertionError(f"never saw {text!r} (exit {process.returncode}):\n{log_path.read_text()[-3000:]}")
        time.sleep(0.02)


def other_database_sessions() -> set[int]:
    """Backend pids of the other sessions on the test database (empty on SQLite)."""
    if connection.vendor != "postgresql":
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return {pid for (pid,) in cursor.fetchall()}


def wait_until_the_killed_session_is_gone(sessions_before_the_import: set[int], timeout: float = 60) -> None:
    """PostgreSQL rolls a dead client's transaction back once its backend notices; wait for that.

    Sessions that were already open before the import started (other tests' threads) are ignored.
    SQLite needs no wait: the killed process's locks died with it and its journal is rolled back on open.
    """
    deadline = time.monotonic() + timeout
    while other_database_sessions() - sessions_before_the_import:
        assert time.monotonic() < deadline, "the killed import's database session never ended"
        time.sleep(0.1)


def catalogue_snapshot():
    """Every row an import writes, by the release's own keys (so duplicates and orphans show)."""
    return {
        "movies": sorted(Movie.objects.values_list("movielens_id", "title")),
        "genre links": sorted(Movie.genres.through.objects.values_list("movie__movielens_id", "genre__name")),
        "users": sorted(User.objects.filter(source=User.Source.MOVIELENS).values_list("external_id", flat=True)),
        "ratings": sorted(Rating.objects.values_list("user__external_id", "movie__movielens_id", "score")),
        "tags": sorted(Tag.objects.values_list("user__external_id", "movie__movielens_id", "tag")),
    }


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.reader(file))[1:]


def expected_counts(*releases: Path) -> tuple[int, int, int, int]:
    """Movies, users, ratings and tags after importing these releases, read straight from their files."""
    movies, users, ratings, tags = set(), set(), set(), set()
    for release in releases:
        movies |= {row[0] for row in read_csv(release / "movies.csv")}
        for user, movie, *_ in read_csv(release / "ratings.csv"):
            users.add(user)
            ratings.add((user, movie))
        for user, movie, tag, _ in read_csv(release / "tags.csv"):
            users.add(user)
            tags.add((user, movie, tag))
    return len(movies), len(users), len(ratings), len(tags)


def test_an_import_killed_while_writing_leaves_the_catalogue_untouched_and_a_rerun_completes_it(tmp_path):
    previous = csv_release(tmp_path / "previous")
    run_import_to_completion(previous, tmp_path / "previous.log")
    before = catalogue_snapshot()
    assert catalogue_counts() == expected_counts(previous) == (4, 3, 5, 2)
    release = generate_release(tmp_path / "big", users=3_000, movies=4_000, ratings=GENERATED_RATINGS,
                               seed=7, progress=False).path

    doomed_log = tmp_path / "killed.log"
    sessions_before_the_import = other_database_sessions()
    doomed = import_process(release, doomed_log)
    wait_for_output(doomed, doomed_log, WRITE_PHASE_STARTED, timeout=60)
    doomed.send_signal(signal.SIGKILL)
    returncode = doomed.wait(timeout=30)
    killed_output = doomed_log.read_text(errors="replace")

    assert returncode == -signal.SIGKILL, killed_output[-3000:]
    assert "Writing movies" in killed_output and "Import complete." not in killed_output
    wait_until_the_killed_session_is_gone(sessions_before_the_import)
    assert catalogue_snapshot() == before
    assert catalogue_counts() == (4, 3, 5, 2)

    output = run_import_to_completion(release, tmp_path / "rerun.log")
    expected = expected_counts(previous, release)
    assert catalogue_counts() == expected
    assert f"{GENERATED_RATINGS:,} in the release" in output
    after_rerun = catalogue_snapshot()
    assert len(set(after_rerun["ratings"])) == len(after_rerun["ratings"]) == expected[2]

    output = run_import_to_completion(release, tmp_path / "third.log")
    assert catalogue_snapshot() == after_rerun
    assert "0 new or changed" in output and "0 new, 0 updated" in output
