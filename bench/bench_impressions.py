"""What logging impressions costs the signed-in home page: p50 / p99 with logging on and off, same run.

Two gunicorn instances (one worker each) on one SQLite copy of the demo catalogue and one private
redis-server: one with IMPRESSIONS_ENABLED=1, one with 0. A Celery worker and Celery beat run as
in production, so the buffered impressions are written to the database every 10 s while pages
are served. BENCH_IMPRESSIONS_USERS (20) signed-in users with 20 ratings each; one client asks
for the home page BENCH_IMPRESSIONS_REQUESTS (1000) times from each instance, alternating
between them (in a random order per pair) so both see the same machine load. Prints p50, p90,
p99 and mean of each, the p99 change with a bootstrap 95% interval, and checks that every
impression of the "on" instance reached the database.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

from bench.bench_cluster import ROOT, Worker
from bench.servers import manage
from bench.servers import Gunicorn, PrivateRedis, free_port, wait_until

USERS = int(os.environ.get("BENCH_IMPRESSIONS_USERS", "20"))
REQUESTS = int(os.environ.get("BENCH_IMPRESSIONS_REQUESTS", "1000"))
REDIS_PORTS = range(6420, 6430)
WEB_PORTS = range(8200, 8300)

SETUP_SCRIPT = """
import json, random
from django.conf import settings
from django.test import Client
from django.utils import timezone
from accounts.models import User
from catalog.models import Movie, Rating
from catalog.services import refresh_movie_stats
rng = random.Random(16)
movies = list(Movie.objects.order_by("-rating_count").values_list("pk", flat=True)[:200])
cookies = []
for i in range({users}):
    user = User.objects.create_user(email=f"home{{i}}@bench.local", password=None, last_login=timezone.now())
    now = timezone.now()
    Rating.objects.bulk_create([Rating(user=user, movie_id=m, score=rng.choice([2.0, 3.0, 3.5, 4.0, 4.5, 5.0]),
                                       created_at=now, updated_at=now) for m in rng.sample(movies, 20)])
    client = Client()
    client.force_login(user)
    cookies.append(client.cookies[settings.SESSION_COOKIE_NAME].value)
refresh_movie_stats()
print("SETUP " + json.dumps({{"cookies": cookies}}))
"""

DIRECT_SCRIPT = """
import json, time
from accounts.models import User
from catalog.models import Movie
from recommendations import impressions
user = User.objects.get(email="home0@bench.local")
page = [("top", list(Movie.objects.all()[:12])), ("because", list(Movie.objects.all()[12:24])),
        ("person", list(Movie.objects.all()[24:26])), ("trending", list(Movie.objects.all()[26:38])),
        ("genre", list(Movie.objects.all()[38:50]))]
impressions.flush()
samples = []
for _ in range({pages}):
    started = time.perf_counter()
    impressions.log_rows(user, page)
    samples.append(time.perf_counter() - started)
