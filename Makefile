# CSAI — the two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
# pipefail: a filtered pip still fails the target when pip fails.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# Installs print only errors. Not editable: the project installs no package of its own (only
# its dependencies), and setuptools warns about every editable install. pip's warnings about an index or find-links location of the
# machine's own pip configuration that does not exist say nothing about CSAI: filtered out.
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
QUIET_PIP := 2>&1 | { grep -v "^WARNING: Location '.*' is ignored" || true; }

.PHONY: install install-dev browser run test lint format bench-intake bench-pipeline bench-console bench-outbound bench-evaluate bench-simulate faults services-stop clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip $(QUIET_PIP)

$(STAMP): pyproject.toml | $(BIN)/python
	$(PIP) . $(QUIET_PIP)
	@touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) '.[dev]' $(QUIET_PIP)
	@touch $(STAMP) $@

install: $(STAMP)  ## create .venv with every runtime dependency

install-dev: $(DEV_STAMP)

run: $(STAMP)  ## start the whole product on embedded Postgres and Redis (Ctrl-C stops all)
	$(BIN)/python -m csai.launcher

# Browser tests drive Debian's Chromium through Playwright (Playwright's own browser
# download is never used). Installed here when missing and we are root with apt-get;
# otherwise those tests are skipped with the reason (and fail on CI).
CHROMIUM ?= /usr/bin/chromium

browser:  ## install Debian's Chromium for the browser tests (root), unless it is there
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else \
		echo "$(CHROMIUM) is missing and installing it needs root and apt-get: browser tests will be skipped"; \
	fi

test: $(DEV_STAMP) browser  ## run every test against real Postgres, Redis, a Celery worker and Chromium
	$(BIN)/python -m pytest

lint: $(DEV_STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(DEV_STAMP)
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

bench-intake: $(STAMP)  ## webhook throughput and latency against a fresh server (writes bench/results/intake.json)
	$(BIN)/python bench/intake.py

bench-pipeline: $(STAMP)  ## tickets/s through intake and the four agents, one worker (writes bench/results/pipeline.json)
	$(BIN)/python bench/pipeline.py

bench-outbound: $(STAMP)  ## webhook deliveries/s to a local receiver and the outbox lag p50/p95 (writes bench/results/outbound.json)
	$(BIN)/python bench/outbound.py

bench-console: $(STAMP)  ## review queue and item page server time with 100k tickets, 10k pending items (bench/results/console.json)
	$(BIN)/python bench/console.py

faults: $(STAMP)  ## kill worker, PostgreSQL, Redis, a web worker and storm the LLM under 10 min of traffic; reconcile (bench/results/faults.json)
	$(BIN)/python bench/faults.py

# The shared evaluation datasets are read where they are, never copied into the repo.
DATASETS ?= ../shared/datasets

bench-evaluate: $(STAMP)  ## local classifier on BANKING77 and CLINC150, plain and at precision 0.95 (bench/results/evaluate-*.json)
	$(BIN)/python manage.py evaluate --train $(DATASETS)/banking77/train.csv --test $(DATASETS)/banking77/test.csv \
		--text-col text --label-col category --json > bench/results/evaluate-banking77.json
	$(BIN)/python manage.py evaluate --train $(DATASETS)/clinc150/clinc150.csv --test $(DATASETS)/clinc150/clinc150.csv \
		--text-col text --label-col intent --train-where split=train --test-where split=val --oos-label oos \
		--json > bench/results/evaluate-clinc150.json
	$(BIN)/python manage.py evaluate --train $(DATASETS)/banking77/train.csv --test $(DATASETS)/banking77/test.csv \
		--text-col text --label-col category --target-precision 0.95 --json > bench/results/evaluate-banking77-p95.json
	$(BIN)/python manage.py evaluate --train $(DATASETS)/clinc150/clinc150.csv --test $(DATASETS)/clinc150/clinc150.csv \
		--text-col text --label-col intent --train-where split=train --test-where split=val --oos-label oos \
		--target-precision 0.95 --json > bench/results/evaluate-clinc150-p95.json

bench-simulate: $(STAMP)  ## the phase journey on BANKING77, then with CLINC150 drift (bench/results/simulate-*.json)
	$(BIN)/python manage.py simulate --csv $(DATASETS)/banking77/train.csv --csv $(DATASETS)/banking77/test.csv \
		--label-col category --json > bench/results/simulate-banking77.json
	$(BIN)/python manage.py simulate --csv $(DATASETS)/banking77/train.csv --csv $(DATASETS)/banking77/test.csv \
		--label-col category --drift-at 8000 --drift-csv $(DATASETS)/clinc150/clinc150.csv --drift-label-col intent \
		--drift-where split=train --json > bench/results/simulate-drift.json

services-stop: $(STAMP)  ## stop embedded Postgres/Redis left by a crashed process
	$(BIN)/python -m csai.embedded stop

clean:
	rm -rf $(VENV) var
