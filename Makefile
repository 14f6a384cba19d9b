# The two commands: `make run` starts the service on the embedded default, `make test` checks it.
PYTHON ?= python3
VENV ?= .venv
CONFIG ?= config.example.yaml
BIN := $(VENV)/bin

.PHONY: run test lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,hubspot,salesforce,redis,postgres]'
	@touch $@ $(VENV)/.run-installed

## run: start web server and worker on 127.0.0.1:8000 with config.example.yaml
run: $(VENV)/.run-installed
	$(BIN)/sipgate-crm serve --config $(CONFIG)

## test: ruff, mypy (strict on connector/) and pytest
test: lint typecheck unit

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check connector tests bench docs/examples

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

unit: $(VENV)/.dev-installed
	$(BIN)/pytest -q

## bench: the webhook benchmark (prints ratios against baselines measured in the same run)
bench: $(VENV)/.dev-installed
	$(BIN)/python bench/webhook_throughput.py

## clean: remove the virtualenv and caches; never ./data (the ledger: calls not yet delivered)
clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
