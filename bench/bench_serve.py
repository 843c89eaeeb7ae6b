"""Pages and API rows under load, measured against the floor (`/healthz`) in the same run.

gunicorn (deploy/gunicorn.conf.py, BENCH_SERVE_WORKERS=2 workers) on PostgreSQL (database
BENCH_SERVE_DATABASE, default movierec_serve_bench) holding ml-latest-small with its TMDB, IMDB
and HetRec metadata and a trained model, with a redis-server of its own (port 6411) as cache and
broker. The database is loaded once and reused by later runs (the output says which). 50 real
MovieLens users get passwords, an API token (knox) and a website session each; wrk drives
BENCH_SERVE_CONNECTIONS (8) connections per endpoint for BENCH_SERVE_SECONDS (10) after a warm-up,
a Lua script rotating through the users (and films, genres, queries), and the table gives req/s,
p50 and p99 with the ratio of req/s to `/healthz`'s. Then the signed-in rows again for the user
with the most ratings near 2,000 and for one with few.

BENCH_SERVE_CODE=<folder> serves another checkout's code (e.g. `git worktree add /tmp/before main`)
against the same database and model: the "before" figures of a change, measured the same way.

BENCH_SERVE_SCALE=RATINGS,MOVIES,USERS (e.g. 1000000,30000,20000) measures the same on a release
written by `manage.py generate_ratings` (its own database movierec_serve_scale_<RATINGS>, reused
too) instead of ml-latest-small.

`python -m bench.bench_serve prepare` only loads the database (e.g. while the machine is busy), so a
later run measures at once.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from bench.servers import ROOT, manage, Gunicorn, PrivateRedis, free_port

POSTGRES = os.environ.get("BENCH_SERVE_POSTGRES", "postgres://postgres@127.0.0.1:5432")
DATASETS = Path(os.environ.get("BENCH_DATASETS", ROOT.parent.parent / "shared" / "datasets"))
if not DATASETS.exists():
    DATASETS = Path("/work/shared/datasets")
SMALL = DATASETS / "ml-latest-small"
METADATA = [DATASETS / "tmdb-5000" / "tmdb_5000_movies.csv", DATASETS / "imdb-5000-movie-metadata" / "movie_metadata.csv",
            DATASETS / "hetrec2011-movielens-2k-v2"]
SCALE = os.environ.get("BENCH_SERVE_SCALE", "")
DATABASE = os.environ.get("BENCH_SERVE_DATABASE") or (
    f"movierec_serve_scale_{SCALE.split(',')[0]}" if SCALE else "movierec_serve_bench")
SECONDS = float(os.environ.get("BENCH_SERVE_SECONDS", "10"))
WARMUP_SECONDS = float(os.environ.get("BENCH_SERVE_WARMUP", "3"))
CONNECTIONS = int(os.environ.get("BENCH_SERVE_CONNECTIONS", "8"))
WORKERS = int(os.environ.get("BENCH_SERVE_WORKERS", "2"))
USERS = 50
CODE = Path(os.environ.get("BENCH_SERVE_CODE") or ROOT)
REDIS_PORTS = range(6411, 6420)
WEB_PORTS = range(8100, 8200)
GENRES = ["drama", "comedy", "action", "thriller", "romance", "sci-fi", "adventure", "crime"]

# (name, target ratio to the floor, target p99 ms or None)
TARGETS = {
    "recommendations API, top row": (0.5, 50),
    "recommendations API, genre row": (0.5, 50),
    "recommendations API, because row": (0.5, 50),
    "recommendations API, similar row": (0.5, 50),
    "home page, signed in": (0.1, 150),
    "movie page, signed in": (0.15, None),
    "search, signed in": (0.15, None),
    "home page, anonymous": (0.15, None),
}


def _psql(sql: str, database: str = "postgres") -> str:
    result = subprocess.run(["psql", f"{POSTGRES}/{database}", "-qtA", "-c", sql], capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"psql failed: {result.stderr}")
    return result.stdout.strip()


def _loaded(database: str) -> str | None:
    """"N ratings, model vK" when the database holds ratings and a published model, else None."""
    if _psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}'") != "1":
        return None
    try:
        ratings = int(_psql("SELECT count(*) FROM catalog_rating", database))
        version = _psql("SELECT id FROM recommendations_modelversion WHERE is_current", database)
    except RuntimeError:
        return None
    return f"{ratings:,} ratings, model v{version}" if ratings and version else None


def _load(env: dict, folder: Path) -> None:
    """Create the database and fill it: the release (ml-latest-small + metadata, or generated), a model."""
    _psql(f"DROP DATABASE IF EXISTS {DATABASE}")
    _psql(f"CREATE DATABASE {DATABASE}")
    started = time.perf_counter()
    manage(env, "migrate", "--noinput", "-v0")
    if SCALE:
        ratings, movies, users = (int(part) for part in SCALE.split(","))
        release = folder / "release"
        manage(env, "generate_ratings", "--users", str(users), "--movies", str(movies), "--ratings", str(ratings),
                "--out", str(release), "--no-progress")
        manage(env, "import_movielens", str(release))
        shutil.rmtree(release, ignore_errors=True)
    else:
        manage(env, "import_movielens", str(SMALL))
        manage(env, "import_metadata", *map(str, METADATA))
    print(f"  imported in {time.perf_counter() - started:.0f} s", flush=True)
    started = time.perf_counter()
    manage(env, "train_model")
    print(f"  model trained in {time.perf_counter() - started:.0f} s", flush=True)


SETUP_SCRIPT = """
import json, random
from django.contrib.auth.hashers import make_password
from django.db.models import Count
from django.test import Client
from accounts.models import User
from accounts.services import issue_api_token
from catalog.models import Genre, Movie
counts = dict(User.objects.annotate(n=Count("ratings")).filter(n__gt=0).values_list("pk", "n"))
regular = sorted(pk for pk, n in counts.items() if 20 <= n <= 1000)[:{users}]
heavy = min(counts, key=lambda pk: (abs(counts[pk] - 2000), pk))
light = min(counts, key=lambda pk: (counts[pk], pk))
password = make_password("bench-serve-password")
def sign_in(pk):
    user = User.objects.get(pk=pk)
    user.password = password
    user.save(update_fields=["password"])
    client = Client()
    client.force_login(user)
    return {{"id": pk, "ratings": counts[pk], "token": issue_api_token(user=user)[1],
             "session": client.cookies["sessionid"].value}}
