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

## setup: migrate, load the demo catalogue into an empty database, make sure a staff account exists
setup: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap_site

run: setup
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

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