started = time.perf_counter()
moved = impressions.flush()
flush = time.perf_counter() - started
samples.sort()
from recommendations.models import Impression
Impression.objects.filter(user=user).delete()
print("DIRECT " + json.dumps({{"p50": samples[len(samples) // 2], "p99": samples[int(0.99 * len(samples))],
                              "moved": moved, "flush": flush}}))
"""

COUNT_SCRIPT = """
from recommendations.models import Impression
from recommendations import impressions
print("COUNT", Impression.objects.count(), impressions.buffered())
"""


def _get(url: str, cookie: str) -> tuple[float, int]:
    request = urllib.request.Request(url, headers={"Cookie": f"sessionid={cookie}"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
    return time.perf_counter() - started, body.count(b'class="card__why"')


def _figures(seconds: list[float]) -> dict:
    values = np.array(seconds) * 1000
    return {"p50": float(np.percentile(values, 50)), "p90": float(np.percentile(values, 90)),
            "p99": float(np.percentile(values, 99)), "mean": float(values.mean())}


def _bootstrap_p99_change(on: list[float], off: list[float], rounds: int = 2000) -> tuple[float, float]:
    rng = np.random.default_rng(16)
    on, off = np.array(on), np.array(off)
    changes = [np.percentile(rng.choice(on, len(on)), 99) / np.percentile(rng.choice(off, len(off)), 99) - 1
               for _ in range(rounds)]
    return float(np.percentile(changes, 2.5)), float(np.percentile(changes, 97.5))


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-impressions-"))
    redis = PrivateRedis(REDIS_PORTS).start()
    env = {
        **os.environ, "DATABASE_URL": f"sqlite:///{folder}/db.sqlite3", "REDIS_URL": redis.url,
        "CELERY_BROKER_URL": redis.url, "MEDIA_ROOT": str(folder / "media"), "LOG_LEVEL": "WARNING",
        "CELERY_TASK_ALWAYS_EAGER": "0", "DJANGO_SETTINGS_MODULE": "movierec.settings", "PYTHONUNBUFFERED": "1",
    }
    servers, workers = [], []
    try:
        manage(env, "migrate", "--noinput", "-v0")
        manage(env, "load_demo")
        cookies = json.loads(manage(env, "shell", stdin=SETUP_SCRIPT.format(users=USERS)).split("SETUP ", 1)[1])["cookies"]
        manage(env, "shell", "-c", "from recommendations import pipeline; print(pipeline.refit_and_publish())")
        on = Gunicorn({**env, "IMPRESSIONS_ENABLED": "1", "WEB_CONCURRENCY": "1"}, free_port(WEB_PORTS),
                      folder / "web-on.log", workers=1).start()
        servers.append(on)
        off = Gunicorn({**env, "IMPRESSIONS_ENABLED": "0", "WEB_CONCURRENCY": "1"}, free_port(WEB_PORTS),
                       folder / "web-off.log", workers=1).start()
        servers.append(off)
        workers.append(Worker(env, "impressions", folder / "worker.log"))
        wait_until(lambda: " ready." in workers[0].log(), timeout=120, message="worker ready")
        beat = subprocess.Popen([sys.executable, "-m", "celery", "-A", "movierec", "beat", "--loglevel", "WARNING",
                                 "-s", str(folder / "beat-schedule")], cwd=ROOT, env=env,
                                stdout=open(folder / "beat.log", "ab"), stderr=subprocess.STDOUT)
        cards_on = 0
        for cookie in cookies:  # each user's list cached, both processes warm
            for server in (on, off):
                for _ in range(2):
                    cards = _get(f"{server.url}/", cookie)[1]
                    cards_on += cards if server is on else 0

        rng = random.Random(16)
        latencies = {"on": [], "off": []}
        started = time.monotonic()
        for index in range(REQUESTS):
            cookie = cookies[index % len(cookies)]
            for name in rng.sample(["on", "off"], 2):
                seconds, cards = _get(f"{(on if name == 'on' else off).url}/", cookie)
                latencies[name].append(seconds)
                cards_on += cards if name == "on" else 0
        elapsed = time.monotonic() - started

        def count():
            return [int(x) for x in manage(env, "shell", stdin=COUNT_SCRIPT).split("COUNT ", 1)[1].split()]

        wait_until(lambda: count()[1] == 0, timeout=60, message="buffer drained", interval=1)
        stored, _ = count()
        beat.terminate()
        beat.wait(timeout=30)
        direct = json.loads(manage({**env, "IMPRESSIONS_ENABLED": "1"}, "shell", stdin=DIRECT_SCRIPT.format(pages=400))
                            .split("DIRECT ", 1)[1])

        figures = {name: _figures(values) for name, values in latencies.items()}
        low, high = _bootstrap_p99_change(latencies["on"], latencies["off"])
        change = figures["on"]["p99"] / figures["off"]["p99"] - 1
        print(f"signed-in home page, {REQUESTS} requests each, alternating, {USERS} users, {elapsed:.0f} s:")
        print(f"{'logging':<8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
        for name in ("off", "on"):
            f = figures[name]
            print(f"{name:<8} {f['p50']:8.1f} {f['p90']:8.1f} {f['p99']:8.1f} {f['mean']:8.1f}")
        print(f"p99 on/off: {1 + change:.3f} ({change:+.1%}; bootstrap 95% interval {low:+.1%} to {high:+.1%}); "
              f"p50 on/off: {figures['on']['p50'] / figures['off']['p50']:.3f}")
        print(f"films shown by the 'on' instance (warm-up included): {cards_on}; impressions in the database "
              f"after the flushes: {stored}")
        print(f"direct cost of logging one 50-film home page (RPUSH pipeline to Redis), 400 pages: "
              f"p50 {direct['p50'] * 1000:.2f} ms, p99 {direct['p99'] * 1000:.2f} ms "
              f"({direct['p50'] * 1000 / figures['on']['p50']:.1%} of the page's p50); writing them "
              f"({direct['moved']} events) into the database: {direct['flush']:.2f} s "
              f"({direct['moved'] / direct['flush']:.0f} impressions/s)")
    finally:
        for server in servers:
            server.stop()
        for worker in workers:
            worker.stop()
        redis.close()
