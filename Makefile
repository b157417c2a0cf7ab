# Two commands matter: `make run` (the quick start) and `make test` (the whole suite).
# Both create the virtual environment and install what they need on first use.
PYTHON ?= python3
# Test processes: each gets its own broker, databases and worker stacks (session
# fixtures), and takes whole files, so a file's shared stack starts once.
TEST_WORKERS ?= 3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run etl up test test-fast lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# A package index that drops a connection mid-download (CI saw IncompleteRead)
	# fails one try, not the build: pip keeps what it already fetched.
	for try in 1 2 3; do $(BIN)/python -m pip install -q --upgrade pip && break; sleep 5; done
	for try in 1 2 3; do $(BIN)/python -m pip install -q -e '.[dev]' && break; \
	  test $$try -lt 3 || exit 1; sleep 5; done
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## run the example DAG end to end on a throwaway local stack
	$(BIN)/orchestrator quickstart example

etl: $(STAMP)  ## the ETL example (http -> python -> sql) against a fixture API it serves
	$(BIN)/python dags/etl_demo.py

up: $(STAMP)  ## broker (embedded unless ORCH_BROKER_URL), worker, Flower and the server (its URL and token file shown) until Ctrl-C
	$(BIN)/orchestrator up

test: $(STAMP)  ## the whole suite: unit, integration (SQLite + PostgreSQL), fault, security
	bash .ci/system-packages
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=30

test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/unit

lint: $(STAMP)
	$(BIN)/ruff check orchestrator workers dags tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)  ## orchestrator vs raw Celery, same broker, same run
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache orchestrator.db*
