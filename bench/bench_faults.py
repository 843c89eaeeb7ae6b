"""Redis faults under load: what a signed-in user of the API sees while Redis hangs, dies and
comes back, and whether the Celery worker lives through it.

gunicorn (2 workers) and a Celery worker on a SQLite copy of the demo catalogue and a private
redis-server; BENCH_FAULTS_CLIENTS (4) threads read their recommendations and rate films (each
rating sends a debounced refresh to the worker) through five phases of BENCH_FAULTS_PHASE
seconds (10): healthy, Redis frozen (SIGSTOP), thawed, killed (SIGKILL), restarted empty.
Per phase: requests answered, errors, p50 / p99 / max latency; the worker's state at the end
and whether the refreshes lost with Redis were sent again by the sweep.
"""
from __future__ import annotations

import json
import os
import random
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.bench_cluster import SETUP_SCRIPT, Worker, _percentile
from bench.servers import manage
from bench.servers import WEB_PORTS, Gunicorn, PrivateRedis, free_port, wait_until

CLIENTS = int(os.environ.get("BENCH_FAULTS_CLIENTS", "4"))
PHASE = float(os.environ.get("BENCH_FAULTS_PHASE", "10"))


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    redis = PrivateRedis().start()
    env = {
        **os.environ, "DATABASE_URL": f"sqlite:///{folder}/db.sqlite3", "REDIS_URL": redis.url,
        "CELERY_BROKER_URL": redis.url, "MEDIA_ROOT": str(folder / "media"), "LOG_LEVEL": "WARNING",
        "API_THROTTLE_USER": "100000/min", "CELERY_TASK_ALWAYS_EAGER": "0", "RECOMMENDER_REFRESH_LOST_SECONDS": "5",
        "DJANGO_SETTINGS_MODULE": "movierec.settings", "PYTHONUNBUFFERED": "1",
    }
    web = worker = None
    try:
        manage(env, "migrate", "--noinput", "-v0")
        manage(env, "load_demo")
        setup = json.loads(manage(env, "shell", stdin=SETUP_SCRIPT.format(users=CLIENTS * 5)).split("SETUP ", 1)[1])
        manage(env, "shell", "-c", "from recommendations import pipeline; pipeline.refit_and_publish()")
        port = free_port(WEB_PORTS)
        web = Gunicorn({**env, "PORT": str(port)}, port, folder / "web.log", workers=2).start()
        worker = Worker(env, "faults", folder / "worker.log")
        wait_until(lambda: " ready." in worker.log(), timeout=120, message="worker ready")

        results: list[tuple[float, float, int | None]] = []  # (at, seconds, status or None)
        lock, stop = threading.Lock(), threading.Event()

        def client(index: int) -> None:
            rng = random.Random(index)
            tokens = setup["tokens"][index::CLIENTS]
            while not stop.is_set():
                token = rng.choice(tokens)
                if rng.random() < 0.8:
                    request = urllib.request.Request(f"{web.url}/api/v1/recommendations/?n=20",
                                                     headers={"Authorization": f"Token {token}"})
                else:
                    request = urllib.request.Request(
                        f"{web.url}/api/v1/me/ratings/{rng.choice(setup['movies'])}/", method="PUT",
                        data=json.dumps({"score": rng.choice([1.0, 3.0, 5.0])}).encode(),
                        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"})
                started = time.perf_counter()
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        response.read()
                        status = response.status
                except urllib.error.HTTPError as error:
                    status = error.code
                except (urllib.error.URLError, OSError):
                    status = None
                with lock:
                    results.append((time.monotonic(), time.perf_counter() - started, status))

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
        phases = []
        for thread in threads:
            thread.start()
        for name, action in [("healthy", None), ("Redis frozen (SIGSTOP)", redis.freeze),
                             ("Redis thawed (SIGCONT)", redis.thaw), ("Redis killed (SIGKILL)", redis.kill),
                             ("Redis restarted, empty", redis.start)]:
            if action:
                action()
            start = time.monotonic()
            time.sleep(PHASE)
            phases.append((name, start, time.monotonic()))
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

        print(f"{'phase':<26} {'answered':>8} {'req/s':>6} {'5xx':>4} {'conn.err':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
        for name, start, end in phases:
            rows = [r for r in results if start <= r[0] < end]
            seconds = [r[1] for r in rows if r[2] is not None]
            print(f"{name:<26} {len(seconds):>8} {len(seconds) / (end - start):>6.1f} "
                  f"{sum(1 for r in rows if r[2] and r[2] >= 500):>4} {sum(1 for r in rows if r[2] is None):>8} "
                  f"{_percentile(seconds, 0.5) * 1000:>7.0f} {_percentile(seconds, 0.99) * 1000:>7.0f} "
                  f"{max(seconds, default=float('nan')) * 1000:>7.0f}")
        alive = worker.process.poll() is None
        print(f"Celery worker after the faults: {'running' if alive else 'DEAD'}"
              f"{'' if 'Unrecoverable' not in worker.log() else ' (unrecoverable error in its log)'}")
        # Refreshes lost with Redis: sent again by the sweep (what beat sends every 30 s).
        from celery import Celery

        left = lambda: int(manage(env, "shell", "-c", "from recommendations.models import PendingRefresh; "
                                                       "print(PendingRefresh.objects.count())").split()[-1])
        time.sleep(6)  # past the debounce and RECOMMENDER_REFRESH_LOST_SECONDS
        pending = left()
        Celery(broker=redis.url).send_task("recommendations.resend_lost_refreshes")
        try:
            wait_until(lambda: left() == 0, timeout=120, message="pending refreshes sent and run", interval=2)
            print(f"refreshes pending after the restart: {pending}; after one sweep: 0")
        except TimeoutError:
            print(f"refreshes pending after the restart: {pending}; after one sweep and 120 s: {left()}")
        if not alive:
            raise RuntimeError("the Celery worker died")
    finally:
        if web:
            web.stop()
        if worker:
            worker.stop()
        redis.close()


if __name__ == "__main__":
    main()
