# Two commands on a fresh machine: `make lab` and `make test`.
# Both create .venv when it is missing and reinstall only when pyproject.toml changed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LAB_STAMP  := $(VENV)/.stamp-lab
TEST_STAMP := $(VENV)/.stamp-test

LESSONS   := $(wildcard notebooks/[0-9][0-9]-*.ipynb)
EXERCISES := $(wildcard notebooks/exercises/source/*/*.ipynb)
LINTED    := wslab tests $(wildcard benchmarks) $(wildcard scripts)

.PHONY: help lab test test-unit test-lessons test-exercises lint bench html clean

help:
	@echo "make lab    - set up .venv and open JupyterLab on notebooks/ (localhost only)"
	@echo "make test   - set up .venv with the test extras and run the whole suite"
	@echo "make lint   - ruff and mypy only"
	@echo "make bench  - benchmarks against the websockets library, Node's ws and raw TCP"
	@echo "make html   - render the lessons to static HTML in build/html/"
	@echo "make clean  - remove .venv and caches"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "wslab needs Python 3.11 or newer: run make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(LAB_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@ $(LAB_STAMP)

# JupyterLab refuses to start as root unless told; containers often run as root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(LAB_STAMP)
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=notebooks $(ALLOW_ROOT)

test: lint test-unit test-lessons test-exercises

lint: $(TEST_STAMP)
	$(BIN)/python -m ruff check $(LINTED)
	$(BIN)/python -m ruff format --check $(LINTED)
	$(BIN)/python -m mypy

test-unit: $(TEST_STAMP)
	$(BIN)/python -m pytest tests

# Strict nbval: the committed outputs of every lesson are what re-running produces.
test-lessons: $(TEST_STAMP)
ifneq ($(LESSONS),)
	$(BIN)/python -m pytest -p no:cacheprovider --nbval --nbval-sanitize-with notebooks/nbval-sanitize.cfg $(LESSONS)
endif

# Lax nbval: the exercise sources (with solutions) run top to bottom without errors.
test-exercises: $(TEST_STAMP)
ifneq ($(EXERCISES),)
	$(BIN)/python -m pytest -p no:cacheprovider --nbval-lax $(EXERCISES)
endif

bench: $(TEST_STAMP)
	$(BIN)/python benchmarks/run.py

html: $(TEST_STAMP)
	$(BIN)/python scripts/render_html.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build
