"""The recommendation pipeline: refit + warm, rating-to-updated-list latency, cache reads vs misses.

(a) ml-latest-small in a temporary SQLite database: refit (holdout check + fit) and warm of every
    user's list, in a child process (seconds, peak RSS); cache read vs computed on a miss (the
    reference, same users, same run); rating-to-updated-list latency through a real Celery worker
    (p50/p95, including the RECOMMENDER_REFRESH_DEBOUNCE_SECONDS debounce).
(b) a generated release (1M ratings by default) in a temporary SQLite database: refit + warm.

Every imported user counts as a site account that signed in today, so the warm covers them all.
Each part runs its own redis-server (port 6391-6399, bench.servers.PrivateRedis) as cache and
broker: the shared Redis is never touched. Sizes from the environment: BENCH_PIPELINE_RATINGS (1000000), BENCH_PIPELINE_USERS (6000), BENCH_PIPELINE_MOVIES
(4000), BENCH_SMALL_PATH, BENCH_LATENCY_SAMPLES (40), BENCH_PIPELINE_SKIP_LARGE=1.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bench.servers import PrivateRedis

ROOT = Path(__file__).resolve().parent.parent
SMALL = Path(os.environ.get("BENCH_SMALL_PATH", ROOT.parent / "shared" / "datasets" / "ml-latest-small"))
RESULT_MARK = "BENCH-RESULT "


def _env(folder: str, redis_url: str) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{folder}/bench.sqlite3",
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "MEDIA_ROOT": f"{folder}/media",
        "DJANGO_SETTINGS_MODULE": "movierec.settings",
        "PYTHONUNBUFFERED": "1",
    }


def run_child(args: list[str], env: dict) -> tuple[float, float, str]:
    """Run a Python child (seconds, peak RSS MiB, output); raises with its output on failure."""
    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        out.seek(0)
        text = out.read()
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{' '.join(args)} failed:\n{text[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, text


def child_result(text: str) -> dict:
    line = next(line for line in text.splitlines() if line.startswith(RESULT_MARK))
    return json.loads(line.removeprefix(RESULT_MARK))


def manage(args: list[str], env: dict) -> tuple[float, float, str]:
    return run_child([str(ROOT / "manage.py"), *args], env)


@contextmanager
def private_redis():
    """A redis-server of the bench's own for one part; yields its URL."""
    server = PrivateRedis().start()
    try:
        yield server.url
    finally:
        server.close()


# ------------------------------------------------------------------------------ child side


def _django():
    import django

    django.setup()


def child_refit() -> dict:
    """Refit + publish + warm; if the holdout check rejects the fit, warm it anyway to time the warm."""
    _django()
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from recommendations import pipeline
    from recommendations.models import ModelVersion

    # Imported users never sign in, so no list is warmed for them; here they play site accounts.
    User = get_user_model()
    User.objects.exclude(source=User.Source.SITE).update(source=User.Source.SITE, last_login=timezone.now())

    started = time.perf_counter()
    outcome = pipeline.refit_and_publish(progress=False)
    total = time.perf_counter() - started
    version = ModelVersion.objects.order_by("-created_at").first()
    result = {"outcome": outcome["outcome"], "seconds": total, "fit_seconds": version.train_seconds,
              "users": version.n_users, "items": version.n_items, "ratings": version.n_interactions,
              "metrics": version.metrics}
    if outcome["outcome"] == "published":
        result["warmed"] = outcome["warmed"]
    else:
        version.status = ModelVersion.Status.READY
        version.save(update_fields=["status"])
        warm_started = time.perf_counter()
        result["warmed"] = pipeline.publish_and_warm(version)
        result["forced_warm_seconds"] = time.perf_counter() - warm_started
    from recommendations.cache import cache, LAST_WARM_KEY

    result["warm_seconds"] = cache.get(LAST_WARM_KEY)["seconds"]
    return result


def child_reads(samples: int = 200) -> dict:
    """Mean time of a cached read vs the computation a miss does, same users, one run."""
    _django()
    from django.contrib.auth import get_user_model
    from django.conf import settings

    from recommendations import cache, selectors

    users = list(get_user_model().objects.filter(ratings__isnull=False).distinct().order_by("pk")[:samples])
    for user in users:  # make sure every list is cached (a warm did this already)
        cache.get_recommendations(user, n=20)
    started = time.perf_counter()
    for user in users:
        cache.get_recommendations(user, n=20)
    hit = (time.perf_counter() - started) / len(users)
    started = time.perf_counter()
    for user in users:
        selectors.recommend_for_user(user, n=settings.RECOMMENDER_CACHE_TOP_N)
    miss = (time.perf_counter() - started) / len(users)
    return {"users": len(users), "hit_ms": hit * 1000, "miss_ms": miss * 1000}


