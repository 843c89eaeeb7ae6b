"""Several machines on one: two gunicorn instances and two Celery workers on PostgreSQL and a
private Redis, under load, with one worker killed mid-refit and one web instance killed.

What it shows: no 5xx (connection errors from the killed instance are counted apart, and the
client retries them on the other instance as a load balancer would), no lost rating (every
acknowledged PUT is in the database with its score), and one published model at the end (the
refit the dead worker abandoned is redone by the other one after the periodic check).

Load: BENCH_CLUSTER_CLIENTS (8) threads, each with its own signed-in users (API tokens), doing
recommendation reads, film pages and idempotent rating PUTs against both instances in turn for
BENCH_CLUSTER_SECONDS (60). PostgreSQL database movierec_ops_cluster (created and dropped),
redis-server and web ports from bench.servers' ranges, the demo catalogue.
"""
from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from bench.servers import ROOT, manage, WEB_PORTS, Gunicorn, PrivateRedis, free_port, wait_until

DATABASE = os.environ.get("BENCH_CLUSTER_DATABASE", "movierec_ops_cluster")
POSTGRES = os.environ.get("BENCH_CLUSTER_POSTGRES", "postgres://postgres@127.0.0.1:5432")
CLIENTS = int(os.environ.get("BENCH_CLUSTER_CLIENTS", "8"))
SECONDS = float(os.environ.get("BENCH_CLUSTER_SECONDS", "60"))
USERS_PER_CLIENT = 5
LOCK_TTL = 10


def _psql(sql: str) -> None:
    subprocess.run(["psql", f"{POSTGRES}/postgres", "-q", "-c", sql], check=True, capture_output=True)


SETUP_SCRIPT = """
import json, secrets
from django.utils import timezone
from accounts.services import issue_api_token
from accounts.models import User
from catalog.models import Movie
tokens, emails = [], []
for i in range({users}):
    user = User.objects.create_user(email=f"load{{i}}@bench.local", password=secrets.token_urlsafe(12), last_login=timezone.now())
    tokens.append(issue_api_token(user=user)[1])
    emails.append(user.email)
print("SETUP " + json.dumps({{"tokens": tokens, "emails": emails, "movies": list(Movie.objects.values_list("pk", flat=True))}}))
"""

STATE_SCRIPT = """
import json
from catalog.models import Rating
from recommendations import cache
from recommendations.models import ModelVersion
ratings = {{f"{{r.user.email}}:{{r.movie_id}}": r.score for r in Rating.objects.filter(user__email__endswith="@bench.local").select_related("user")}}
versions = list(ModelVersion.objects.order_by("pk").values("pk", "status", "is_current", "error"))
print("STATE " + json.dumps({{"ratings": ratings, "versions": versions, "pointer": cache.current_version_pointer()}}))
"""


