# Vigil: two commands for a new user — `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint fix bench demo clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## set up, load the demo plant into an empty workspace, start the app
	$(BIN)/python -m core demo --if-empty
	$(BIN)/python -m streamlit run app.py

test: $(STAMP)  ## set up, lint, then run the whole test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fix: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)  ## every benchmark; each prints its figures and ratios against a baseline
	for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

demo: $(STAMP)
	$(BIN)/python -m core demo

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
