# The two commands of the README's quick start:
#   make run   - set everything up and run the gateway (SQLite, built-in simulators, a demo tenant)
#   make test  - set everything up and run lint, type checks and the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# `make run PORT=8001` (and HOST=0.0.0.0) to serve elsewhere than 127.0.0.1:8000.
PORT ?= 8000
HOST ?= 127.0.0.1

run: $(STAMP)
	FISCALGATE_ALLOW_PRIVATE_URLS=1 $(BIN)/fiscalgate serve --demo --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/authority_roundtrip.py
	$(BIN)/python benchmarks/gateway_throughput.py
	$(BIN)/python benchmarks/render_pdf.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
