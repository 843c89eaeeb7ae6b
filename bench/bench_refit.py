"""A full refit at MovieLens-25M size: time and peak memory of each step, quality against popularity.

For each size (BENCH_REFIT_SIZES, default "1m,10m,25m"; e.g. "1m" for a quick run) a generated
release (manage.py generate_ratings: latent tastes by genre and era) is imported into its own
PostgreSQL database ``movierec_scale_<size>`` through the import's COPY fast path, or reused when
the database already holds that release (its comment names the generator's version and size).
Then the real refit task (recommendations.refit_model) runs in a real Celery worker
(`celery worker --concurrency 2`) on a private redis-server (port BENCH_REFIT_REDIS_PORT, 6431),
with every generated user (or BENCH_REFIT_ACTIVE_USERS of them) counted as a site account that signed in today, so the publish warms
all of their lists. While it runs the bench samples the resident memory of the worker's whole
process tree (/proc, every 0.2 s); the task records when each step started and ended
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

from bench.servers import ROOT, manage

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
            print(f"[{size}] reusing {name} ({marker}), migrated to this code", flush=True)
            manage({**os.environ, "DATABASE_URL": url, "REDIS_URL": ""}, "migrate", "--noinput", "-v0")
            return url, 0.0
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": url, "PYTHONUNBUFFERED": "1", "REDIS_URL": ""}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"scale-{size}-") as folder:
        manage(env, "generate_ratings", "--users", str(users), "--movies", str(movies), "--ratings", str(ratings),
                 "--out", folder, "--seed", "1", "--no-progress")
        generated = time.perf_counter() - started
        manage(env, "migrate", "--noinput", "-v0")
        manage(env, "import_movielens", folder, "--no-progress")
    seconds = time.perf_counter() - started
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"COMMENT ON DATABASE \"{name}\" IS '{marker}'")
    print(f"[{size}] generated {ratings:,} ratings by {users:,} users on {movies:,} films in {generated:.0f} s, "
          f"imported in {seconds - generated:.0f} s", flush=True)
    return url, seconds


def _tree(pid: int) -> list[int]:
    """The process and its descendants (Linux /proc)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                queue.extend(int(child) for child in task.read_text().split())
            except OSError:
                pass
    return found


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class TreeSampler:
    """Samples the resident memory of a process and its descendants (/proc) in a thread."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, float, float]] = []  # (unix time, tree MiB, largest process MiB)
        self.loads: list[float] = []  # 1-minute load average, every 10 s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            sizes = [_rss_mib(pid) for pid in _tree(self.pid)]
            if sizes:
                self.samples.append((time.time(), sum(sizes), max(sizes)))
            if len(self.samples) % 50 == 1:
                self.loads.append(os.getloadavg()[0])
            self._stop.wait(self.interval)

    def start(self) -> "TreeSampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, start: float, end: float) -> tuple[float, float]:
        """(tree, largest process) peak RSS in MiB between two Unix times."""
        inside = [(tree, largest) for at, tree, largest in self.samples if start <= at <= end + self.interval]
        return (max(t for t, _ in inside), max(x for _, x in inside)) if inside else (float("nan"), float("nan"))


def mark_users_active(url: str, limit: int | None) -> int:
    """Make the generated users site accounts that signed in now (the ones a publish warms)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("UPDATE accounts_user SET source = 'movielens', last_login = NULL WHERE NOT is_staff")
        where = "" if limit is None else f"WHERE id IN (SELECT id FROM accounts_user ORDER BY id LIMIT {int(limit)})"
        return connection.execute(f"UPDATE accounts_user SET source = 'site', last_login = now() {where}").rowcount


def latest_version(url: str):
    import psycopg

    with psycopg.connect(url) as connection:
        return connection.execute("SELECT id, status, metrics, error FROM recommendations_modelversion "
                                  "ORDER BY id DESC LIMIT 1").fetchone()