class Worker:
    """`celery worker` (prefork, one child) in its own process group, so a kill takes the child too."""

    def __init__(self, env: dict, name: str, log_path: Path):
        self.name, self.log_path = name, log_path
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "movierec", "worker", "--concurrency", "1", "-n", f"{name}@%h",
             "--loglevel", "INFO"],
            cwd=ROOT, env={**env, "TASK_LOG_LEVEL": "INFO"}, stdout=open(log_path, "ab"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


class Load:
    """Client threads: each owns its users, sends to the instances in turn, retries a refused or
    broken connection on the other instance (as a load balancer would)."""

    def __init__(self, urls: list[str], tokens: list[str], movies: list[int]):
        self.urls, self.movies = urls, movies
        self.groups = [tokens[i::CLIENTS] for i in range(CLIENTS)]
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.statuses: Counter = Counter()
        self.connection_errors = 0
        self.latencies: list[tuple[float, float]] = []  # (time, seconds)
        self.acknowledged: dict[str, float] = {}
        self.emails = {}

    def run(self, seconds: float) -> None:
        threads = [threading.Thread(target=self._client, args=(index,), daemon=True) for index in range(CLIENTS)]
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        self.stop.set()
        for thread in threads:
            thread.join(timeout=30)

    def _client(self, index: int) -> None:
        rng = random.Random(index)
        turn = index
        while not self.stop.is_set():
            token = rng.choice(self.groups[index])
            kind = rng.random()
            if kind < 0.5:
                request = ("GET", "/api/v1/recommendations/?n=20", None)
            elif kind < 0.75:
                request = ("GET", f"/api/v1/movies/{rng.choice(self.movies)}/", None)
            else:
                movie, score = rng.choice(self.movies), rng.choice([1.0, 2.5, 3.0, 4.5, 5.0])
                request = ("PUT", f"/api/v1/me/ratings/{movie}/", {"score": score})
            for attempt in range(len(self.urls)):
                url = self.urls[(turn + attempt) % len(self.urls)]
                outcome = self._send(url, token, *request)
                if outcome is not None:
                    break
            turn += 1
            if outcome is not None and request[0] == "PUT" and 200 <= outcome < 300:
                with self.lock:
                    self.acknowledged[f"{token}:{request[1].split('/')[-2]}"] = request[2]["score"]

    def _send(self, base: str, token: str, method: str, path: str, body: dict | None) -> int | None:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(base + path, data=data, method=method, headers={
            "Authorization": f"Token {token}", "Content-Type": "application/json"})
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        except (urllib.error.URLError, ConnectionError, OSError):
            with self.lock:
                self.connection_errors += 1
            return None
        with self.lock:
            self.statuses[status] += 1
            self.latencies.append((time.monotonic(), time.perf_counter() - started))
        return status


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    redis = PrivateRedis().start()
    _psql(f"DROP DATABASE IF EXISTS {DATABASE}")
    _psql(f"CREATE DATABASE {DATABASE}")
    env = {
        **os.environ, "DATABASE_URL": f"{POSTGRES}/{DATABASE}", "REDIS_URL": redis.url, "CELERY_BROKER_URL": redis.url,
        "MEDIA_ROOT": str(folder / "shared-media"), "DEBUG": "0", "SECRET_KEY": "bench-cluster-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "0", "BEHIND_TLS_PROXY": "0",
        "SESSION_COOKIE_SECURE": "0", "CSRF_COOKIE_SECURE": "0", "LOG_FORMAT": "json", "LOG_LEVEL": "WARNING",
        "RECOMMENDER_REFIT_LOCK_TTL": str(LOCK_TTL), "API_THROTTLE_USER": "100000/min",
        "CELERY_TASK_ALWAYS_EAGER": "0", "DJANGO_SETTINGS_MODULE": "movierec.settings", "PYTHONUNBUFFERED": "1",
    }
    webs, workers = [], []
    try:
        started = time.perf_counter()
        manage(env, "migrate", "--noinput", "-v0")
        manage(env, "load_demo")
        setup = json.loads(manage(env, "shell", stdin=SETUP_SCRIPT.format(users=CLIENTS * USERS_PER_CLIENT))
                           .split("SETUP ", 1)[1])
        manage(env, "shell", "-c", "from recommendations import pipeline; print(pipeline.refit_and_publish())")
        print(f"set-up (PostgreSQL, demo catalogue, {CLIENTS * USERS_PER_CLIENT} users, first model): "
              f"{time.perf_counter() - started:.0f} s", flush=True)

        for name in ("a", "b"):
            port = free_port(WEB_PORTS)
            webs.append(Gunicorn({**env, "PORT": str(port)}, port, folder / f"web-{name}.log", workers=2).start())
            workers.append(Worker(env, f"worker-{name}", folder / f"worker-{name}.log"))
        for worker in workers:
            wait_until(lambda w=worker: " ready." in w.log(), timeout=120, message=f"{worker.name} ready")
        load = Load([web.url for web in webs], setup["tokens"], setup["movies"])
        events = []
        runner = threading.Thread(target=load.run, args=(SECONDS,))
        t0 = time.monotonic()
        runner.start()

        time.sleep(3)
        from celery import Celery

        client = Celery(broker=redis.url)
        client.send_task("recommendations.refit_model", kwargs={"reason": "bench: will be killed"})
        doomed = wait_until(lambda: next((w for w in workers if "Refit requested" in w.log()), None), timeout=60,
                            message="a worker starts the refit")
        time.sleep(5)
        doomed.kill()
        events.append((time.monotonic() - t0, f"SIGKILL {doomed.name} (and its pool child) mid-refit"))
        time.sleep(5)
        webs[0].kill()
        events.append((time.monotonic() - t0, f"SIGKILL web instance on {webs[0].url} (master and workers)"))
        time.sleep(LOCK_TTL + 1)
        client.send_task("recommendations.maybe_refit")  # what beat sends every 10 minutes
        events.append((time.monotonic() - t0, "periodic check sent (maybe_refit)"))
        runner.join()
        survivor = next(w for w in workers if w is not doomed)
        finished = wait_until(lambda: re.search(r"refit_model\[[^\]]+\] succeeded in [0-9.]+s: (\{.*?\})", survivor.log()),
                              timeout=600, message=f"the surviving worker's refit\n{survivor.log()[-3000:]}", interval=1)
        events.append((time.monotonic() - t0, f"{survivor.name} finished the refit: {finished.group(1)}"))

        state = json.loads(manage(env, "shell", stdin=STATE_SCRIPT.format()).split("STATE ", 1)[1])
        token_email = dict(zip(setup["tokens"], setup["emails"]))
        lost = [key for key, score in load.acknowledged.items()
                if state["ratings"].get(f"{token_email[key.split(':')[0]]}:{key.split(':')[1]}") != score]
        current = [v for v in state["versions"] if v["is_current"]]

        print("events:")
        for at, what in events:
            print(f"  t={at:5.1f} s  {what}")
        total = sum(load.statuses.values())
        server_errors = sum(n for status, n in load.statuses.items() if status >= 500)
        seconds = [s for _, s in load.latencies]
        print(f"requests answered: {total:,} ({total / SECONDS:.0f}/s) by status {dict(sorted(load.statuses.items()))}; "
              f"5xx: {server_errors}; connection errors (retried on the other instance): {load.connection_errors}")
        print(f"latency p50 {_percentile(seconds, 0.5) * 1000:.0f} ms, p99 {_percentile(seconds, 0.99) * 1000:.0f} ms, "
              f"max {max(seconds) * 1000:.0f} ms")
        print(f"ratings acknowledged: {len(load.acknowledged):,}; missing or different in the database: {len(lost)}")
        print("model versions: " + ", ".join(f"v{v['pk']} {v['status']}{' (serving)' if v['is_current'] else ''}"
                                             for v in state["versions"]))
        print(f"published and serving: {len(current)} (Redis pointer v{state['pointer']})")
        ok = server_errors == 0 and not lost and len(current) == 1 and state["pointer"] == str(current[0]["pk"])
        print("RESULT: " + ("no 5xx, no lost rating, one published model" if ok else "FAILED"))
        if not ok:
            raise RuntimeError("the cluster bench found 5xx, a lost rating or not exactly one served model")
    finally:
        for web in webs:
            web.stop()
        for worker in workers:
            worker.stop()
        redis.close()
        _psql(f"DROP DATABASE IF EXISTS {DATABASE}")


if __name__ == "__main__":
    main()
