# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Installs come from uv.lock (the versions CI tested); `make lock` refreshes it (docs/operations.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
UV := UV_PROJECT_ENVIRONMENT=$(abspath $(VENV)) $(BIN)/uv

.PHONY: demo test test-fast typecheck lint bench clean smoke-deploy lock

$(BIN)/.installed: pyproject.toml uv.lock
	@echo "learnhours: installing into $(VENV) the versions locked in uv.lock (the first time takes a minute)…"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	@# --inexact: uv itself (installed above, not a project dependency) stays in the venv.
	@# --compile-bytecode: as pip does; Python here may not write .pyc files itself.
	@$(UV) sync --locked --all-extras --inexact --compile-bytecode --quiet
	@touch $@

demo: $(BIN)/.installed  ## sample agency for today -> SQLite -> compliance -> var/outbox/*.eml
	$(BIN)/learnhours demo

test: $(BIN)/.installed  ## every test, slow and PostgreSQL ones included
	$(BIN)/python -m pytest -q

test-fast: $(BIN)/.installed  ## the quick loop while developing (under a minute)
	$(BIN)/python -m pytest -q -m "not slow"

typecheck: $(BIN)/.installed
	$(BIN)/mypy

smoke-deploy: $(BIN)/.installed  ## a real Prefect server: deploy, the scheduler's own runs, a worker (slow)
	scripts/smoke-deploy.sh

lint: $(BIN)/.installed
	$(BIN)/ruff check learnhours tests bench

lock: $(BIN)/.installed  ## re-resolve uv.lock within pyproject.toml's ranges, then run `make test`
	$(UV) lock --upgrade

clean:
	rm -rf var/warehouse.db* var/outbox var/demo var/smoke-*
