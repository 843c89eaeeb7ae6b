"""Shared fixtures. Tests use the real database backend of the run (SQLite or PostgreSQL).

By default every test runs Celery tasks eagerly and caches in a fresh in-process (locmem)
cache, so no test needs Redis or a worker. Tests about the pipeline ask for the real thing:
``redis_cache`` (Redis db 14, flushed) and ``celery_worker`` (a `celery worker` subprocess on
the test database).
"""
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from movierec.celery import app as celery_app

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
# Each test run keeps to its own keys and queue in db 14, so concurrent runs cannot disturb each other.
TEST_RUN_PREFIX = f"test-{uuid.uuid4().hex[:12]}"
TEST_QUEUE = TEST_RUN_PREFIX
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """SQLite test databases live in a file (not memory) so a worker subprocess can open them."""
    database = django_settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3" and not database.get("TEST", {}).get("NAME"):
        database.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")


@pytest.fixture(scope="session", autouse=True)
def _test_run_queue():
    """Tasks this run sends to a broker go to its own queue (set before Celery builds its routes)."""
    celery_app.conf.task_default_queue = TEST_QUEUE


@pytest.fixture(autouse=True)
def _fresh_model_check():
    """Each test has its own database: forget the model an earlier test published (or fitted)."""
    from catalog.selectors import forget_genres, forget_simulated_users
    from recommendations.experiments import expire_running_experiment
    from recommendations.selectors import expire_current_model

    expire_current_model()
    expire_running_experiment()
    forget_simulated_users()
    forget_genres()


@pytest.fixture(autouse=True)
def _redis_breaker_closed():
    """Each test starts with the Redis circuit breaker closed (an earlier test may have tripped it)."""
    from movierec.cache_backends import breaker

    breaker.reset()
    yield
    breaker.reset()


@pytest.fixture(autouse=True)
def _in_process_cache_and_tasks(settings):
    """A fresh locmem cache per test and eager Celery tasks (no Redis, no worker needed)."""
    per_test = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"test-{uuid.uuid4()}"}
    settings.CACHES = {"default": per_test, "recommendations": per_test}
    settings.CELERY_TASK_ALWAYS_EAGER = True
    eager, broker = celery_app.conf.task_always_eager, celery_app.conf.broker_url
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = eager
    _set_broker(broker)


def _set_broker(url):
    if celery_app.conf.broker_url != url:
        celery_app.conf.broker_url = url
        celery_app.close()  # drop the connection pool bound to the previous broker
        # close() keeps the producer pool, which still points at the previous broker: drop it too.
        celery_app.amqp._producer_pool = None
        celery_app.set_current()


def redis_cache_settings(url: str, key_prefix: str = "movierec") -> dict:
    """CACHES pointing at a Redis URL, shaped like the production setting."""
    options = {"socket_connect_timeout": django_settings.REDIS_TIMEOUT, "socket_timeout": django_settings.REDIS_TIMEOUT}
    return {
        "default": {"BACKEND": "movierec.cache_backends.FailOpenRedisCache", "LOCATION": url,
                    "KEY_PREFIX": key_prefix, "OPTIONS": options},
        "recommendations": {"BACKEND": "movierec.cache_backends.GuardedRedisCache", "LOCATION": url,
                            "KEY_PREFIX": key_prefix, "OPTIONS": options},
    }


def _delete_run_keys(client) -> None:
    for key in client.scan_iter(match=f"{TEST_RUN_PREFIX}*", count=1000):
        client.delete(key)


@pytest.fixture
def private_redis(settings):
    """A redis-server of this test's own (port 6391-6399) as cache and broker; the test may kill,
    restart, freeze or thaw it (bench.servers.PrivateRedis)."""
    from bench.servers import PrivateRedis

    server = PrivateRedis().start()
    settings.CACHES = redis_cache_settings(server.url)
    settings.REDIS_URL = server.url
    yield server
    server.close()


@pytest.fixture
def redis_cache(settings):
    """The real Redis (database 14) as cache, under this run's key prefix, emptied before and after."""
    import redis

    client = redis.Redis.from_url(TEST_REDIS_URL)
    _delete_run_keys(client)
    settings.CACHES = redis_cache_settings(TEST_REDIS_URL, key_prefix=TEST_RUN_PREFIX)
    settings.REDIS_URL = TEST_REDIS_URL
    yield client
    _delete_run_keys(client)


def test_database_url() -> str:
    """A DATABASE_URL another process can use to reach this run's test database."""
    from django.db import connection

    config = connection.settings_dict
    if config["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{config['NAME']}"
    credentials = config["USER"] + (f":{config['PASSWORD']}" if config["PASSWORD"] else "")
    return f"postgres://{credentials}@{config['HOST'] or '127.0.0.1'}:{config['PORT'] or 5432}/{config['NAME']}"


class WorkerProcess:
    """A `celery -A movierec worker` subprocess on the test database and Redis db 14."""

    def __init__(self, env: dict, log_path: Path):
        self.env, self.log_path, self.process = env, log_path, None

    def start(self, timeout: float = 60) -> "WorkerProcess":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "movierec", "worker", "--pool=solo", "--loglevel=INFO",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"test-{uuid.uuid4().hex[:8]}@%h"],
            cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while b" ready." not in self.log_path.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"celery worker did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        return self

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _worker_environment(settings, tmp_path, redis_url: str, key_prefix: str) -> dict:
    """Environment for worker processes on this run's test database and the given Redis."""
    settings.MEDIA_ROOT = tmp_path / "media"
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "RECOMMENDER_REFIT_LOCK_TTL": str(settings.RECOMMENDER_REFIT_LOCK_TTL),
        "RECOMMENDER_REFRESH_DEBOUNCE_SECONDS": str(settings.RECOMMENDER_REFRESH_DEBOUNCE_SECONDS),
        "CACHE_KEY_PREFIX": key_prefix,
        "CELERY_QUEUE": TEST_QUEUE,
        "DJANGO_SETTINGS_MODULE": "movierec.settings",
        "TASK_LOG_LEVEL": "INFO",  # the tests read "received" and "succeeded" lines in the worker log
    }
    settings.CELERY_TASK_ALWAYS_EAGER = False
    celery_app.conf.task_always_eager = False
    _set_broker(redis_url)
    return env


@pytest.fixture
def worker_env(redis_cache, settings, tmp_path):
    """Environment for worker processes: same test database, Redis db 14, media directory."""
    return _worker_environment(settings, tmp_path, TEST_REDIS_URL, TEST_RUN_PREFIX)


@pytest.fixture
def private_worker_env(private_redis, settings, tmp_path):
    """Environment for worker processes on the test database and this test's own redis-server."""
    return _worker_environment(settings, tmp_path, private_redis.url, "movierec")


def _worker_starter(base_env: dict, tmp_path: Path):
    workers = []

    def start(env: dict | None = None) -> WorkerProcess:
        worker = WorkerProcess({**base_env, **(env or {})}, tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker)
        return worker.start()

    return start, workers


@pytest.fixture
def start_worker(worker_env, tmp_path):
    """Call to start a real Celery worker (several calls start several, env= adds variables); all stopped at the end."""
    start, workers = _worker_starter(worker_env, tmp_path)
    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def start_private_worker(private_worker_env, tmp_path):
    """Like start_worker, on this test's own redis-server (private_redis)."""
    start, workers = _worker_starter(private_worker_env, tmp_path)
    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def celery_worker(start_worker):
    """One running Celery worker process (solo pool) on the test database and Redis db 14."""
    return start_worker()