def run_refit(size: str, url: str, redis_url: str, media: str) -> dict:
    """The refit task in a real Celery worker; per-step seconds and peak RSS, holdout quality."""
    from celery import Celery

    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url,
           "CELERY_TASK_ALWAYS_EAGER": "0", "MEDIA_ROOT": media, "PYTHONUNBUFFERED": "1",
           "DJANGO_SETTINGS_MODULE": "movierec.settings", "CACHE_KEY_PREFIX": f"scale-{size}"}
    before = latest_version(url)
    log = open(Path(media) / "worker.log", "w")
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "movierec", "worker", "--concurrency", "2",
                               "--loglevel", "INFO", "-n", f"scale-{size}@%h", "--without-heartbeat",
                               "--without-mingle", "--without-gossip"], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    sampler = TreeSampler(worker.pid).start()
    try:
        time.sleep(3)
        app = Celery(broker=redis_url)
        sent = time.time()
        app.send_task("recommendations.refit_model", kwargs={"reason": "bench refit"})
        while True:
            time.sleep(1)
            if worker.poll() is not None:
                raise RuntimeError(f"the worker stopped ({worker.returncode}); see {log.name}")
            row = latest_version(url)
            if row is None or (before is not None and row[0] == before[0]):
                continue
            _, status, metrics, error = row
            if status in ("failed", "rejected") or (status == "published" and "warmed_lists" in (metrics or {})):
                break
        finished = time.time()
    finally:
        sampler.stop()
        worker.terminate()
        worker.wait(60)
        log.close()
    if status != "published":
        raise RuntimeError(f"refit {status}: {error}")
    steps = metrics["steps"]
    rows = []
    for name, started, seconds, _, *cpu in steps:
        tree, largest = sampler.peak(started, started + seconds)
        # A step run beside the others (the neural model) has no CPU seconds of its own (None).
        rows.append((name, seconds, cpu[0] if cpu and cpu[0] is not None else float("nan"), tree, largest))
    tree, largest = sampler.peak(sent, finished)
    cpu = sum(row[2] for row in rows if row[0] in TOP_STEPS and row[2] == row[2])  # NaN: counted in another step
    return {"size": size, "steps": rows, "total": finished - sent, "cpu": cpu, "peak_tree": tree,
            "peak_process": largest, "load": sum(sampler.loads) / max(len(sampler.loads), 1), "metrics": metrics}


TOP_STEPS = {"load", "holdout check", "features", "lightfm", "lightfm fold-in", "ease", "stars MF (ALS)", "metadata taste",
             "neighbour stars", "neural", "tf-idf", "save artifact", "publish", "warm"}


def report(result: dict) -> None:
    m = result["metrics"]
    size = result["size"]
    print(f"[{size}] {'step':<22} {'seconds':>9} {'CPU s':>8} {'peak RSS tree MiB':>18} {'largest process MiB':>20}")
    fit_steps = {"features", "lightfm", "lightfm fold-in", "ease", "stars MF (ALS)", "metadata taste", "neighbour stars", "neural", "tf-idf"}
    for name, seconds, cpu, tree, largest in result["steps"]:
        label = f"  fit: {name}" if name in fit_steps else name
        print(f"[{size}] {label:<22} {seconds:>9.1f} {cpu:>8.1f} {tree:>18.0f} {largest:>20.0f}")
    print(f"[{size}] {'whole task':<22} {result['total']:>9.1f} {result['cpu']:>8.1f} {result['peak_tree']:>18.0f} "
          f"{result['peak_process']:>20.0f}")
    print(f"[{size}] (CPU s: the task's own process; warm_chunks helpers in the other worker process are not "
          f"counted; the machine's load average during the "
          f"task: {result['load']:.1f} on {os.cpu_count()} cores)")
    served, popular = m.get("holdout_served_ndcg@10"), m.get("holdout_popularity_ndcg@10")
    ratio = f"{served / popular:.2f}x popularity" if served and popular else "n/a"
    print(f"[{size}] holdout nDCG@10 ({m.get('holdout_users')} users, {m.get('holdout_ratings'):,} held-out ratings, "
          f"check model on {m.get('holdout_train_ratings'):,} ratings): served {served}, LightFM "
          f"{m.get('holdout_lightfm_ndcg@10')}, popularity {popular} ({ratio})")
    print(f"[{size}] EASE covers {m.get('ease_items'):,} films; LightFM {m.get('lightfm_epochs')} epochs over "
          f"{m.get('lightfm_ratings', 0):,} ratings of {m.get('lightfm_users', 0):,} users (the rest folded in); "
          f"neural {m.get('neural_train_seconds')} s; {m.get('warmed_lists'):,} lists warmed", flush=True)


def main() -> None:
    import psycopg  # noqa: F401  (fail early without it)

    sizes = [s.strip() for s in os.environ.get("BENCH_REFIT_SIZES", "1m,10m,25m").split(",") if s.strip()]
    active = os.environ.get("BENCH_REFIT_ACTIVE_USERS")
    keep = os.environ.get("BENCH_REFIT_KEEP", "1") != "0"
    from bench.servers import PrivateRedis

    for size in sizes:
        url, _ = prepare(size)
        marked = mark_users_active(url, int(active) if active else None)
        print(f"[{size}] {marked:,} users count as site accounts that signed in today (their lists are warmed)",
              flush=True)
        redis = PrivateRedis(range(REDIS_PORT, REDIS_PORT + 1)).start()
        try:
            with tempfile.TemporaryDirectory(prefix=f"scale-media-{size}-") as media:
                result = run_refit(size, url, redis.url, media)
        finally:
            redis.close()
        report(result)
        print("BENCH-RESULT " + json.dumps({k: v for k, v in result.items() if k != "metrics"}), flush=True)
        if not keep:
            import psycopg

            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "movierec_scale_{size}" WITH (FORCE)')


if __name__ == "__main__":
    if sys.argv[1:2] == ["prepare"]:
        for size in sys.argv[2:]:
            prepare(size)
    else:
        main()
