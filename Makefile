# Every target sets up its own virtual environment first, so a fresh clone needs
# only `make demo` or `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.ready

.PHONY: setup demo test lint bench clean

$(READY): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(READY)

setup: $(READY)

demo: $(READY)
	$(PY) -m rtkit demo

lint: $(READY)
	$(PY) -m ruff check rtkit tests benchmarks

test: lint
	$(PY) -m pytest

bench: $(READY)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
