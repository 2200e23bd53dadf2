# Quick start: `make run` (API + one worker on SQLite), `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
HANDLERS ?= examples.handlers

.PHONY: run test faults lint bench bench-smoke clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet --upgrade pip
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

## run: start the API (waitress) and one worker on the SQLite default; Ctrl-C stops both
run: $(VENV)/.installed
	PATH="$(CURDIR)/$(BIN):$$PATH" JOBSVC_HANDLERS="$${JOBSVC_HANDLERS:-$(HANDLERS)}" \
		$(BIN)/python -m jobsvc.quickstart --host $(HOST) --port $(PORT)

## test: the whole suite (PostgreSQL tests run when JOBSVC_TEST_POSTGRES_URL is set)
test: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## faults: the fault-injection suite at full size (see docs/reliability.md); prints its counters.
## The slow end-to-end tests, on one backend in `make test`, run here on both.
faults: $(VENV)/.installed
	JOBSVC_FAULTS_SCALE=full $(BIN)/python -m pytest -s --timeout 1800 tests/faults tests/e2e $(PYTEST_ARGS)

## lint: ruff's rules (pyproject.toml) and its formatter, checked, never applied
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## bench: the benchmark suite on SQLite and PostgreSQL (docs/performance.md); about 15 minutes
bench: $(VENV)/.installed
	$(BIN)/python -m bench $(BENCH_ARGS)

## bench-smoke: the suite's small mode, a few seconds per backend: it checks itself, not speed
bench-smoke: $(VENV)/.installed
	$(BIN)/python -m bench --small $(BENCH_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache
