# keyturn: two commands matter.
#   make serve   install keyturn into .venv and start the server on SQLite
#   make test    install test dependencies and services, lint, type-check, run every test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_WORKERS ?= 2

.PHONY: serve test lint typecheck docs pytest services interop-deps bench clean

serve: $(VENV)/.installed-runtime
	$(BIN)/keyturn serve

test: $(VENV)/.installed-dev services interop-deps lint typecheck docs pytest

$(VENV)/bin/python:
	./scripts/make-venv.sh $(PYTHON) $(VENV)

$(VENV)/.installed-runtime: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $@

# The bench extra too: mypy checks keyturn.bench's plotting, and tests/bench plots;
# and the examples extra: tests/examples and tests/browser run the examples.
$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,postgres,redis,bench,examples]'
	touch $@ $(VENV)/.installed-runtime $(VENV)/.installed-examples

# keyturn and what the examples need besides (the examples extra).
$(VENV)/.installed-examples: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[examples]'
	touch $@ $(VENV)/.installed-runtime

services:
	./scripts/install-test-services.sh

# node clients of the interop tests (openid-client, oidc-client-ts: tests/interop/node)
interop-deps:
	./scripts/install-node-deps.sh

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks examples docs/hooks
	$(BIN)/ruff format --check src tests benchmarks examples docs/hooks

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# The documentation site (mkdocs.yml); the CLI and HTTP reference are generated
# during the build (docs/hooks/reference.py). Output in site/ (git-ignored).
docs: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

pytest: $(VENV)/.installed-dev
	$(BIN)/pytest -n $(PYTEST_WORKERS) -p no:cacheprovider -ra

$(VENV)/.installed-bench: pyproject.toml | $(VENV)/.installed-dev
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,postgres,redis,bench]'
	touch $@

# Every benchmark, one after another; printed as: the machine, every target with its
# ratio and PASS/MISS, then each script's tables (benchmarks/bench_all.py).
# BENCH_SOAK_SECONDS=3600 for the long soak; BENCH_STRICT=--strict to fail on a MISS.
BENCH_SOAK_SECONDS ?= 120
BENCH_STRICT ?=
bench: $(VENV)/.installed-dev $(VENV)/.installed-bench
	./scripts/install-bench-tools.sh
	$(BIN)/python benchmarks/bench_all.py $(BENCH_STRICT) \
		claim.py \
		workers.py \
		"token_endpoint.py --profile" \
		"soak.py --duration $(BENCH_SOAK_SECONDS)" \
		passwords.py \
		sessions.py \
		tokens.py \
		dpop_proof.py \
		dpop_whoami.py \
		code_flow.py

# The examples (examples/README.md), each in its own terminal.
NOTES_PORT   ?= 8000
REPORTS_PORT ?= 8001
NOTES_DATA   ?= notes-data
.PHONY: example-notes example-notes-client example-reports example-reports-strict

example-notes: $(VENV)/.installed-examples
	$(BIN)/python -m examples.notes --port $(NOTES_PORT) --data-dir $(NOTES_DATA)

example-notes-client: $(VENV)/.installed-examples
	$(BIN)/python -m examples.notes.client --url http://127.0.0.1:$(NOTES_PORT) --register

example-reports: $(VENV)/.installed-examples
	$(BIN)/python -m examples.reports --port $(REPORTS_PORT) --issuer http://127.0.0.1:$(NOTES_PORT)

example-reports-strict: $(VENV)/.installed-examples
	$(BIN)/python -m examples.reports.register_client --data-dir $(NOTES_DATA) \
		--reports-url http://127.0.0.1:$(REPORTS_PORT)
	$(BIN)/python -m examples.reports --port $(REPORTS_PORT) --issuer http://127.0.0.1:$(NOTES_PORT) \
		--client-file $(NOTES_DATA)/reports-client.json

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
