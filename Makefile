# Two commands do everything: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run serve test lint bench setup engine images clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Berth needs Python 3.11 or newer"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test,dev]'
	@touch $(STAMP)

engine:
	@scripts/ensure-docker

images: engine
	@scripts/build-images

setup: $(STAMP) engine images

run: setup
	$(VENV)/bin/berth serve

serve: setup
	$(VENV)/bin/berth serve

test: setup
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check app tests bench
	$(VENV)/bin/ruff format --check app tests bench
	$(VENV)/bin/mypy app

bench: setup
	$(PY) bench/temp_run.py
	$(PY) bench/concurrent.py
	$(PY) bench/peers.py

clean:
	rm -rf $(VENV) build dist *.egg-info
