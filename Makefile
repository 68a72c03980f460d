# Two entry points for a newcomer: `make app` (chat on seeds/) and `make test` (the whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
CORPUS ?= seeds

.PHONY: install app index test lint report

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first: the CPU wheel (any other torch spec pulls a multi-GB CUDA build)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

index: install
	$(BIN)/rag index --corpus $(CORPUS)

app: index
	RAG_CORPUS=$(CORPUS) $(BIN)/streamlit run app.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# Regenerate docs/EVALUATION.md (needs ../shared/datasets; the first run builds the BBC and SQuAD indexes)
report: install
	$(BIN)/rag report
