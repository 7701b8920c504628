# socialrec — run `make` for the list of targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))
# Tests and runs are offline: the sentence model ships inside a pip package.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
PYTEST_ARGS ?=

.PHONY: help setup run test test-full test-fast test-gpu bench bench-quality lint clean mlflow-ui docs

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  \033[36m%-12s\033[0m %s\n",$$1,$$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)

setup: $(PY) ## create .venv with the pinned packages, then try to resolve the Delta JVM jars
	$(PIP) install -c requirements/constraints.txt -e ".[dev]"
	@bash scripts/resolve_delta_jars.sh .jars

DATASET ?=
run: ## run the whole pipeline locally on the embedded synthetic data (or DATASET=ciao|ciaodvd|filmtrust|lastfm|amazon)
	$(PY) -m jobs.run_all $(if $(DATASET),--set data.dataset=$(DATASET))

test: ## run every test (unit, contract, integration incl. slow; GPU tests skip without CUDA)
	$(PY) -m pytest $(PYTEST_ARGS)

test-full: ## make test, plus the crash chain at every fail point and the shared datasets' accounting on whole files
	SOCIALREC_TEST_FULL=1 $(PY) -m pytest $(PYTEST_ARGS)

test-fast: ## tests without the slow marker
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-gpu: ## GPU tests only (need CUDA)
	$(PY) -m pytest -m gpu $(PYTEST_ARGS)

bench: ## benchmarks as one resumable run (python -m bench.all; bench/README.md): the 1M/3M/10M scale run, features vs DuckDB on its 10M lake, lake, ingest+clean vs DuckDB, embeddings, graph, training, recommend, then the summary. Stopped? make bench again resumes it; BENCH_ARGS=--fresh starts anew, BENCH_ARGS=--plan shows the state
	$(PY) -m bench.all $(BENCH_ARGS)

bench-quality: ## evaluation on the shared LastFM and Ciao datasets vs published figures, as one resumable run like make bench (long: see docs/evaluation.md)
	$(PY) -m bench.all --suite quality $(BENCH_ARGS)

MLFLOW_PORT ?= 5000
mlflow-ui: ## the MLflow UI on the local store (var/mlflow), http://127.0.0.1:$(MLFLOW_PORT)
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(abspath var/mlflow/mlflow.db) --default-artifact-root $(abspath var/mlflow/artifacts) --port $(MLFLOW_PORT)

docs: ## regenerate docs/contracts.md and docs/configuration.md from the code (python -m socialrec.docgen)
	$(PY) -m socialrec.docgen

lint: ## ruff + mypy on the library, and the secrets scanner on every file git would commit
	$(VENV)/bin/ruff check socialrec jobs tests bench scripts
	$(VENV)/bin/mypy socialrec
	$(PY) scripts/check_secrets.py

clean: ## remove outputs of runs and tests (keeps .venv and .jars)
	rm -rf var .pytest_cache .mypy_cache .ruff_cache .hypothesis spark-warehouse metastore_db derby.log
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
