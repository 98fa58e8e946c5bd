# Two commands on a fresh machine: `make run` and `make test`. Both create .venv and install into it first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
LOCK := requirements.lock
# Real MNIST offline: use ../shared/data when it exists and REGBENCH_DATA_DIR is not set already.
export REGBENCH_DATA_DIR ?= $(abspath $(wildcard ../shared/data))

.PHONY: install lock run test test-fast smoke lint bench same-results clean

# The exact versions of requirements.lock (those the tests passed with); pyproject.toml's ranges stay open.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lock:  ## on purpose: resolve pyproject.toml's ranges anew in a fresh venv into requirements.lock; then make test
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet -e '.[dev]'
	(grep '^#' $(LOCK); .lock-venv/bin/pip freeze --exclude-editable) > $(LOCK).new && mv $(LOCK).new $(LOCK)
	rm -rf .lock-venv

run: install  ## the seed study: baseline vs Dropout(0.3), 3 seeds, on MNIST (fused, on JAX: the fastest path here)
	$(BIN)/regbench run configs/dropout.yaml

test: install  ## every test: unit, CLI, subprocess, browser and the real-MNIST smoke run
	$(BIN)/python -m pytest -q

test-fast: install  ## the edit-test loop: tests that take seconds (no subprocess, browser or slow tests)
	$(BIN)/python -m pytest -q -m "not slow and not subprocess and not browser"

smoke: install  ## seconds: a tiny subset, 2 epochs
	$(BIN)/regbench run configs/smoke.yaml

lint: install
	$(BIN)/ruff check regbench tests bench

clean:
	rm -rf $(VENV) .lock-venv .pytest_cache .ruff_cache *.egg-info

bench: install  ## regbench vs the plain Keras script on the seed study and a 48-run sweep, then 8 fused vs 1 alone
	$(BIN)/python bench/bench.py --out bench/results.md
	$(BIN)/python bench/bench.py --study sweep --out bench/results_sweep.md
	$(BIN)/python bench/fused.py
