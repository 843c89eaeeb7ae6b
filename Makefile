# movierec: `make run` serves the site, `make test` runs the whole suite. Both set themselves up.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test bench setup venv dev-venv chromium services clean

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

## setup: migrate, load the demo catalogue into an empty database (or, with DATA=<MovieLens release>
## and METADATA="<files>", import that instead and fit a model), make sure a staff account exists
setup: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap_site$(if $(DATA), --data "$(DATA)")$(if $(METADATA), --metadata $(METADATA))

## run: web + Celery worker + beat (Procfile, honcho) when Redis answers; else the web process alone, tasks in process
REDIS_CHECK := import os, sys, redis; url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"); \
	sys.exit(0 if url and redis.Redis.from_url(url, socket_connect_timeout=1).ping() else 1)
run: venv
	@if $(PY) -c '$(REDIS_CHECK)' 2>/dev/null; then \
		$(MAKE) --no-print-directory setup && \
		PATH="$(CURDIR)/$(VENV)/bin:$$PATH" WEB_PORT=$(PORT) $(VENV)/bin/honcho -f Procfile start; \
	else \
		echo "WARNING: Redis is not reachable ($${REDIS_URL-redis://127.0.0.1:6379/0}): running the web process alone; tasks run in process, the cache is in memory, no periodic refits."; \
		export REDIS_URL= CELERY_TASK_ALWAYS_EAGER=1 && $(MAKE) --no-print-directory setup && \
		$(PY) manage.py runserver 127.0.0.1:$(PORT); \
	fi

## chromium: Debian's Chromium for the browser tests (never a browser download)
chromium:
	@test -x $(CHROMIUM) || { echo "Installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: dev-venv chromium
	CHROMIUM=$(CHROMIUM) $(PY) -m pytest $(PYTEST_ARGS)

bench: dev-venv
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
