# faddl: `make run` (API + worker on the embedded default, with demo data) and `make test`.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
# Let Python cache compiled modules (some machines set PYTHONDONTWRITEBYTECODE=1): the tests start
# the service as real processes dozens of times, and compiling every import each time tripled the
# run. The caches go to __pycache__/ folders, which git ignores.
export PYTHONDONTWRITEBYTECODE :=
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: run test lint typecheck suite install bench clean notebooks

install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen

# `make run PORT=8010 DASHBOARD_PORT=8511` when the default ports are taken.
PORT ?= 8000
DASHBOARD_PORT ?= 8501

run: install
	$(UV) run faddl run --port $(PORT) --dashboard-port $(DASHBOARD_PORT)

# The analysts' notebooks executed into HTML (var/notebooks/), over the service's log or FADDL_EVENTS.
notebooks: install
	$(UV) run jupyter nbconvert --to html --execute --output-dir var/notebooks notebooks/*.ipynb

lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .

typecheck: install
	$(UV) run mypy

# ruff, mypy and the tests all run; mypy beside the tests, since the suite leaves a core idle
# part of the time (processes starting, servers answering). Any failure fails `make test`.
test: install
	@$(MAKE) --no-print-directory --jobs 3 --output-sync=target lint typecheck suite

suite: install
	$(UV) run pytest --numprocesses auto --dist worksteal

bench: install
	$(UV) run python bench/webhooks.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
