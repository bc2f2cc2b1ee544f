# meshprint: `make demo` runs a local three-node mesh; `make test` runs the test suite.
# Both set up what they need first (Debian packages, the .venv virtual environment).

VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint unit integration bench clean

setup:
	@scripts/setup.sh

demo: setup
	$(PY) -m appliance.demo

test: setup
	$(VENV)/bin/ruff check appliance webui tests bench
	$(PY) -m pytest -q

unit: setup
	$(PY) -m pytest -q tests/unit

integration: setup
	$(PY) -m pytest -q tests/integration

lint: setup
	$(VENV)/bin/ruff check appliance webui tests bench
	$(VENV)/bin/ruff format --check appliance webui tests bench

bench: setup
	$(PY) bench/intake.py

clean:
	rm -rf $(VENV) .demo .pytest_cache
