# Bootstraps .venv from pinned constraints; every target is safe to run on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test test-slow test-all lint typecheck openapi check-python katex clean bench wrk

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

tests/katex/node_modules/.package-lock.json: tests/katex/package-lock.json
	npm ci --prefix tests/katex --no-audit --no-fund --loglevel=error

katex: tests/katex/node_modules/.package-lock.json

## Set up and start the service on $(HOST):$(PORT)
run: $(VENV)/.runtime
	$(BIN)/python -m service serve --host $(HOST) --port $(PORT)

## Set up and run the default test suite (fast: unit, property and API tests)
test: $(VENV)/.test katex
	$(BIN)/python -m pytest -q -n 2 -m "not slow"

## System tests: a real server process (marked slow)
test-slow: $(VENV)/.test katex
	$(BIN)/python -m pytest -q -m slow

test-all: test test-slow

lint: $(VENV)/.test
	$(BIN)/ruff check service tests clients
	$(BIN)/ruff format --check service tests clients
	$(BIN)/mypy

openapi: $(VENV)/.runtime
	$(BIN)/python -m service export-openapi

## The benchmark suite (tests/benchmarks, issue 6): its own venv with torch, jax and matplotlib; ~10 min.
## BENCH_ARGS="--quick" for a smoke check, BENCH_ARGS="--only compute,small" for some sections.
BENCH_VENV := .venv-bench
BENCH_ARGS ?=

# constraints.txt pins mpmath for the tests, a release that sympy (torch's) refuses: the bench venv
# takes the other pins and tests/benchmarks/requirements.txt pins its own mpmath.
$(BENCH_VENV)/.installed: pyproject.toml constraints.txt tests/benchmarks/requirements.txt | check-python
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	grep -v '^mpmath==' constraints.txt > $(BENCH_VENV)/constraints.txt
	$(BENCH_VENV)/bin/python -m pip install -q -c $(BENCH_VENV)/constraints.txt -r tests/benchmarks/requirements.txt -e .
	@touch $@

# wrk from Debian's packages when root; without it the suite falls back to its async Python client.
wrk:
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -q wrk >/dev/null; } \
		|| echo "wrk is missing: the suite uses its slower async Python load generator"

bench: $(BENCH_VENV)/.installed wrk
	$(BENCH_VENV)/bin/python -m tests.benchmarks.suite $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) .bench tests/katex/node_modules .pytest_cache .mypy_cache .ruff_cache
