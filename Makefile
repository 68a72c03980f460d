# Two entry points for a newcomer: `make app` (chat on seeds/) and `make test` (the whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
CORPUS ?= seeds

.PHONY: install app index test lint report bench screenshots chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first: the CPU wheel (any other torch spec pulls a multi-GB CUDA build)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
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

# tests/test_browser.py drives Debian's chromium through Playwright (which downloads no browser).
chromium:
	@[ -x /usr/bin/chromium ] || { \
	    if [ "$$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo -n"; fi; \
	    $$sudo apt-get update -q && \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

test: lint chromium
	$(BIN)/pytest

# Regenerate docs/EVALUATION.md (needs ../shared/datasets; the first run builds the BBC and SQuAD indexes)
report: install
	$(BIN)/rag report

# Regenerate docs/BENCHMARKS.md: all BBC articles embedded by us and by each peer, and the scale table to 1M passages (long)
bench: install
	$(BIN)/rag bench

# Regenerate docs/screenshots/{chat,evaluation}.png with the app in headless Chromium (needs /usr/bin/chromium)
screenshots: install chromium
	$(BIN)/python -m scripts.screenshots --corpus $(CORPUS)
