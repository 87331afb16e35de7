# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pywb, the replay tool the evidence tests read bundles with, lives in its own
# environment: its pins (redis 2, cryptography 47) are not the project's.
PYWB := $(VENV)/pywb/bin/wayback

.PHONY: demo test install bench eval train clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

$(PYWB):
	$(PYTHON) -m venv $(VENV)/pywb
	$(VENV)/pywb/bin/pip install --quiet 'pywb>=2.8'

install: $(STAMP) $(PYWB)

demo: $(STAMP)
	$(BIN)/stemwatch demo --db data/demo.db

test: $(STAMP) $(PYWB)
	STEMWATCH_PYWB=$(CURDIR)/$(PYWB) $(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/detect.py
	$(BIN)/python benchmarks/detect_stages.py
	$(BIN)/python benchmarks/hostile.py
	$(BIN)/python benchmarks/crawl.py
	$(BIN)/python benchmarks/render.py

# Rebuilds the shipped model (data/model/) from the corpus: fixed seeds, same corpus, same model.
train: $(STAMP)
	$(BIN)/stemwatch train data/corpus/passages.jsonl --seed 0

# Scores on the real-page corpus by site (the model trained on the other folds), then the
# rules alone on every invented set in data/eval/ (test material, not a measure).
eval: $(STAMP)
	$(BIN)/stemwatch eval data/corpus/passages.jsonl --cv-by-domain 5 --seed 0
	for f in data/eval/*.jsonl; do $(BIN)/stemwatch eval $$f --rules-only || exit 1; done

clean:
	rm -rf $(VENV) data/*.db data/*.db-wal data/*.db-shm .pytest_cache