def child_latency(samples: int) -> dict:
    """Rate a film, time until the user's cached list is replaced (a real worker does it)."""
    _django()
    import random

    from django.conf import settings
    from django.contrib.auth import get_user_model

    from catalog.models import Movie
    from catalog.services import rate_movie
    from recommendations import cache

    env = dict(os.environ)
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "movierec", "worker", "--pool=solo",
                               "--loglevel=WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(8)  # worker start-up
        rng = random.Random(0)
        users = list(get_user_model().objects.filter(ratings__isnull=False).distinct().order_by("pk")[:samples])
        movie_ids = list(Movie.objects.values_list("pk", flat=True))
        latencies = []
        for user in users:
            cache.get_recommendations(user, n=20)
            key = cache.list_key(cache.current_version_pointer(), user.pk)
            before = cache.cache.get(key)
            rated = set(user.ratings.values_list("movie_id", flat=True))
            movie = Movie.objects.get(pk=rng.choice([m for m in movie_ids if m not in rated]))
            started = time.perf_counter()
            rate_movie(user=user, movie=movie, score=rng.choice([1.0, 3.0, 5.0]))
            deadline = started + 30
            while cache.cache.get(key) == before and time.perf_counter() < deadline:
                time.sleep(0.01)
            latencies.append(time.perf_counter() - started)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    latencies.sort()
    return {"samples": len(latencies), "p50": statistics.median(latencies),
            "p95": latencies[max(0, int(round(0.95 * len(latencies))) - 1)],
            "debounce": settings.RECOMMENDER_REFRESH_DEBOUNCE_SECONDS}


# ------------------------------------------------------------------------------ parent side


def _print_refit(label: str, result: dict, rss: float) -> None:
    m = result["metrics"]
    print(f"[{label}] {result['ratings']:,} ratings, {result['users']:,} users, {result['items']:,} films: "
          f"refit outcome {result['outcome']} (holdout nDCG@10 model {m.get('holdout_served_ndcg@10')} vs "
          f"popularity {m.get('holdout_popularity_ndcg@10')})")
    print(f"[{label}] fit (holdout check + full fit) {result['fit_seconds']:.1f} s; warm {result['warmed']:,} lists "
          f"{result['warm_seconds']:.1f} s ({result['warmed'] / max(result['warm_seconds'], 1e-9):,.0f} lists/s); "
          f"peak RSS {rss:.0f} MiB")
    if "forced_warm_seconds" in result:
        print(f"[{label}] (rejected by the holdout check; published anyway here only to time the warm)")
    print(f"[{label}] ratio warm / fit: {result['warm_seconds'] / max(result['fit_seconds'], 1e-9):.2f}x")


def bench_small() -> None:
    samples = int(os.environ.get("BENCH_LATENCY_SAMPLES", "40"))
    with tempfile.TemporaryDirectory() as folder, private_redis() as redis_url:
        env = _env(folder, redis_url)
        manage(["migrate", "--noinput", "-v0"], env)
        manage(["import_movielens", str(SMALL), "--no-progress"], env)
        _, rss, text = run_child(["-m", "bench.bench_pipeline", "refit"], env)
        _print_refit("ml-latest-small", child_result(text), rss)
        _, _, text = run_child(["-m", "bench.bench_pipeline", "reads"], env)
        reads = child_result(text)
        print(f"[ml-latest-small] top-20 read from the Redis cache {reads['hit_ms']:.2f} ms vs computed on a miss "
              f"{reads['miss_ms']:.2f} ms ({reads['users']} users): ratio miss / hit {reads['miss_ms'] / reads['hit_ms']:.1f}x")
        _, _, text = run_child(["-m", "bench.bench_pipeline", "latency", str(samples)], env)
        latency = child_result(text)
        print(f"[ml-latest-small] rating -> updated cached list through a Celery worker ({latency['samples']} ratings): "
              f"p50 {latency['p50']:.2f} s, p95 {latency['p95']:.2f} s (includes the {latency['debounce']:g} s debounce)")


def bench_large() -> None:
    ratings = int(os.environ.get("BENCH_PIPELINE_RATINGS", "1000000"))
    users = int(os.environ.get("BENCH_PIPELINE_USERS", "6000"))
    movies = int(os.environ.get("BENCH_PIPELINE_MOVIES", "4000"))
    with tempfile.TemporaryDirectory() as folder, private_redis() as redis_url:
        env = _env(folder, redis_url)
        manage(["generate_ratings", "--users", str(users), "--movies", str(movies), "--ratings", str(ratings),
                "--out", f"{folder}/release", "--no-progress"], env)
        manage(["migrate", "--noinput", "-v0"], env)
        manage(["import_movielens", f"{folder}/release", "--no-progress"], env)
        _, rss, text = run_child(["-m", "bench.bench_pipeline", "refit"], env)
        _print_refit(f"generated {ratings:,}", child_result(text), rss)


def main() -> None:
    bench_small()
    if os.environ.get("BENCH_PIPELINE_SKIP_LARGE") != "1":
        bench_large()


if __name__ == "__main__":
    children = {"refit": child_refit, "reads": child_reads, "latency": lambda: child_latency(int(sys.argv[2]))}
    if len(sys.argv) > 1 and sys.argv[1] in children:
        print(RESULT_MARK + json.dumps(children[sys.argv[1]](), default=str), flush=True)
    else:
        main()