slugs = set(Genre.objects.values_list("slug", flat=True))
print("SETUP " + json.dumps({{
    "users": [sign_in(pk) for pk in regular], "heavy": sign_in(heavy), "light": sign_in(light),
    "movies": list(Movie.objects.order_by("-rating_count", "pk").values_list("pk", flat=True)[:300]),
    "genres": [g for g in {genres!r} if g in slugs] or sorted(slugs)[:8],
    "films": Movie.objects.count(),
}}))
"""


def _queries() -> list[str]:
    lines = (ROOT / "bench" / "data" / "search_queries.csv").read_text(encoding="utf-8").splitlines()[1:]
    return [line.split(",", 1)[0] for line in lines if line]


def _token(user: dict) -> dict:
    return {"Authorization": f"Token {user['token']}"}


def _cookie(user: dict) -> dict:
    return {"Cookie": f"sessionid={user['session']}"}


def endpoints(setup: dict, users: list[dict]) -> dict[str, list[tuple[str, dict]]]:
    """{endpoint name: the requests wrk rotates through (path, headers)}."""
    movies, genres, queries = setup["movies"], setup["genres"], _queries()
    n = len(users)
    api = "/api/v1/recommendations/"
    many = max(n, 200)
    return {
        "floor: /healthz": [("/healthz", {})],
        "recommendations API, top row": [(f"{api}?row=top&n=20", _token(u)) for u in users],
        "recommendations API, genre row": [(f"{api}?row=genre&genre={genres[i % len(genres)]}&n=20",
                                            _token(users[i % n])) for i in range(many)],
        "recommendations API, because row": [(f"{api}?row=because&n=20", _token(u)) for u in users],
        "recommendations API, similar row": [(f"{api}?row=similar&movie={movies[i % len(movies)]}&n=20",
                                              _token(users[i % n])) for i in range(many)],
        "home page, signed in": [("/", _cookie(u)) for u in users],
        "movie page, signed in": [(f"/movies/{movies[i % len(movies)]}/", _cookie(users[i % n])) for i in range(many)],
        "search, signed in": [(f"/search/?{urllib.parse.urlencode({'q': queries[i % len(queries)]})}",
                               _cookie(users[i % n])) for i in range(max(len(queries), n))],
        "home page, anonymous": [("/", {})],
    }


LUA = """
local requests = {requests}
local counter = 0
function setup(thread)
  thread:set("offset", math.random(1, #requests))
end
function init(args)
  counter = offset
end
function request()
  counter = counter % #requests + 1
  local r = requests[counter]
  return wrk.format("GET", r[1], r[2])
end
"""


def _lua(requests: list[tuple[str, dict]]) -> str:
    def string(text: str) -> str:
        return json.dumps(text, ensure_ascii=True)

    rows = ",\n".join("{%s, {%s}}" % (string(path), ", ".join(f"[{string(k)}] = {string(v)}" for k, v in headers.items()))
                      for path, headers in requests)
    return LUA.format(requests="{\n" + rows + "\n}")


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk(url: str, script: Path, seconds: float) -> dict:
    result = subprocess.run(["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "--latency",
                             "-s", str(script), url], capture_output=True, text=True)
    out = result.stdout
    if result.returncode:
        raise RuntimeError(f"wrk failed: {result.stderr}\n{out}")

    def latency(percent: str) -> float:
        value, unit = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * UNITS[unit]

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rate": rate, "p50": latency("50"), "p99": latency("99"), "requests": total,
            "non_2xx": int(bad.group(1)) if bad else 0, "socket_errors": errors.group(1) if errors else ""}


def _measure(base: str, folder: Path, name: str, requests: list[tuple[str, dict]]) -> dict:
    script = folder / (re.sub(r"\W+", "-", name) + ".lua")
    script.write_text(_lua(requests))
    if WARMUP_SECONDS:
        _wrk(base, script, WARMUP_SECONDS)
    return _wrk(base, script, SECONDS)


def _warm(base: str, requests: list[tuple[str, dict]]) -> None:
    """One request each (every user's rows computed and kept, every worker's first request made), as a site in use has."""
    for path, headers in requests:
        with urllib.request.urlopen(urllib.request.Request(base + path, headers=headers), timeout=60) as response:
            response.read()


def _row(name: str, figures: dict, floor: float) -> str:
    ratio = figures["rate"] / floor
    target = next((t for key, t in TARGETS.items() if name.startswith(key)), None)
    verdict = ""
    if target:
        ok = ratio >= target[0] and (target[1] is None or figures["p99"] < target[1])
        verdict = f"{'met' if ok else 'MISSED'} (≥ {target[0]}×" + (f", p99 < {target[1]} ms)" if target[1] else ")")
    flags = ""
    if figures["non_2xx"] or figures["socket_errors"]:
        flags = f" [{figures['non_2xx']} non-2xx, socket errors: {figures['socket_errors'] or 0}]"
    return (f"| {name} | {figures['rate']:,.0f} | {figures['p50']:.1f} | {figures['p99']:.1f} | {ratio:.3f} | "
            f"{verdict} |{flags}")


def _table(results: dict[str, dict], floor: float) -> None:
    print("| endpoint | req/s | p50 ms | p99 ms | ratio to floor | target |")
    print("|---|---|---|---|---|---|")
    for name, figures in results.items():
        print(_row(name, figures, floor), flush=True)


def main(*, prepare_only: bool = False) -> None:
    """Measure (``prepare_only``: only load the database when it is not loaded yet)."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    folder = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    redis = PrivateRedis(REDIS_PORTS).start()
    env = {
        **os.environ, "DATABASE_URL": f"{POSTGRES}/{DATABASE}", "REDIS_URL": redis.url, "CELERY_BROKER_URL": redis.url,
        "MEDIA_ROOT": str(ROOT / ".cache" / f"bench-{DATABASE}-media"), "DEBUG": "0",
        "SECRET_KEY": "bench-serve-" + "x" * 40, "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0", "BEHIND_TLS_PROXY": "0", "SESSION_COOKIE_SECURE": "0", "CSRF_COOKIE_SECURE": "0",
        "LOG_FORMAT": "json", "LOG_LEVEL": "WARNING", "API_THROTTLE_USER": "10000000/min",
        "API_THROTTLE_ANON": "10000000/min", "CELERY_TASK_ALWAYS_EAGER": "0",
        "DJANGO_SETTINGS_MODULE": "movierec.settings", "PYTHONUNBUFFERED": "1", "WEB_CONCURRENCY": str(WORKERS),
    }
    web = None
    try:
        loaded = _loaded(DATABASE)
        if loaded:
            print(f"reusing database {DATABASE} ({loaded}); drop it to load again", flush=True)
        else:
            print(f"loading database {DATABASE} ({'generated ' + SCALE if SCALE else 'ml-latest-small + metadata'})",
                  flush=True)
            _load(env, folder)
        if prepare_only:
            return
        manage(env, "migrate", "--noinput", "-v0")
        setup = json.loads(manage(env, "shell", stdin=SETUP_SCRIPT.format(users=USERS, genres=GENRES))
                           .split("SETUP ", 1)[1])
        users = setup["users"]
        print(f"{len(users)} signed-in users ({min(u['ratings'] for u in users)}–{max(u['ratings'] for u in users)} "
              f"ratings), {setup['films']:,} films; gunicorn {WORKERS} workers, wrk {CONNECTIONS} connections, "
              f"{SECONDS:g} s per endpoint after {WARMUP_SECONDS:g} s of warm-up; code from {CODE}", flush=True)
        web = Gunicorn(env, free_port(WEB_PORTS), folder / "gunicorn.log", workers=WORKERS,
                       root=CODE).start(timeout=180)
        plan = endpoints(setup, users)
        results = {}
        for name, requests in plan.items():
            if name != "floor: /healthz":
                # Every request of the rotation once, just before it is measured (the genre row's 200
                # user × genre pairs too, and the films' pages, whose shared parts are kept for a minute:
                # a first view is computed; what is measured is a site in use).
                _warm(web.url, requests)
            results[name] = _measure(web.url, folder, name, requests)
        # The floor again at the end: on a shared machine the load moves during a run; the ratios
        # are to the mean of the two.
        again = _measure(web.url, folder, "floor-again", plan["floor: /healthz"])
        print(f"floor: {results['floor: /healthz']['rate']:,.0f} req/s at the start, {again['rate']:,.0f} at the end")
        floor = (results["floor: /healthz"]["rate"] + again["rate"]) / 2
        print("\nml-latest-small + metadata" if not SCALE else f"\ngenerated release {SCALE}")
        _table(results, floor)

        by_user = {}
        for label, user in (("heavy", setup["heavy"]), ("light", setup["light"])):
            for name in ("recommendations API, top row", "recommendations API, genre row",
                         "recommendations API, because row", "home page, signed in"):
                requests = endpoints(setup, [user])[name]
                _warm(web.url, requests[:1])
                by_user[f"{name} — user with {user['ratings']:,} ratings"] = _measure(
                    web.url, folder, f"{label}-{name}", requests)
        print("\none user, every request (same floor)")
        _table(by_user, floor)
        log = (folder / "gunicorn.log").read_text(errors="replace")
        if "Traceback" in log:
            print("gunicorn logged errors:\n" + log[-3000:])
    finally:
        if web is not None:
            web.stop()
        redis.close()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main(prepare_only=sys.argv[1:2] == ["prepare"])
