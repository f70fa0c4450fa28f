# Every target sets up its own virtual environment first, so a fresh clone needs
# only `make demo` or `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.ready

# the project's notebooks: those git tracks (without git, the numbered ones), so that a
# user's own notebooks in notebooks/ (Untitled.ipynb, copies) are neither tested nor re-run
NOTEBOOKS ?= $(shell git ls-files 'notebooks/*.ipynb' 2>/dev/null || \
	ls notebooks/[0-9][0-9]_*.ipynb | grep -v -- '-Copy')
# without a display (a server, ssh, CI) JupyterLab opens no browser, only prints its URL
LAB_BROWSER := $(if $(DISPLAY)$(WAYLAND_DISPLAY),,--no-browser)
LAB_ARGS ?=

.PHONY: setup demo test lint bench clean notebooks lab

$(READY): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(READY)

setup: $(READY)

demo: $(READY)
	$(PY) -m rtkit demo

# JupyterLab on notebooks/ with rtkit's kernel (the venv's "Python 3"); open the URL it
# prints (http://localhost:8888/lab?token=...); Ctrl-C stops it
lab: $(READY)
	$(PY) -m jupyterlab --ServerApp.root_dir=notebooks $(LAB_BROWSER) $(LAB_ARGS)

# ruff over all the code; mypy over rtkit/ (its settings are in pyproject.toml)
lint: $(READY)
	$(PY) -m ruff check rtkit tests benchmarks
	$(PY) -m mypy

# the unit tests, the browser test (tests/test_browser.py) and the project's notebooks
# re-run and compared cell by cell with their stored outputs (strict nbval, in the
# project's venv)
test: lint
	$(PY) -m pytest --nbval --nbval-current-env tests $(NOTEBOOKS)

# re-run the notebooks and store their outputs, after changing one
notebooks: $(READY)
	$(PY) -m nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.store_widget_state=False $(NOTEBOOKS)

bench: $(READY)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache *.egg-info
