# CNN Lab — two commands on a fresh machine: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
ADDRESS ?= 127.0.0.1
PYTEST_ARGS ?=

.PHONY: run dev test test-fast lint format bench demo-model worker clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt requirements-ray.txt
	$(PY) -m pip install -q -r requirements-test.txt -r requirements-ray.txt
	touch $@

run: $(VENV)/.installed  ## start the app on http://$(ADDRESS):$(PORT)
	$(PY) -m ui.serve --server.address $(ADDRESS) --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

dev: $(VENV)/.installed  ## `make run` that reloads on saved edits to app.py, pages/, ui/, cnn_core/
	$(PY) -m streamlit run app.py --server.address $(ADDRESS) --server.port $(PORT) --server.fileWatcherType auto --server.runOnSave true

test: $(VENV)/.installed-test  ## lint, layers, types, then the whole test suite (browser and Ray tests included)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) -m mypy
	$(PY) -m pytest $(PYTEST_ARGS); status=$$?; \
	  if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing"; fi; exit $$status

test-fast: $(VENV)/.installed-test  ## the quick subset for development
	$(PY) -m pytest -m "not slow and not e2e and not ray" $(PYTEST_ARGS)

lint: $(VENV)/.installed-test  ## ruff, the import layers and mypy
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m mypy

format: $(VENV)/.installed-test
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: $(VENV)/.installed  ## side-by-side pipeline benchmark (benchmarks/README.md)
	$(PY) -m benchmarks

demo-model: $(VENV)/.installed  ## rebuild the shipped demo digits model
	$(PY) -m cnn_core demo-model

worker: $(VENV)/.installed
	$(PY) -m cnn_core worker

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .cache
