# meshprint: `make demo` runs a local three-node mesh; `make test` runs the checks of
# `make lint` (style, layers, types) and then the test suite.
# Both set up what they need first (Debian packages, the .venv virtual environment).

VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint unit integration bench soak clean image image-test provisioning-test

setup:
	@scripts/setup.sh

demo: setup
	$(PY) -m appliance.devtools.demo

test: setup lint
	$(PY) -m pytest -q

unit: setup
	$(PY) -m pytest -q tests/unit

integration: setup
	$(PY) -m pytest -q tests/integration

# Style, the layer rule (import-linter: docs/architecture.md "Dependencies"), then types
# (mypy). All configured in pyproject.toml; a few seconds together.
lint: setup
	$(VENV)/bin/ruff check appliance webui tests bench
	$(VENV)/bin/ruff format --check appliance webui tests bench
	$(VENV)/bin/lint-imports --no-logo
	$(VENV)/bin/mypy

# The appliance image (root; 20-30 min on 2 cores) and its boot test under qemu.
image: setup
	./build-image.sh --out dist

image-test: image
	./build-image.sh --test "$$(ls -t dist/meshprint-*-arm64.img.xz | head -n1)"

provisioning-test: setup
	$(PY) -m pytest -q -m provisioning tests/provisioning

bench: setup
	$(PY) bench/intake.py
	$(PY) bench/release.py
	$(PY) bench/control.py

# Kill -9 of the delivering node mid-release, many trials: stuck and double counts.
soak: setup
	$(PY) bench/kill_delivery.py --trials 50

clean:
	rm -rf $(VENV) .demo .pytest_cache
