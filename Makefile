# movierec: `make run` serves the site (`make dev`: with autoreload), `make test` runs the whole suite. Both set themselves up.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
CHROMIUM ?= /usr/bin/chromium

.PHONY: run dev serve test bench setup venv dev-venv chromium wrk services clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel setuptools
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed
dev-venv: $(VENV)/.installed-dev

## setup: migrate, static files, the demo catalogue into an empty database (or, with DATA=<MovieLens release>
## and METADATA="<files>", import that instead and fit a model), a staff account
setup: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py bootstrap_site $(BOOTSTRAP_ARGS)$(if $(DATA), --data "$(DATA)")$(if $(METADATA), --metadata $(METADATA))

## run: gunicorn + Celery worker + beat under supervisord when Redis answers; else gunicorn alone, tasks in process
run: venv
	@$(MAKE) --no-print-directory serve WEB_COMMAND='$(VENV)/bin/gunicorn movierec.wsgi -c deploy/gunicorn.conf.py'

## dev: the same with Django's runserver (reloads on code changes) as the web process
dev: venv
	@$(MAKE) --no-print-directory serve WEB_COMMAND='$(PY) manage.py runserver 127.0.0.1:$(PORT)'

REDIS_CHECK := import os, sys, redis; url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"); \
	sys.exit(0 if url and redis.Redis.from_url(url, socket_connect_timeout=1).ping() else 1)
ANNOUNCE = $(PY) manage.py bootstrap_site --announce http://127.0.0.1:$(PORT)/
serve:
	@mkdir -p .cache
	@if $(PY) -c '$(REDIS_CHECK)' 2>/dev/null; then \
		$(MAKE) --no-print-directory setup BOOTSTRAP_ARGS=--hold-credentials && \
		PATH="$(CURDIR)/$(VENV)/bin:$$PATH" PORT=$(PORT) WEB_COMMAND="$(WEB_COMMAND)" ANNOUNCE="$(ANNOUNCE)" \
			exec $(VENV)/bin/supervisord -c deploy/supervisord.conf; \
	else \
		echo "WARNING: Redis is not reachable ($${REDIS_URL-redis://127.0.0.1:6379/0}): running the web server alone (one process, its threads share an in-memory cache); tasks run in process, no periodic refits."; \
		export REDIS_URL= CELERY_TASK_ALWAYS_EAGER=1 PORT=$(PORT) WEB_CONCURRENCY=1 WEB_THREADS=4 && \
		$(MAKE) --no-print-directory setup BOOTSTRAP_ARGS=--hold-credentials && \
		{ $(ANNOUNCE) & } && exec $(WEB_COMMAND); \
	fi

## chromium: Debian's Chromium for the browser tests (never a browser download)
chromium:
	@test -x $(CHROMIUM) || { echo "Installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: dev-venv chromium
	CHROMIUM=$(CHROMIUM) $(PY) -m pytest $(PYTEST_ARGS)

## wrk: Debian's HTTP load generator, for bench serve
wrk:
	@command -v wrk >/dev/null || { echo "Installing Debian's wrk for the serving benchmarks"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

bench: dev-venv wrk
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
