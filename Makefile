# Two commands on a fresh machine: `make lab` and `make test`.
#
# Two environments, so that a student's JupyterLab never shows instructor tools:
#   .venv-lab/  `make lab`: wslab and JupyterLab, nothing else;
#   .venv/      `make test`, `make bench`, `make html`, instructors: the test extras,
#               nbgrader among them (its menus appear in any JupyterLab run from here).
# Each is created when missing and updated only when pyproject.toml changed.
#
# Installs use uv when it can be had (about 2 s from its cache, against 30-40 s for
# pip): the uv on PATH, else the one already in either venv, else one that pip puts
# into the new venv. Without uv (no network for it, say), plain pip does the same.

PYTHON ?= python3
# What pip installs to bootstrap uv (a version pin, or a name that fails to try the pip path).
UV_REQUIREMENT ?= uv
VENV     := .venv
LAB_VENV := .venv-lab
BIN      := $(VENV)/bin
LAB_BIN  := $(LAB_VENV)/bin
TEST_STAMP  := $(VENV)/.stamp-test
BENCH_STAMP := $(VENV)/.stamp-bench
LAB_STAMP   := $(LAB_VENV)/.stamp-lab
# The student's working copy of the lessons (git-ignored; see notebooks/README.md).
WORK := my-work
# Extra arguments for `jupyter lab`, e.g. make lab ARGS="--port=9000 my-work/05-chat-app.ipynb".
ARGS ?=

LESSONS   := $(wildcard notebooks/[0-9][0-9]-*.ipynb)
EXERCISES := $(wildcard notebooks/exercises/source/*/*.ipynb)
LINTED    := wslab tests $(wildcard benchmarks) $(wildcard scripts)
# pytest-xdist workers: most tests wait on sockets, kernels and browsers, so two workers
# halve the suite on a 2-core machine. A module's tests stay in one worker (loadfile),
# so its fixtures (a JupyterHub, a JupyterLab, a built site) start once.
WORKERS ?= 2
PYTEST  := $(BIN)/python -m pytest -p no:cacheprovider -n $(WORKERS) --dist loadfile

# npm (tests/hub, tests/interop, the site's widget manager): reuse ~/.npm without asking
# the registry again for what it already holds; a fresh clone then installs in a second.
export npm_config_prefer_offline := true

.PHONY: help lab lab-instructor test test-unit test-lessons test-exercises lint bench html clean

help:
	@echo "make lab             - open JupyterLab on my-work/, your copy of the lessons (localhost only)"
	@echo "make lab ARGS=...    - the same with options for jupyter lab, e.g. ARGS=\"--port=9000 my-work/05-chat-app.ipynb\""
	@echo "make lab-instructor  - JupyterLab with nbgrader on notebooks/exercises/ (the .venv test environment)"
	@echo "make test            - set up .venv with the test extras and run the whole suite"
	@echo "make lint            - ruff and mypy only"
	@echo "make bench           - benchmarks against the websockets library, Node's ws and raw TCP"
	@echo "make html            - the course as a static site in build/html/ that works offline"
	@echo "make clean           - remove both venvs, build/ and caches (my-work/ stays)"

# A one-line error instead of a traceback from a too old Python.
CHECK_PYTHON := import sys; sys.exit(0 if sys.version_info >= (3, 11) else \
	"wslab needs Python 3.11 or newer (found %d.%d): run make PYTHON=python3.11 ..." % sys.version_info[:2])

# $(call new-venv,DIR): a venv without pip (0.2 s; ensurepip takes 4 s), then uv into it
# with $(PYTHON)'s own pip unless a uv is already at hand. Failing that, ensurepip, so
# that the pip fallback of `install` has a pip.
define new-venv
	@$(PYTHON) -c '$(CHECK_PYTHON)'
	$(PYTHON) -m venv --without-pip $(1)
	@if [ -z "$(call find-uv)" ]; then \
	  $(PYTHON) -m pip --python $(1)/bin/python install --quiet '$(UV_REQUIREMENT)' 2>/dev/null \
	  || echo "uv is not available: installing with pip (slower)"; \
	fi
	@[ -x $(1)/bin/uv ] || [ -n "$(call find-uv)" ] || $(1)/bin/python -m ensurepip --upgrade --default-pip >/dev/null
endef

# The uv to use, found when a recipe runs (a venv made a moment ago may hold it).
find-uv = $$(command -v uv || ls $(CURDIR)/$(VENV)/bin/uv $(CURDIR)/$(LAB_VENV)/bin/uv 2>/dev/null | head -n 1)

# $(call install,DIR,REQUIREMENT): install into the venv DIR with uv, or with pip.
define install
	@uv="$(call find-uv)"; \
	if [ -n "$$uv" ]; then \
	  echo "uv pip install $(2)"; $$uv pip install --quiet --python $(1)/bin/python $(2); \
	else \
	  echo "pip install $(2)"; $(1)/bin/python -m pip install --quiet $(2); \
	fi
	@touch $@
endef

$(BIN)/python:
	$(call new-venv,$(VENV))

$(LAB_BIN)/python:
	$(call new-venv,$(LAB_VENV))

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(call install,$(VENV),-e '.[test]')

# In a variable: a comma written in $(call ...)'s arguments would split them.
BENCH_REQUIREMENT := -e '.[test,bench]'
$(BENCH_STAMP): $(TEST_STAMP)
	$(call install,$(VENV),$(BENCH_REQUIREMENT))

$(LAB_STAMP): pyproject.toml | $(LAB_BIN)/python
	$(call install,$(LAB_VENV),-e .)

# JupyterLab refuses to start as root unless told; containers often run as root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

# Students open the lessons from $(WORK), so that autosave never changes the course and
# `git pull` keeps working: new or updated course files are copied in, a file already
# there (the student's work) is never overwritten (wslab.lessons.working_copy).
lab: $(LAB_STAMP)
	@$(LAB_BIN)/python -m wslab.lessons notebooks $(WORK)
	$(LAB_BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=$(WORK) $(ALLOW_ROOT) $(ARGS)

# Editing and grading the exercises (docs/instructors.md): nbgrader's menus, in the course folder.
lab-instructor: $(TEST_STAMP)
	cd notebooks/exercises && ../../$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 $(ALLOW_ROOT) $(ARGS)

test: lint test-unit test-lessons test-exercises

lint: $(TEST_STAMP)
	$(BIN)/python -m ruff check $(LINTED)
	$(BIN)/python -m ruff format --check $(LINTED)
	$(BIN)/python -m mypy

test-unit: $(TEST_STAMP)
	$(PYTEST) tests

# Strict nbval, twice: the committed outputs of every lesson are what re-running produces,
# with the your-turn cells blank (as committed) and solved (copies in build/solved/ that
# scripts/execute_notebooks.py writes with the worked solutions; nothing else may change).
test-lessons: $(TEST_STAMP)
ifneq ($(LESSONS),)
	@rm -rf build/solved
	@$(BIN)/python scripts/execute_notebooks.py --solved build/solved $(LESSONS) >/dev/null
	$(PYTEST) --nbval --nbval-sanitize-with notebooks/nbval-sanitize.cfg $(LESSONS) build/solved/*.ipynb
endif

# Lax nbval: the exercise sources (with solutions) run top to bottom without errors.
test-exercises: $(TEST_STAMP)
ifneq ($(EXERCISES),)
	$(PYTEST) --nbval-lax $(EXERCISES)
endif

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/run.py $(ARGS)

html: $(TEST_STAMP)
	$(BIN)/python scripts/render_html.py

clean:
	rm -rf $(VENV) $(LAB_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build
