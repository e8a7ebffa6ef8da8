# Two commands on a fresh machine with Python 3.11+ and make:
#   make run    the whole local stack (embedded PostgreSQL unless DATABASE_URL is set)
#   make test   every test (embedded PostgreSQL unless TEST_DATABASE_URL is set)
#   make bench  the benchmarks, a table and .data/bench/latest.json (ARGS=--quick for a tiny run)
#   make schema-snapshot  after adding a migration: the schema the migration test expects

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
ARGS ?=

.PHONY: install run test test-unit test-integration test-e2e lint migrate db-url bench schema-snapshot clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Hapex needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

run: install
	$(BIN)/hapex run

migrate: install
	$(BIN)/hapex db migrate

db-url: install
	@$(BIN)/hapex db url

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: install
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

test-integration: install
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

test-e2e: install
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m tests.bench $(ARGS)

# After adding a migration: rewrite tests/data/schema.sql, the schema the migration test expects.
schema-snapshot: install
	$(BIN)/python -m tests.schema_snapshot

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	-$(BIN)/hapex db stop
	rm -rf $(VENV)
