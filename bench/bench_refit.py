"""A full refit at MovieLens-25M size: time and peak memory of each step, quality against popularity.

For each size (BENCH_REFIT_SIZES, default "1m,10m,25m"; e.g. "1m" for a quick run) a generated
release (manage.py generate_ratings: latent tastes by genre and era) is imported into its own
PostgreSQL database ``movierec_scale_<size>`` through the import's COPY fast path, or reused when
the database already holds that release (its comment names the generator's version and size).
Then the real refit task (recommendations.refit_model) runs in a real Celery worker
(`celery worker --concurrency 2`) on a private redis-server (port BENCH_REFIT_REDIS_PORT, 6431),
with every generated user counted as a site account that signed in today, so the publish warms
all of their lists. While it runs the bench samples the resident memory of the worker's whole
process tree (psutil, every 0.2 s); the task records when each step started and ended
(``metrics["steps"]``), so each step gets its wall time and the tree's peak RSS within it.
Quality: the refit's holdout check (a sample of users, 10% of their ratings held out, the check
model fitted on the rest): nDCG@10 of the served blend against popularity.

Sizes (ratings, users, films): 1m 1,000,000 / 7,000 / 10,000; 10m 10,000,000 / 70,000 /
30,000; 25m 25,000,000 / 162,541 / 62,423 (ml-25m's counts). BENCH_PG_ADMIN_URL
(postgres://postgres@127.0.0.1:5432/postgres), BENCH_REFIT_KEEP=0 drops the databases afterwards.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_PORT = int(os.environ.get("BENCH_REFIT_REDIS_PORT", 6431))
GENERATOR = "generate_ratings v2 (latent tastes) seed 1"
SIZES = {
    "1m": (1_000_000, 7_000, 10_000),
    "10m": (10_000_000, 70_000, 30_000),
    "25m": (25_000_000, 162_541, 62_423),
}


def database_url(size: str) -> str:
    return urlunsplit(urlsplit(ADMIN_URL)._replace(path=f"/movierec_scale_{size}"))


def _manage(args: list[str], env: dict) -> str:
    result = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def prepare(size: str) -> tuple[str, float]:
    """The database of a generated release of this size (reused if present); (url, seconds spent)."""
    import psycopg

    ratings, users, movies = SIZES[size]
    name = f"movierec_scale_{size}"
    marker = f"{GENERATOR} {ratings} {users} {movies}"
    url = database_url(size)
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        row = admin.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                            [name]).fetchone()
        if row and row[0] == marker:
            print(f"[{size}] reusing {name} ({marker})", flush=True)
            return url, 0.0
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": url, "PYTHONUNBUFFERED": "1", "REDIS_URL": ""}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"scale-{size}-") as folder:
        _manage(["generate_ratings", "--users", str(users), "--movies", str(movies), "--ratings", str(ratings),
                 "--out", folder, "--seed", "1", "--no-progress"], env)
        generated = time.perf_counter() - started
        _manage(["migrate", "--noinput", "-v0"], env)
        _manage(["import_movielens", folder, "--no-progress"], env)
    seconds = time.perf_counter() - started
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"COMMENT ON DATABASE \"{name}\" IS '{marker}'")
    print(f"[{size}] generated {ratings:,} ratings by {users:,} users on {movies:,} films in {generated:.0f} s, "
          f"imported in {seconds - generated:.0f} s", flush=True)
    return url, seconds


def main() -> None:
    sizes = [s.strip() for s in os.environ.get("BENCH_REFIT_SIZES", "1m,10m,25m").split(",") if s.strip()]
    for size in sizes:
        prepare(size)


if __name__ == "__main__":
    if sys.argv[1:2] == ["prepare"]:
        for size in sys.argv[2:]:
            prepare(size)
    else:
        main()
