# The README's commands. Everything installs into ./.venv (created on first use).
PYTHON ?= python3
# pytest-xdist workers for the integration tier (its tests mostly wait on loopback HTTP).
WORKERS ?= 2
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint typecheck unit integration e2e bench clean dist-check airflow-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e . --group dev
	touch $(STAMP)

venv: $(STAMP)

## demo: start the bundled Looker emulator, run the tap into a real target, show what landed
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

## test: lint, type-check and every test tier (unit, integration, Meltano end-to-end)
test: lint typecheck unit integration e2e

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

## unit: the pure tests (tests/unit): no HTTP, no emulator, no subprocess; seconds
unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

## integration: the tap and the emulator's own tests through the Looker emulator
integration: $(STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) tests/integration looker_emulator/tests

## e2e: the Meltano end-to-end tests into real targets (tests/e2e)
e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e

## bench: speed and memory measurements against the emulator (see benchmarks/RESULTS.md)
bench: $(STAMP)
	$(BIN)/python -m benchmarks

## dist-check: build sdist + wheel, twine check, run --about from the wheel in a clean venv
dist-check: $(STAMP)
	$(BIN)/python scripts/check_dist.py

## airflow-venv: Airflow for the DAG tests, in .airflow-venv/ (orchestrate/, docs/DEPLOY.md)
airflow-venv: $(STAMP)
	scripts/airflow-venv.sh

clean:
	rm -rf $(VENV) .airflow-venv .pytest_cache .mypy_cache .ruff_cache .hypothesis output demo-output
