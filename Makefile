# schemalog: `make run` and `make test` work on a fresh clone with Python 3.11+ only.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := .venv/.installed

.PHONY: run test lint typecheck check bench clean

.venv/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The embedded default: a SQLite log in ./schemalog.db, with a sample changeset on first run.
run: $(STAMP)
	$(BIN)/schemalog init
	@if [ "$$($(BIN)/schemalog history --json | $(BIN)/python -c 'import json,sys; print(len(json.load(sys.stdin)))')" = "0" ]; then \
		$(BIN)/schemalog append --actor make-run examples/first-changeset.json; fi
	$(BIN)/schemalog history
	$(BIN)/schemalog verify

test: $(STAMP)
	$(BIN)/pytest -q -n 2

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check events projections

typecheck: $(STAMP)
	$(BIN)/mypy events projections service

check: lint typecheck test

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/append.py
	$(BIN)/python bench/introspect.py
	$(BIN)/python bench/apply.py

clean:
	rm -rf $(VENV) schemalog.db schemalog.db-wal schemalog.db-shm
