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

# The product on the embedded default: a SQLite log in ./schemalog.db (a sample history and a sample
# database, ./sample.db, in its fleet on first run), `schemalog serve` and the daemon until Ctrl-C; it
# prints the web UI's URL and a sign-in token. PORT=8001 make run to use another port.
PORT ?= 8000
run: $(STAMP)
	$(BIN)/python -m service.quickstart --port $(PORT)

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
	rm -rf $(VENV) schemalog.db schemalog.db-wal schemalog.db-shm sample.db
