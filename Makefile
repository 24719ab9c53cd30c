# Two commands on a fresh machine with python3 and make: `make demo`, `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch lies on local disk; installing it first keeps
	# sentence-transformers from pulling a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev,cluster]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python tools/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check soma soma_mcp soma_agent tui prompts tests tools
	$(BIN)/ruff format --check soma soma_mcp soma_agent tui prompts tests tools
	# The import contracts of pyproject.toml [tool.importlinter] (layering, no cycles in soma).
	$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	# somatize 1.0.1, the earlier Soma, is a peer in the runtime benchmark (needs PyPI once).
	$(BIN)/pip install -q -e ".[bench]"
	@for f in tools/bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .soma demo
