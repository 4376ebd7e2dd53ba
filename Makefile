# Bootstraps .venv from pinned constraints; every target is safe to run on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.DEFAULT_GOAL := help
.PHONY: help run test test-slow test-all lint openapi docs check-python katex clean bench wrk

## List the targets (the default goal)
help:
	@awk '/^## /{doc = substr($$0, 4); next} /^[a-z-]+:/{if (doc) {split($$0, t, ":"); printf "  make %-10s %s\n", t[1], doc}; doc = ""; next} {doc = ""}' $(MAKEFILE_LIST)

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (set PYTHON=...)")'

$(BIN)/python: | check-python
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.runtime: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install -q -c constraints.txt -e .
	@touch $@

$(VENV)/.test: $(VENV)/.runtime clients/python/pyproject.toml
	$(PIP) install -q -c constraints.txt -e '.[test]'
	$(PIP) install -q -c constraints.txt -e ./clients/python
	@touch $@

$(VENV)/.docs: $(VENV)/.runtime
	$(PIP) install -q -c constraints.txt -e '.[docs]'
	@touch $@

tests/katex/node_modules/.package-lock.json: tests/katex/package-lock.json
	npm ci --prefix tests/katex --no-audit --no-fund --loglevel=error

katex: tests/katex/node_modules/.package-lock.json

## Set up and start the service on $GRADIENT_SERVICE_HOST:$GRADIENT_SERVICE_PORT (127.0.0.1:8000); Ctrl-C stops it
run: $(VENV)/.runtime
	$(BIN)/python -m service serve

## Set up and run the default test suite (fast: unit, property and API tests)
test: $(VENV)/.test katex
	$(BIN)/python -m pytest -q -n 2 -m "not slow"

## System tests: a real server process (marked slow)
test-slow: $(VENV)/.test katex
	$(BIN)/python -m pytest -q -m slow

## Both suites
test-all: test test-slow

## ruff (lint and format check) and mypy (strict)
lint: $(VENV)/.test
	$(BIN)/ruff check service tests hooks clients
	$(BIN)/ruff format --check service tests hooks clients
	$(BIN)/mypy

## Regenerate openapi/openapi.json
openapi: $(VENV)/.runtime
	$(BIN)/python -m service export-openapi

## Build the docs site from docs/ into site/ (MkDocs, --strict; the HTTP reference from openapi/openapi.json)
docs: $(VENV)/.docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --site-dir site

# The benchmark suite's own venv has torch, jax and matplotlib.
# BENCH_ARGS="--quick" for a smoke check, BENCH_ARGS="--only compute,small" for some sections.
BENCH_VENV := .venv-bench
BENCH_ARGS ?=

# The bench venv takes constraints.txt less its mpmath pin: tests/benchmarks/requirements.txt pins its own.
$(BENCH_VENV)/.installed: pyproject.toml constraints.txt tests/benchmarks/requirements.txt | check-python
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	grep -v -E '^(mpmath|sympy)==' constraints.txt > $(BENCH_VENV)/constraints.txt
	$(BENCH_VENV)/bin/python -m pip install -q -c $(BENCH_VENV)/constraints.txt -r tests/benchmarks/requirements.txt -e .
	@touch $@

# wrk from Debian's packages when root; without it the suite falls back to its async Python client.
wrk:
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -q wrk >/dev/null; } \
		|| echo "wrk is missing: the suite uses its slower async Python load generator"

## The benchmark suite (tests/benchmarks, docs/performance.md; its own venv): 4-8 min, not in CI
bench: $(BENCH_VENV)/.installed wrk
	$(BENCH_VENV)/bin/python -m tests.benchmarks.suite $(BENCH_ARGS)

## Remove the venvs, caches and the built site
clean:
	rm -rf $(VENV) $(BENCH_VENV) .bench site tests/katex/node_modules .pytest_cache .mypy_cache .ruff_cache
