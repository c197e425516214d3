# keyturn: two commands matter.
#   make serve   install keyturn into .venv and start the server on SQLite
#   make test    install test dependencies and services, lint, type-check, run every test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_WORKERS ?= 2

.PHONY: serve test lint typecheck pytest services bench clean

serve: $(VENV)/.installed-runtime
	$(BIN)/keyturn serve

test: $(VENV)/.installed-dev services lint typecheck pytest

$(VENV)/bin/python:
	./scripts/make-venv.sh $(PYTHON) $(VENV)

$(VENV)/.installed-runtime: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,postgres,redis]'
	touch $@ $(VENV)/.installed-runtime

services:
	./scripts/install-test-services.sh

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

pytest: $(VENV)/.installed-dev
	$(BIN)/pytest -n $(PYTEST_WORKERS) -p no:cacheprovider -ra

bench: $(VENV)/.installed-dev
	./scripts/install-bench-tools.sh
	$(BIN)/python benchmarks/passwords.py
	$(BIN)/python benchmarks/sessions.py
	$(BIN)/python benchmarks/tokens.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
