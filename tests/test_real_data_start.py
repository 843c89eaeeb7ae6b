"""The README's real-data commands, exactly as the README writes them, take a MovieLens release and its
metadata into a fresh database and serve it with no demo rows.

The commands are read out of the README's "Real data" section, so this test breaks when the README
drifts from what works. Only the data paths, the database and the port are swapped for a small
generated release, crafted metadata files, a temporary SQLite file and a free port.
"""
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request

import pytest

from catalog.importers.synthetic import generate_release
from tests.conftest import REPO_ROOT
from tests.test_import_metadata import IMDB_HEADER, TMDB_HEADER, write_csv, write_hetrec

DATASETS = "../shared/datasets"


def readme_commands() -> list[list[str]]:
    """The shell commands of the README's "Real data" section: one list per code block, with
    backslash continuations joined and trailing comments dropped."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Real data", 1)[1].split("\n## ", 1)[0]
    blocks, current = [], []
    for line in section.splitlines():
        if line.startswith("    "):
            current.append(line[4:])
        elif current and line.strip():
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    joined = []
    for block in blocks:
        commands = []
        for line in "\n".join(block).replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line:
                commands.append(re.sub(r"\s+", " ", line))
        joined.append(commands)
    return joined


@pytest.fixture
def data(tmp_path):
    """A generated release whose links.csv gives IMDb/TMDB ids, and metadata files for some films
    (HetRec with one film whose movieID and imdbID disagree, as the real one has)."""
    release = generate_release(tmp_path / "release", users=40, movies=60, ratings=1600, seed=3, progress=False).path
    with open(release / "links.csv", "w") as links:
        links.write("movieId,imdbId,tmdbId\n" + "".join(f"{m},{m:07d},{1000 + m}\n" for m in range(1, 61)))
    tmdb = write_csv(tmp_path / "tmdb_5000_movies.csv", TMDB_HEADER, [
        {"id": 1001, "title": "x", "overview": "A safecracker plans one last job.", "keywords": "[]", "runtime": "101",
         "release_date": "1999-01-01"}])
    imdb = write_csv(tmp_path / "movie_metadata.csv", IMDB_HEADER, [
        {"director_name": "Ann Director", "actor_1_name": "Bo Actor", "movie_imdb_link": "http://www.imdb.com/title/tt0000001/"}])
    hetrec = write_hetrec(tmp_path / "hetrec", [(2, "Film two", "0000002"), (3, "Film four", "0000004")],
                          [(2, "cy_director", "Cy Director"), (3, "wrong_director", "Wrong Director")])
    return {
        f"{DATASETS}/ml-latest-small": str(release),
        f"{DATASETS}/tmdb-5000/tmdb_5000_movies.csv": str(tmdb),
        f"{DATASETS}/imdb-5000-movie-metadata/movie_metadata.csv": str(imdb),
        f"{DATASETS}/hetrec2011-movielens-2k-v2": str(hetrec),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def substituted(command: str, data: dict, database: str, port: int) -> str:
    for readme_path, path in data.items():
        command = command.replace(readme_path, path)
    command = re.sub(r"sqlite:///\S+", f"sqlite:///{database}", command)
    command = command.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace(".venv/bin/python", sys.executable)
    assert DATASETS not in command, f"README command uses a data set this test does not stand in for: {command}"
    return command


def environment(tmp_path) -> dict:
    return {**os.environ, "REDIS_URL": "", "CELERY_TASK_ALWAYS_EAGER": "1", "MEDIA_ROOT": str(tmp_path / "media"),
            "ADMIN_PASSWORD": "a-Long-test-passw0rd", "DATABASE_URL": "sqlite:///unused-by-these-commands"}


def run_shell(script: str, env: dict) -> str:
    done = subprocess.run(["bash", "-ec", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{script}\n--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
    return done.stdout


def serve_and_fetch(script: str, env: dict, port: int) -> str:
    """Run the serve command in the background and return the home page it serves."""
    server = subprocess.Popen(["bash", "-ec", f"{script} --noreload"], cwd=REPO_ROOT, env=env, start_new_session=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
                    return response.read().decode()
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the server did not answer:\n{server.stdout.read().decode()[-3000:]}")
                time.sleep(0.3)
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # bash and the server it started
        server.wait(timeout=20)


def check_catalogue(database) -> None:
    """The release and its metadata, no demo rows, a published model."""
    with sqlite3.connect(database) as db:
        one = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
        assert one("SELECT COUNT(*) FROM catalog_movie") == 60
        assert one("SELECT COUNT(*) FROM catalog_movie WHERE movielens_id IS NULL") == 0
        assert one("SELECT COUNT(*) FROM accounts_user WHERE source = 'simulated'") == 0
        assert one("SELECT COUNT(*) FROM accounts_user WHERE source = 'movielens'") == 40
        assert one("SELECT COUNT(*) FROM catalog_rating") == 1600
        credits = set(db.execute("""SELECT m.movielens_id, d.name FROM catalog_movie_directors l
                                    JOIN catalog_movie m ON m.id = l.movie_id JOIN catalog_director d ON d.id = l.director_id"""))
        assert credits == {(1, "Ann Director"), (2, "Cy Director")}  # HetRec's film "3" is film 4: skipped
        assert one("SELECT synopsis FROM catalog_movie WHERE movielens_id = 1") == "A safecracker plans one last job."
        assert one("SELECT COUNT(*) FROM recommendations_modelversion WHERE is_current") == 1


def test_readme_one_command_start_on_a_fresh_database(tmp_path, data):
    """`make run DATA=... METADATA=...`: the setup commands make would run (migrate, collectstatic,
    bootstrap_site --data --metadata), then the site serves the release."""
    [command] = [c for block in readme_commands() for c in block if " make run DATA=" in f" {c}"]
    database, port, env = tmp_path / "one-command.sqlite3", free_port(), environment(tmp_path)
    dry_run = substituted(command, data, database, port).replace("make run", "make --no-print-directory -n setup")
    planned = [line for line in run_shell(dry_run, env).splitlines() if "manage.py" in line]
    assert [line.split("manage.py ")[1].split()[0] for line in planned] == ["migrate", "collectstatic", "bootstrap_site"]
    prefix = command.split("make run")[0]
    output = run_shell("\n".join(substituted(prefix, data, database, port) + line for line in planned), env)
    assert "Fitting and publishing a recommendation model" in output
    check_catalogue(database)
    home = serve_and_fetch(substituted(f"{prefix}.venv/bin/python manage.py runserver 127.0.0.1:8000", data, database, port),
                           env, port)
    assert "simulated" not in home.lower()
    with sqlite3.connect(database) as db:
        popular = db.execute("SELECT title FROM catalog_movie ORDER BY rating_count DESC LIMIT 1").fetchone()[0]
    assert popular in home


def test_readme_step_by_step_commands_on_a_fresh_database(tmp_path, data):
    [block] = [b for b in readme_commands() if any(c.startswith("export DATABASE_URL") for c in b)]
    database, port, env = tmp_path / "step-by-step.sqlite3", free_port(), environment(tmp_path)
    serve = [c for c in block if " runserver " in c]
    steps = [substituted(c, data, database, port) for c in block if c not in serve]
    assert any("manage.py migrate" in step for step in steps)  # a new DATABASE_URL needs its tables first
    run_shell("\n".join(steps), env)
    check_catalogue(database)
    exported = next(step for step in steps if step.startswith("export DATABASE_URL"))
    home = serve_and_fetch(f"{exported}; {substituted(serve[0], data, database, port)}", env, port)
    assert "simulated" not in home.lower()
