# Upnext: `make demo` starts the product, `make test` runs the tests. Both install what they need first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: install system-deps widget demo test bench clean

install: system-deps $(STAMP) widget

# Re-runs only when pyproject.toml changes. torch is pinned to the CPU build that lies on this machine's disk:
# an unpinned torch would pull a multi-GB CUDA build (the package itself accepts a range).
$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import backend, torch, numba, starlette, sqlalchemy, playwright"
	@touch $@

# The embeddable widget: widget/src -> static/w.js (+ w.json), minified; fails when over its size budget.
widget: static/w.js
static/w.js: $(STAMP) widget/build.py backend/item_ids.py $(wildcard widget/src/*)
	$(PY) widget/build.py

system-deps:
	@.ci/system-deps

demo: install
	$(PY) -m backend demo --port $(PORT)

# Two pytest processes: the Numba-CUDA tests (test_*cuda*.py) run under the CUDA simulator, which numba reads
# from NUMBA_ENABLE_CUDASIM when it is first imported, so it cannot be switched on inside the main run.
CUDA_TESTS = $(shell find tests -name 'test_*cuda*.py' -not -path 'tests/gpu/*' | sort)
test: install
	$(PY) -m pytest tests $(addprefix --ignore=,$(CUDA_TESTS)) $(PYTEST_ARGS)
	NUMBA_ENABLE_CUDASIM=1 $(PY) -m pytest $(CUDA_TESTS) $(PYTEST_ARGS)

bench: install
	$(PY) -m pip install -q --disable-pip-version-check -e ".[test,bench]" 2>&1 | grep -v "^WARNING: Location" || true
	@set -e; for b in tests/bench/bench_*.py; do echo "== $$b"; $(PY) $$b; done
	@echo "== tests/cluster (three hosts, PostgreSQL, nginx, a worker)"
	UPNEXT_CLUSTER_TEST=1 $(PY) -m pytest -q -s -p no:cacheprovider tests/cluster

clean:
	rm -rf $(VENV) var tests/output .pytest_cache
