# polis-like task runner: `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
VENDOR_UPLOT ?= 1.6.32
VENDOR_AXE   ?= 4.11.0

.PHONY: help install run lint test vendor translations bench-fidelity bench-scale bench-latency bench-load bench-faults bench-streams clean

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

bench-fidelity: $(STAMP) ## Compare our results with Pol.is's own math on every shared conversation
	$(BIN)/python benchmarks/fidelity.py

bench-scale: $(STAMP) ## Time and measure the math on synthetic conversations (slow)
	$(BIN)/python benchmarks/scale.py

bench-load: $(STAMP) ## Many participants voting at once over HTTP, SQLite and PostgreSQL (slow)
	$(BIN)/python benchmarks/load.py

bench-streams: $(STAMP) ## Votes beside 1,000 event streams and 100 slow-header clients, PostgreSQL (slow)
	$(BIN)/python benchmarks/streams.py

bench-latency: $(STAMP) ## Time from a vote to its results event, SQLite and PostgreSQL (slow)
	$(BIN)/python benchmarks/latency.py

bench-faults: $(STAMP) ## Faults under load: worker killed, PostgreSQL restarted, 2+2 processes, full disk
	$(BIN)/python benchmarks/faults.py

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .import_linter_cache .grimp_cache build *.egg-info

vendor: ## Refresh the vendored front-end files from the npm registry (pinned above)
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	cd "$$tmp" && npm pack --silent uplot@$(VENDOR_UPLOT) axe-core@$(VENDOR_AXE) >/dev/null; \
	tar xzf uplot-$(VENDOR_UPLOT).tgz; mv package uplot; \
	tar xzf axe-core-$(VENDOR_AXE).tgz; mv package axe; \
	cd "$(CURDIR)"; \
	mkdir -p static/vendor/uplot tests/vendor/axe-core; \
	cp "$$tmp/uplot/dist/uPlot.esm.js" "$$tmp/uplot/dist/uPlot.min.css" "$$tmp/uplot/LICENSE" static/vendor/uplot/; \
	cp "$$tmp/axe/axe.min.js" "$$tmp/axe/LICENSE" tests/vendor/axe-core/; \
	printf 'uPlot %s from the npm registry (MIT, see LICENSE); `make vendor` refreshes it.\n' $(VENDOR_UPLOT) > static/vendor/uplot/VERSION; \
	printf 'axe-core %s from the npm registry (MPL-2.0, see LICENSE); used by the browser tests only.\n' $(VENDOR_AXE) > tests/vendor/axe-core/VERSION; \
	echo "vendored uPlot $(VENDOR_UPLOT) and axe-core $(VENDOR_AXE)"

translations: $(STAMP) ## Extract the pages' strings, update each catalogue, compile them
	$(BIN)/pybabel extract -F babel.cfg -k _ -k gettext -k ngettext:1,2 --no-location \
		--sort-output --project polis-like -o server/translations/messages.pot .
	$(BIN)/pybabel update -i server/translations/messages.pot -d server/translations --no-fuzzy-matching \
		--ignore-obsolete
	$(BIN)/pybabel compile -d server/translations
