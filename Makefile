# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install speedups bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Recompiles the detector modules whose source changed (Cython, setup.py); a module
# that cannot be compiled stays pure Python. Quick when nothing changed.
speedups: $(STAMP)
	$(BIN)/python setup.py --quiet build_ext --inplace

demo: speedups
	$(BIN)/stemwatch demo --db data/demo.db

test: speedups
	$(BIN)/python -m pytest

bench: speedups
	$(BIN)/python benchmarks/detect.py
	$(BIN)/python benchmarks/crawl.py

clean:
	rm -rf $(VENV) data/*.db data/*.db-wal data/*.db-shm .pytest_cache build analysis/*.so analysis/*.c analysis/_compiled.json
