# MedViz — two commands do all set-up on a fresh clone:
#   make run    create .venv, install, start the app on the embedded default data
#   make test   same set-up, then lint + the whole test suite
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# The stamp names a hash of every file the install reads: a change to any of them reinstalls.
SETUP_FILES := requirements.txt requirements-dev.txt pyproject.toml
STAMP := $(VENV)/.installed-$(shell cat $(SETUP_FILES) | md5sum | cut -c1-8)
PORT ?= 8501
export PYTHONPATH := $(CURDIR)
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: setup run test lint format e2e bench models soak clean

# requirements-dev.txt: the pinned runtime (requirements.txt) + test, lint, build and browser
# tools; then MedViz itself, editable, so .venv/bin/medviz exists (built with the pinned
# setuptools, no download).
$(STAMP): $(SETUP_FILES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(VENV)/bin/streamlit run app.py --server.port $(PORT) --server.headless true \
		--browser.gatherUsageStats false

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: setup lint
	@bash scripts/ensure_chromium.sh || true
	$(PY) -m pytest -n 2 --dist loadfile

bench: setup
	$(PY) -m bench

models: setup
	$(PY) -m tools.make_models

soak: setup
	MEDVIZ_SOAK_SECONDS=$${MEDVIZ_SOAK_SECONDS:-120} $(PY) -m pytest tests/e2e -m soak -p no:cacheprovider

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache runs test-artifacts medviz.egg-info build
