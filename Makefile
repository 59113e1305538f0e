# One virtual environment in .venv, made on first use and refreshed when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV)/bin)
STAMP := $(VENV)/.installed

.PHONY: setup constraints study test lint ui bench envs wheelhouse

# The tested versions for this Python (constraints/pyX.Y.txt); without such a file, pyproject's
# floors and a notice.
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
CONSTRAINTS := constraints/py$(PYVER).txt
TESTED := $(wildcard $(CONSTRAINTS))

$(STAMP): pyproject.toml $(TESTED)
	$(PYTHON) -m venv $(VENV)
	$(if $(TESTED),,@echo "no $(CONSTRAINTS): installing pyproject's floors, versions not tested here")
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' $(if $(TESTED),-c $(TESTED))
	touch $(STAMP)

setup: $(STAMP)

# Freeze the virtualenv (after a passing `make test`) as this Python's tested versions. torch's
# CUDA wheels (nvidia-*, not the gpu extra's nvidia-ml-py) follow torch's own pins; local
# version labels (+cpu) are dropped.
constraints: setup
	printf '%s\n' "# Tested versions for Python $(PYVER) ($$(uname -s) $$(uname -m), $$(date +%F)): what \`make setup\`" \
	    "# installs; pyproject.toml's floors say what the code needs. Regenerate: \`make constraints\`." > $(CONSTRAINTS).tmp
	$(BIN)/pip freeze --exclude-editable \
	    | awk '!/^(-e |cuda-|triton==)/ && (!/^nvidia-/ || /^nvidia-ml-py==/)' \
	    | sed 's/+.*//' >> $(CONSTRAINTS).tmp
	mv $(CONSTRAINTS).tmp $(CONSTRAINTS)

# The whole study (MLproject's main entry point) on the embedded phantom cohort.
study: setup
	PATH="$(BIN):$$PATH" $(BIN)/mlflow run . --env-manager local

# Lint, then the test suite in two processes of one torch thread each (conftest.py), each file's
# tests on one worker (module fixtures built once), the longest files first (conftest.py). On
# 2026-12-04 from two fresh clones: 465 passed in 7.7 and 7.2 min of pytest time (8.9-9.7 min
# with the install), ResNet-18 speed line 312-383 img/s (in this checkout at the day's start:
# 8.3 min, 280-343). The same tests took 11.3 min at 152-157 img/s on 2026-12-03: the figure
# moves with the VM. 2026-12-07, fresh clone: 492 passed in 9.0 min at 137-164 img/s (the
# day's study runs; the tiny profiles' two-sample test cut from 10.8 min that day); later that
# day, quiet, fresh clones: 499 passed in 9.6 min (215 img/s after the suite), 8.5 min (300
# img/s) and 7.0 min (334 img/s, within the reference machine's 312-383): the same tests, the
# VM's speed is most of the difference. Slowest: the Ray-then-serial tiny study, 150-181 s beside
# the other worker (93 s alone): the suite is CPU-bound on 2 cores.
test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder  # conftest: longest first

# The MLflow UI on the project's store: http://127.0.0.1:5000
ui: setup
	$(BIN)/mlflow ui --backend-store-uri "sqlite:///$(abspath mlflow.db)"

# Every wheel the suite needs on Linux x86-64 (Python 3.11, the fid and gpu extras) except
# torch and torchvision, which a GPU host brings in its own CUDA build: README, "Offline GPU host".
wheelhouse: setup
	$(BIN)/python -m glioma.packaging wheelhouse wheelhouse fid,gpu

# MLproject's environment (python_env.yaml) and conda users' (conda.yaml), written from
# pyproject's dependencies (tests/test_packaging.py fails when they differ from what this writes).
envs: pyproject.toml $(STAMP)
	$(BIN)/python -m glioma.packaging

bench: setup
	$(BIN)/python benchmarks/bench_prepare.py
	$(BIN)/python benchmarks/bench_ddpm.py
	$(BIN)/python benchmarks/bench_scoring.py
	PATH="$(BIN):$$PATH" $(BIN)/python benchmarks/bench_cls.py
	$(BIN)/python benchmarks/bench_parallel.py
