# Every target sets up its own virtual environment first, so a fresh clone needs
# only `make demo` or `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.ready

.PHONY: setup demo test lint bench clean notebooks

$(READY): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(READY)

setup: $(READY)

demo: $(READY)
	$(PY) -m rtkit demo

# ruff over all the code; mypy over rtkit/ (its settings are in pyproject.toml)
lint: $(READY)
	$(PY) -m ruff check rtkit tests benchmarks
	$(PY) -m mypy

# the unit tests, the browser test (tests/test_browser.py) and every notebook re-run and
# compared cell by cell with its stored outputs (strict nbval, in the project's venv)
test: lint
	$(PY) -m pytest --nbval --nbval-current-env tests notebooks

# re-run the notebooks and store their outputs, after changing one
notebooks: $(READY)
	$(PY) -m nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.store_widget_state=False notebooks/*.ipynb

bench: $(READY)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache *.egg-info
