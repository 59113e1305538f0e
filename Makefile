# One virtual environment in .venv, made on first use and refreshed when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV)/bin)
STAMP := $(VENV)/.installed

.PHONY: setup study test lint ui bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# The whole study (MLproject's main entry point) on the embedded phantom cohort.
study: setup
	PATH="$(BIN):$$PATH" $(BIN)/mlflow run . --env-manager local

# Lint, then the test suite.
test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

# The MLflow UI on the project's store: http://127.0.0.1:5000
ui: setup
	$(BIN)/mlflow ui --backend-store-uri "sqlite:///$(abspath mlflow.db)"

bench: setup
	$(BIN)/python benchmarks/bench_prepare.py
	$(BIN)/python benchmarks/bench_ddpm.py
	$(BIN)/python benchmarks/bench_scoring.py
	PATH="$(BIN):$$PATH" $(BIN)/python benchmarks/bench_cls.py
	$(BIN)/python benchmarks/bench_parallel.py
