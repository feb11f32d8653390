# Every target creates .venv when it is missing and installs what it needs into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint clean help

help:
	@echo "make demo   run the demo (examples/quickstart.py)"
	@echo "make test   ruff, mypy --strict src, and the test suite"
	@echo "make bench  the benchmarks, printed as ratios against their baselines"
	@echo "make lint   ruff and mypy only"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "llmcache needs Python >= 3.10")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml tests/plugins/llmcache-test-plugins/pyproject.toml
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q -e ./tests/plugins/llmcache-test-plugins
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/quickstart.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy --strict src

test: lint
	$(BIN)/pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/pytest benchmarks --benchmark-enable --benchmark-only -q -p no:cacheprovider \
		--benchmark-columns=min,median,mean,ops --benchmark-sort=name

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .benchmarks
