# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install bench eval clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/stemwatch demo --db data/demo.db

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/detect.py
	$(BIN)/python benchmarks/detect_stages.py
	$(BIN)/python benchmarks/hostile.py
	$(BIN)/python benchmarks/crawl.py

# Scores the detector on the real-page corpus, then on every invented set in data/eval/.
eval: $(STAMP)
	for f in data/corpus/passages.jsonl data/eval/*.jsonl; do $(BIN)/stemwatch eval $$f || exit 1; done

clean:
	rm -rf $(VENV) data/*.db data/*.db-wal data/*.db-shm .pytest_cache
