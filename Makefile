# CSAI — the two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: install install-dev run test lint format bench-intake services-stop clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP) $@

install: $(STAMP)  ## create .venv with every runtime dependency

install-dev: $(DEV_STAMP)

run: $(STAMP)  ## start the whole product on embedded Postgres and Redis (Ctrl-C stops all)
	$(BIN)/python -m csai.launcher

test: $(DEV_STAMP)  ## run every test against real Postgres, Redis and a Celery worker
	$(BIN)/python -m pytest

lint: $(DEV_STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(DEV_STAMP)
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

bench-intake: $(STAMP)  ## webhook throughput and latency against a fresh server (writes bench/results/intake.json)
	$(BIN)/python bench/intake.py

services-stop: $(STAMP)  ## stop embedded Postgres/Redis left by a crashed process
	$(BIN)/python -m csai.embedded stop

clean:
	rm -rf $(VENV) var
