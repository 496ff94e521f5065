# The README's two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OH := $(VENV)/bin/oh

LOCK := requirements-dev.lock

.PHONY: install demo test down bench bench-smoke clean lock wheel

## The venv: oh (editable) with the dev tools and the dagster extra, at the versions the lock pins.
$(VENV)/.installed: pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "oh needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -c $(LOCK) --upgrade pip
	$(VENV)/bin/pip install -q -c $(LOCK) -e '.[dev,dagster]'
	touch $@

install: $(VENV)/.installed

## Start every service on the sim provider, backfill the default watchlist, say how to query it.
demo: install
	$(OH) demo

## The whole test suite: lint (ruff), the import contracts (lint-imports), then unit, integration
## with real processes, the Dagster tests (tests/dagster: the `dagster` extra, in the dev set-up) and
## browser tests, in parallel (pytest-xdist, a test module per worker; on 2 cores the suite is bound by
## the CPU its processes use: four workers keep both cores busy, the fifth runs the modules that mostly wait,
## tests/conftest.py's WAITING). TEST_WORKERS=1 runs them one at a time. Byte code is written even where the environment
## says not to (PYTHONDONTWRITEBYTECODE): the suite starts over a thousand processes, and each would compile oh again.
## devtools/warm_tests.py writes that byte code (and pytest's rewritten test modules) once, before the workers start:
## in a clean clone each of them made it again, all at once (~30 CPU-s of the suite).
TEST_WORKERS ?= 5
test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m devtools.warm_tests
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadscope

## Stop every service.
down:
	$(OH) down

## Every benchmark, each printing its figures and the ratio it is judged by.
bench: install
	$(PY) -m bench

## Whether every benchmark still runs: each at its smallest size (bench/__main__.py SMOKE; ~6 min), exit 0 and a RATIO line.
bench-smoke: install
	$(PY) -m bench --smoke

## Re-resolve the pinned dev set from pyproject.toml's bounds (pip-tools: pip's own resolver and indexes).
lock: install
	$(VENV)/bin/pip-compile --extra dev --extra dagster --strip-extras --no-emit-index-url --no-emit-find-links \
	  --allow-unsafe -o $(LOCK) pyproject.toml

## A wheel of oh in dist/ (what `pip install .` or `pipx install .` installs; tests/integration/test_wheel.py runs it).
wheel: install
	$(VENV)/bin/pip wheel -q --no-deps -w dist .

clean: down
	rm -rf $(VENV) data dist build
