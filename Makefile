# CNN Lab — two commands on a fresh machine: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
ADDRESS ?= 127.0.0.1
PYTEST_ARGS ?=
# make test writes its 25 slowest test phases here: the baseline the next run compares with
DURATIONS ?= .durations.txt
COVERAGE := --cov=cnn_core --cov=ui --cov=pages --cov-branch
# make test runs the unit tests on this many pytest-xdist workers (0: in one process), then the
# browser and Ray tests one at a time
WORKERS ?= 2

.PHONY: run dev test test-fast coverage mutation lint format bench demo-model worker clean

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

test: $(VENV)/.installed-test  ## lint, layers, types, then the whole test suite (unit tests in parallel, then browser and Ray tests)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) -m mypy
	$(PY) -m pytest -n $(WORKERS) -m "not e2e and not ray" --durations-file $(DURATIONS).unit \
	  $(PYTEST_ARGS); unit=$$?; \
	$(PY) -m pytest -m "e2e or ray" --durations-file $(DURATIONS).serial $(PYTEST_ARGS); serial=$$?; \
	cat $(DURATIONS).unit $(DURATIONS).serial 2>/dev/null | sort -rn | head -25 > $(DURATIONS); \
	rm -f $(DURATIONS).unit $(DURATIONS).serial; \
	if [ $$unit -eq 5 ] && [ $$serial -eq 5 ]; then echo "pytest collected no tests: failing"; exit 5; fi; \
	for status in $$unit $$serial; do \
	  if [ $$status -ne 0 ] && [ $$status -ne 5 ]; then exit $$status; fi; \
	done

# the test files holding tests marked fast (collecting only these spares the other modules' imports)
FAST_FILES = $(shell grep -l "mark\.fast" tests/*.py)

test-fast: $(VENV)/.installed-test  ## the inner loop (marker fast, under a minute): trainer, store, config, CLI, pages
	$(PY) -m pytest -m fast $(FAST_FILES) $(PYTEST_ARGS)

coverage: $(VENV)/.installed-test  ## make test with branch coverage of cnn_core, ui and pages (coverage.json; the last report is the whole suite's)
	rm -f .coverage coverage.json
	$(MAKE) test PYTEST_ARGS="$(COVERAGE) --cov-append --cov-report=term --cov-report=json:coverage.json $(PYTEST_ARGS)"

mutation: $(VENV)/.installed-test  ## mutation score of schedule, stats and concepts/convolution ([tool.mutmut])
	rm -rf mutants
	$(VENV)/bin/mutmut run
	$(VENV)/bin/mutmut results

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
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .cache mutants .coverage coverage.json $(DURATIONS)
