# Two commands do all the set-up: `make run` (the main job) and `make test` (lint + the test suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast bench clean

# The main job: sweep every documented case on the quick profile (ablation over one seed + 6 Optuna trials),
# then print the ranking of the factors that fixed each case (what `overfit rank` prints afterwards).
run: $(STAMP)
	$(BIN)/overfit sweep --all --seeds 1 --trials 6 --rank

# Two workers overlap the slow tests' start-ups (Ray, MLflow servers, processes importing) with other tests' work.
# loadscope keeps a module's functions, or a class's methods, on one worker: the main job's sweep runs once. The
# workers take them in collection order, which tests/conftest.py makes longest first.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadscope --no-loadscope-reorder

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

bench: $(STAMP)
	$(BIN)/python bench/trial_speed.py
	$(BIN)/python bench/sweep_efficiency.py
	$(BIN)/python bench/pruning.py

# torch first and pinned to 2.13.0 when missing: a range lets pip pick a CUDA build of several GB.
# Byte-compiled on every core afterwards rather than by pip, one file at a time (half the install on 2 cores); the
# bytecode must be written at install: with PYTHONDONTWRITEBYTECODE set, imports would compile every module anew in
# every process. A file that does not compile under this Python (torch ships one written for 3.12) fails at import
# as it would anyway, so compileall's status is not the install's.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet --no-compile "torch==2.13.0"
	$(BIN)/python -m pip install --quiet --no-compile -e ".[test,ui]"
	$(BIN)/python -m compileall -qq -j 0 $(VENV)/lib || true
	touch $(STAMP)

clean:
	rm -rf $(VENV) mlflow.db mlflow.db.lock mlruns optuna.log optuna.log.flock .optuna.log.*.lock overfit-results \
		notebook-artifacts .pytest_cache .ruff_cache
