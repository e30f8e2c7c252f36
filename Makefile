# Two entry points, both from a fresh clone: `make demo` and `make test`.
# Each creates the virtual environment on first use; nothing is done by hand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check

.PHONY: install demo test clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("curate needs Python >= 3.11, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -e '.[dev]'
	touch $@

install: $(STAMP)

## The main job on built-in demo data: generate it, then build the balanced-500 and the full
## manifests (same official val/test) and print their ids.
demo: $(STAMP)
	$(BIN)/curate demo demo_data --overwrite
	$(BIN)/curate run recipes/demo.yaml recipes/demo_full.yaml

## The whole test suite.
test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) demo_data demo_exports .curate .pytest_cache
