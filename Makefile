# Two commands do everything: `make run` and `make test`. All installs live in .venv.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/inquiry-router
HOST ?= 127.0.0.1
PORT ?= 8000

# Datasets are read from a local mirror when one is set; by convention it sits beside the
# checkout in ../shared/datasets. Without either, the product downloads from canonical URLs.
INQUIRY_ROUTER_DATA_MIRROR ?= $(abspath $(wildcard ../shared/datasets))
export INQUIRY_ROUTER_DATA_MIRROR

.PHONY: run setup model serve worker test check lint typecheck clean

# One process: checks the registry, trains the default model if there is no @champion, serves.
run: setup
	$(CLI) run --host $(HOST) --port $(PORT)

setup: $(VENV)/.installed $(VENV)/.system-packages

# Apertium (Debian) translates es, fr, it, pt when no Argos pack covers them; wrk loads the
# server in `bench intake`; chromium is the browser the desk page's tests drive (Playwright
# launches it: no browser download works here). Optional: without root or apt-get the product
# runs without them and says so (`inquiry-router translation list`; `bench intake` falls back to
# a Python client; the browser tests skip, saying why).
APT_PACKAGES := apertium apertium-eng-spa apertium-fr-es apertium-spa-ita apertium-es-pt cg3 wrk \
	chromium
$(VENV)/.system-packages: Makefile | $(VENV)/.installed
	@if [ -e /usr/share/apertium/modes/spa-eng.mode ] && [ -e /usr/share/apertium/modes/pt-es.mode ] \
		&& command -v wrk >/dev/null && command -v chromium >/dev/null; then \
		echo "apertium, wrk, chromium: installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $(APT_PACKAGES) >/dev/null) \
		|| echo "warning: apt-get could not install $(APT_PACKAGES); es/fr/it/pt fall back to other engines"; \
	else \
		echo "note: run as root, or: sudo apt-get install $(APT_PACKAGES)"; \
	fi
	touch $@

# torch first and pinned: any other order pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

model: setup
	$(CLI) ensure-model

serve: setup
	$(CLI) serve --host $(HOST) --port $(PORT)

worker: setup
	$(CLI) worker

# ruff, and the dependency rule (import-linter contracts in pyproject.toml).
lint: setup
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/lint-imports --no-cache

typecheck: setup
	$(VENV)/bin/mypy

# Tests run in two processes (pytest-xdist): much of a test's time is a server starting or a
# browser waiting, not arithmetic. `make test TEST_WORKERS=0` runs them in one.
TEST_WORKERS ?= 2

# Everything CI runs: lint, types, every test (the slow ones too), the slowest listed.
test: setup lint typecheck
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --durations=15

# The inner loop: lint, types and the fast tests (1-3 minutes, by the CPU: CONTRIBUTING.md).
check: setup lint typecheck
	$(VENV)/bin/pytest -n $(TEST_WORKERS) -m "not slow" -x -q

clean:
	rm -rf $(VENV) data/raw data/*.db* models/mlflow.db models/mlartifacts
