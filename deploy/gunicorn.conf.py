"""gunicorn settings: `gunicorn movierec.wsgi -c deploy/gunicorn.conf.py` (what `make run` starts).

Environment: HOST (127.0.0.1) and PORT (8000) to bind, WEB_CONCURRENCY worker processes (2),
WEB_THREADS threads per worker (1: plain sync workers), WEB_TIMEOUT seconds before a stuck
worker is replaced (60). Command-line flags override these.
"""
import os
import shutil
import tempfile

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "1"))
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))
# Load Django and every view once in the master, before the workers fork: they start answering at
# once instead of each importing the site (numpy, the recommender) on its first request.
preload_app = True
# One line per request comes from movierec.middleware.RequestLogMiddleware instead of an access log.
accesslog = None
errorlog = "-"

# Prometheus metrics from every worker process, added up at /metrics (prometheus-client's
# multiprocess mode): the workers write to this folder, emptied when the server starts.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), f"movierec-metrics-{os.getpid()}"))


def on_starting(server):
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder, exist_ok=True)


def when_ready(server):
    import gc

    from django.urls import get_resolver

    get_resolver().url_patterns  # imports the views, and through them the recommender
    # What the master loaded (Django, numpy, the views) lives as long as the workers: moved out of
    # the collector's reach, a full collection in a worker no longer walks it (pauses of ~100 ms
    # under load), and the forked workers keep sharing those pages instead of copying them.
    gc.collect()
    gc.freeze()


def post_fork(server, worker):
    import gc

    # A request allocates tens of thousands of short-lived objects (querysets, template nodes):
    # collect the young generation less often, the old ones rarely.
    gc.set_threshold(50_000, 20, 100)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
