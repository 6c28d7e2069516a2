# revsync developer entry points. `make demo` and `make test` each work as one command on a fresh
# machine: they build the virtualenv first when it is missing or older than the requirements.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# uv when it is on PATH and runs (a pyenv shim may exist without uv behind it), plain venv + pip
# otherwise. `make setup UV=` forces pip.
ifeq ($(origin UV),undefined)
UV := $(shell uv --version >/dev/null 2>&1 && command -v uv)
endif

LINT_PATHS  := plugins dags sandbox tests bench

# The reconcile DAG reads dbt's manifest (absolute paths inside: never committed); rebuilt when a file
# of the dbt project changed. Each reconcile task republishes it too.
REVSYNC_HOME ?= .revsync
MANIFEST := $(REVSYNC_HOME)/dbt/manifest.json
DBT_FILES := $(shell find dbt_project \( -name target -o -name logs -o -name dbt_packages \) -prune \
                -o -type f \( -name '*.sql' -o -name '*.yml' -o -name '*.csv' \) -print 2>/dev/null)

PYTEST_ARGS ?=

# Passed through to `revsync demo`.
SEED  ?=
SCALE ?=
KEEP  ?=
DEMO_ARGS := $(if $(SEED),--seed $(SEED)) $(if $(SCALE),--scale $(SCALE)) \
             $(if $(filter 1 true yes,$(KEEP)),--keep)

.PHONY: help setup manifest browser demo test lint format bench lock clean distclean

help:
	@echo "make demo    run the pipeline demo against the local sandbox (SEED=, SCALE=, KEEP=1)"
	@echo "make test    lint, then the whole test suite (PYTEST_ARGS= for extra pytest flags)"
	@echo "make browser install Debian's chromium for the report test when it is missing"
	@echo "make lint    ruff check + ruff format --check; sqlfluff on dbt_project/models"
	@echo "make format  apply ruff fixes and formatting"
	@echo "make bench   run the benchmarks into build/bench/results.{json,md}"
	@echo "make setup   create/refresh $(VENV) from requirements.txt and this package (editable), then make manifest"
	@echo "make manifest  dbt parse into \$$REVSYNC_HOME/dbt/manifest.json: the reconcile DAG's task list"
	@echo "make lock    recompile requirements.txt from requirements.in (needs uv)"
	@echo "make clean   remove build output and caches; make distclean also removes $(VENV) and .revsync"

setup: $(STAMP) $(MANIFEST)

manifest: $(MANIFEST)

$(MANIFEST): $(STAMP) $(DBT_FILES)
	REVSYNC_HOME=$(REVSYNC_HOME) $(PY) -m revsync.orchestration.reconcile manifest

# The stamp is rebuilt when missing or older than requirements.txt / pyproject.toml. It is
# touched only after a successful install, so a failed install is retried next time.
$(STAMP): requirements.txt pyproject.toml
	@set -euo pipefail; start=$$(date +%s); \
	if [ -x "$(PY)" ] && ! "$(PY)" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then \
		echo "setup: $(VENV) is not Python 3.11, recreating it"; rm -rf "$(VENV)"; \
	fi; \
	if [ -n "$(UV)" ]; then \
		echo "setup: using uv ($(UV))"; \
		[ -x "$(PY)" ] || "$(UV)" venv --allow-existing --python 3.11 "$(VENV)"; \
		"$(UV)" pip install --compile-bytecode --python "$(PY)" -r requirements.txt -e .; \
	else \
		echo "setup: uv not found, using $(PYTHON) -m venv + pip"; \
		[ -x "$(PY)" ] || $(PYTHON) -m venv "$(VENV)"; \
		[ -x "$(VENV)/bin/pip" ] || "$(PY)" -m ensurepip --upgrade; \
		"$(PY)" -m pip install -r requirements.txt -e .; \
	fi; \
	touch "$@"; \
	echo "setup: $(VENV) ready in $$(( $$(date +%s) - start ))s"

# The report's browser test needs Chromium: Debian's package, installed when missing (as root, or
# with sudo). Elsewhere set REVSYNC_TEST_CHROMIUM to a Chromium or Chrome binary.
browser:
	@if [ -n "$$REVSYNC_TEST_CHROMIUM" ] || command -v chromium >/dev/null 2>&1; then exit 0; fi; \
	echo "browser: installing Debian's chromium for the report test"; \
	SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	$$SUDO apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || \
	{ $$SUDO apt-get update >/dev/null && $$SUDO apt-get install -y --no-install-recommends chromium >/dev/null; } || \
	{ echo "browser: could not install chromium; install it, or set REVSYNC_TEST_CHROMIUM"; exit 1; }

demo: $(STAMP) $(MANIFEST)
	$(VENV)/bin/revsync demo $(strip $(DEMO_ARGS))

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	@if [ -d dbt_project/models ] && [ -n "$$(find dbt_project/models -name '*.sql' -print -quit)" ]; then \
		echo "$(VENV)/bin/sqlfluff lint dbt_project/models"; \
		$(VENV)/bin/sqlfluff lint dbt_project/models; \
	else \
		echo "lint: no SQL under dbt_project/models yet, sqlfluff skipped"; \
	fi

format: $(STAMP)
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)
	$(VENV)/bin/ruff format $(LINT_PATHS)

# pytest exits 5 when it collected no tests; that is accepted here (say, a marker selecting
# nothing), but announced loudly so nobody mistakes it for a green run.
test: lint browser
	@status=0; "$(PY)" -m pytest $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then \
		echo "!!!!!!!! make test: pytest COLLECTED NO TESTS (exit 5) -- treated as success, NOTHING WAS TESTED !!!!!!!!"; \
		exit 0; \
	fi; \
	exit $$status

# The peers bench/peers.py runs beside revsync (dlt), in a virtualenv of their own.
PEERS_VENV := build/bench/peers-venv

$(PEERS_VENV)/.installed: bench/requirements-peers.txt
	@[ -x "$(PEERS_VENV)/bin/python" ] || $(PYTHON) -m venv "$(PEERS_VENV)"
	"$(PEERS_VENV)/bin/python" -m pip install -q -r bench/requirements-peers.txt
	touch "$@"

bench: $(STAMP) $(PEERS_VENV)/.installed
	$(PY) -m bench $(BENCH_ARGS)

lock:
	@[ -n "$(UV)" ] || { echo "make lock needs uv (pip install uv)"; exit 1; }
	"$(UV)" pip compile --python-version 3.11 --no-emit-index-url --no-emit-find-links \
		requirements.in -o requirements.txt

clean:
	rm -rf build .pytest_cache .ruff_cache *.egg-info plugins/*.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) .revsync
