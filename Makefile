# Plexus — a newcomer runs `make demo` and `make test`; both set up everything they need.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
NPM    := $(VENV)/bin/npm
STAMP  := $(VENV)/.plexus-installed
RIG    := tests/rig/node_modules/@micropython/micropython-webassembly-pyscript/package.json

.PHONY: all setup build test fuzz lint typecheck demo bench vectors clean

all: test

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

$(RIG): $(STAMP) tests/rig/package.json tests/rig/package-lock.json
	cd tests/rig && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" ../../$(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

setup: $(STAMP) $(RIG)

build: setup
	$(PY) tools/build_mpy.py

test: build
	$(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadgroup

fuzz: build
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q -p no:cacheprovider tests/test_plexwire_fuzz.py

lint: setup
	$(VENV)/bin/ruff check .

typecheck: setup
	$(VENV)/bin/mypy host/plexus
	@mkdir -p build/mpystubs && cp $(VENV)/lib/python3*/site-packages/*.pyi build/mpystubs/
	$(VENV)/bin/mypy --config-file tools/mypy-firmware.ini firmware/plexnode protocol/plexwire

vectors: setup
	$(PY) tools/make_vectors.py

demo: build
	$(PY) -m plexus demo

bench: build
	$(PY) bench/run_all.py

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
