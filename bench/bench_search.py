"""Search: what it finds on real data, and how long it takes on a large catalogue, SQLite and PostgreSQL.

(a) Quality. ml-latest-small and its TMDB, IMDB and HetRec metadata (manage.py migrate,
    import_movielens, import_metadata) go into a temporary SQLite file and into the PostgreSQL
    database movierec_search_bench (recreated); then each query of bench/data/search_queries.csv
    is searched and judged (bench/search_run.py says how): a hit when what the query means is in
    the top 3, clean when at most 1 of the top 5 films is unrelated. Targets: hits >= 95 % and
    clean >= 90 % on both databases, reported for all queries, for the development set and for
    the held-out set. Queries that miss either are printed with what came back.
(b) Latency. A generated catalogue (BENCH_SEARCH_MOVIES films, default 60,000, and
    BENCH_SEARCH_PEOPLE people, default 200,000, one director and six actors per film; titles and
    names recombined from the words of ml-latest-small's titles and the first and last names of
    the IMDB 5000 file) in a temporary SQLite file and in movierec_search_bench; then p50/p99 of a whole
    search (films and people, as the search page runs it) over BENCH_SEARCH_REPEATS x 6 queries
    drawn from the catalogue (titles, a title's first word, names, last names, titles and names
    with a typo), against a reference timed in the same process over as many calls: one movie
    by primary key with its genres, what every movie page starts with.

Environment: BENCH_SMALL_PATH, BENCH_METADATA_DIR (../shared/datasets), BENCH_SEARCH_PG_URL
(postgres://postgres@127.0.0.1:5432/movierec_search_bench), BENCH_SKIP_PG=1, BENCH_SEARCH_MOVIES,
BENCH_SEARCH_PEOPLE, BENCH_SEARCH_REPEATS (100), BENCH_SEARCH_SKIP_QUALITY=1, BENCH_SEARCH_SKIP_LATENCY=1.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from bench.bench_import import _admin_url, run_child

ROOT = Path(__file__).resolve().parent.parent
DATASETS = Path(os.environ.get("BENCH_METADATA_DIR", ROOT.parent / "shared" / "datasets"))
SMALL = Path(os.environ.get("BENCH_SMALL_PATH", DATASETS / "ml-latest-small"))
METADATA = [
    DATASETS / "tmdb-5000" / "tmdb_5000_movies.csv",
    DATASETS / "imdb-5000-movie-metadata" / "movie_metadata.csv",
    DATASETS / "hetrec2011-movielens-2k-v2",
]
PG_URL = os.environ.get("BENCH_SEARCH_PG_URL", "postgres://postgres@127.0.0.1:5432/movierec_search_bench")
MOVIES = int(os.environ.get("BENCH_SEARCH_MOVIES", 60_000))
PEOPLE = int(os.environ.get("BENCH_SEARCH_PEOPLE", 200_000))
REPEATS = int(os.environ.get("BENCH_SEARCH_REPEATS", 100))
HIT_TARGET, CLEAN_TARGET = 0.95, 0.90


def _run(args: list[str], database_url: str) -> str:
    """`python -m bench.search_run <args>` on database_url; its stdout (progress bars pass through)."""
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": "", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.search_run", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    if done.returncode:
        raise RuntimeError(f"bench.search_run {' '.join(args)} failed ({done.returncode})")
    return done.stdout


def _fresh_postgres() -> str:
    import psycopg

    database = urlsplit(PG_URL).path.lstrip("/")
    with psycopg.connect(_admin_url(PG_URL), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{database}"')
    return PG_URL


def _databases(folder: Path, name: str) -> list[tuple[str, str]]:
    found = [("sqlite", f"sqlite:///{folder / name}.sqlite3")]
    if os.environ.get("BENCH_SKIP_PG") == "1":
        print("[postgres] skipped (BENCH_SKIP_PG=1)")
    else:
        found.append(("postgres", _fresh_postgres()))
    return found


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %"


def bench_quality(folder: Path) -> None:
    for label, url in _databases(folder, "quality"):
        run_child(["migrate", "--noinput", "-v0"], url)
        run_child(["import_movielens", str(SMALL)], url)
        run_child(["import_metadata", *map(str, METADATA)], url)
        report = json.loads(_run(["quality"], url))
        for name in ("all", "development", "held-out"):
            results = [r for r in report["results"] if name == "all" or r["set"] == name]
            n, hits = len(results), sum(r["hit"] for r in results)
            clean = sum(r["unrelated_in_top5"] <= 1 for r in results)
            print(
                f"[{label}] quality on {SMALL.name}, {name} queries ({n}): intended result in the top 3: {hits}/{n} = "
                f"{_percent(hits, n)} (target {HIT_TARGET:.0%}: {'met' if hits / n >= HIT_TARGET else 'NOT met'}); "
                f"at most 1 unrelated in the top 5: {clean}/{n} = {_percent(clean, n)} "
                f"(target {CLEAN_TARGET:.0%}: {'met' if clean / n >= CLEAN_TARGET else 'NOT met'})"
            )
        by_category = {}
        for result in report["results"]:
            counts = by_category.setdefault(result["category"], [0, 0, 0])
            counts[0] += 1
            counts[1] += result["hit"]
            counts[2] += result["unrelated_in_top5"] <= 1
        print("    " + "; ".join(f"{category} {h}/{c} hit, {k}/{c} clean" for category, (c, h, k) in by_category.items()))
        for result in report["results"]:
            if not result["hit"] or result["unrelated_in_top5"] > 1:
                print(f"    {result['query']!r}: hit={result['hit']} unrelated={result['unrelated']} "
                      f"top5={result['top5']} people={result['people']}")


def bench_latency(folder: Path) -> None:
    for label, url in _databases(folder, "latency"):
        run_child(["migrate", "--noinput", "-v0"], url)
        _run(["generate", str(MOVIES), str(PEOPLE), str(SMALL), str(METADATA[1])], url)
        report = json.loads(_run(["latency", str(REPEATS)], url))
        reference, search = report["reference"], report["search"]
        print(
            f"[{label}] latency, {report['movies']:,} films and {PEOPLE:,} people, {search['n']} searches: "
            f"p50 {search['p50_ms']:.1f} ms, p99 {search['p99_ms']:.1f} ms; reference (movie by primary key "
            f"with genres) p50 {reference['p50_ms']:.2f} ms, p99 {reference['p99_ms']:.2f} ms; "
            f"ratio p50 {search['p50_ms'] / reference['p50_ms']:.1f}x, p99 {search['p99_ms'] / reference['p99_ms']:.1f}x"
        )
        for kind, figures in report["by_kind"].items():
            print(f"    {kind:<11} p50 {figures['p50_ms']:7.1f} ms  p99 {figures['p99_ms']:7.1f} ms")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        if os.environ.get("BENCH_SEARCH_SKIP_QUALITY") == "1":
            print("quality skipped (BENCH_SEARCH_SKIP_QUALITY=1)")
        elif not SMALL.is_dir():
            print(f"quality skipped: no ml-latest-small at {SMALL} (set BENCH_SMALL_PATH)")
        else:
            bench_quality(Path(folder))
        if os.environ.get("BENCH_SEARCH_SKIP_LATENCY") == "1":
            print("latency skipped (BENCH_SEARCH_SKIP_LATENCY=1)")
        else:
            bench_latency(Path(folder))


if __name__ == "__main__":
    main()
