# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast lint bench clean smoke-deploy

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

demo: $(BIN)/.installed  ## sample agency for this year -> SQLite -> compliance -> var/outbox/*.eml
	$(BIN)/learnhours demo

test: $(BIN)/.installed  ## every test, slow and PostgreSQL ones included
	$(BIN)/python -m pytest -q

test-fast: $(BIN)/.installed  ## the quick loop while developing (under a minute)
	$(BIN)/python -m pytest -q -m "not slow"

smoke-deploy: $(BIN)/.installed  ## a real Prefect server, `prefect deploy --all`, one run by a worker (slow)
	scripts/smoke-deploy.sh

lint: $(BIN)/.installed
	$(BIN)/ruff check learnhours tests bench

clean:
	rm -rf var/warehouse.db* var/outbox var/demo var/smoke-*
