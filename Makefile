# Two entry points, both idempotent on a fresh clone:
#   make demo   create .venv, install kachery-flows, run the demo on the default local store
#   make test   create .venv, install kachery-flows[all,test,docs], run ruff, mypy, pytest
#               and a strict build of the documentation site
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint docs bench bench-report clean chromium

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.base-installed: pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install -q -c constraints.txt -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install -q -c constraints.txt -e '.[all,test,docs]'
	touch $@ $(VENV)/.base-installed

demo: $(VENV)/.base-installed
	$(VENV)/bin/kachery-flows demo

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check kachery_flows tests benchmarks examples
	$(VENV)/bin/ruff format --check kachery_flows tests benchmarks examples
	$(VENV)/bin/mypy

# The lineage page tests open it in a real headless Chromium (Debian's package).
# (as root, or through sudo otherwise).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	command -v chromium >/dev/null || ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium)

test: lint chromium
	$(PY) -m pytest -W error
	$(MAKE) docs

docs: $(VENV)/.test-installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict -q

bench: $(VENV)/.test-installed
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

# Runs every benchmark and regenerates docs/benchmarks.md and its plots (docs/img/).
bench-report: $(VENV)/.test-installed
	$(PY) benchmarks/report.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
