# polis-like task runner: `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run lint test bench-fidelity bench-scale bench-latency clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e . --group dev
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install polis-like with its dev tools

HOST ?= 127.0.0.1
PORT ?= 8000
run: $(STAMP) ## Install, migrate SQLite in var/, import the demo, serve it on HOST:PORT with a worker
	POLIS_LIKE_INSTANCE="$(CURDIR)/var" $(BIN)/polis-like run --host $(HOST) --port $(PORT)

lint: $(STAMP) ## Check style, formatting, types and import layers (all four; fails if any fails)
	@status=0; \
	$(BIN)/ruff check . || status=1; \
	$(BIN)/ruff format --check . || status=1; \
	$(BIN)/mypy polis_like || status=1; \
	$(BIN)/lint-imports || status=1; \
	exit $$status

test: $(STAMP) ## Install, then run the whole test suite
	$(BIN)/python -m pytest

bench-fidelity: $(STAMP) ## Compare our groups with Pol.is's on every shared conversation
	$(BIN)/python benchmarks/fidelity.py

bench-scale: $(STAMP) ## Time and measure the math on synthetic conversations (slow)
	$(BIN)/python benchmarks/scale.py

bench-latency: $(STAMP) ## Time from a vote to its results event, SQLite and PostgreSQL (slow)
	$(BIN)/python benchmarks/latency.py

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .import_linter_cache .grimp_cache build *.egg-info
