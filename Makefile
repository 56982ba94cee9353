PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export NUMBA_CACHE_DIR := $(CURDIR)/.numba_cache

.PHONY: run test test-browser bench validate docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/dcabs run configs/hyperion.toml --out runs/hyperion --overwrite

test: $(STAMP)
	$(PY) -m pytest -q tests

# Renders report.html in headless Chromium; installs Debian's chromium when it is missing.
test-browser: $(STAMP)
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)
	$(PY) -m pytest -q -m browser tests

bench: $(STAMP)
	$(VENV)/bin/dcabs bench --json benchmarks/results.json

validate: $(STAMP)
	for f in configs/*.toml; do $(VENV)/bin/dcabs validate $$f || exit 1; done

clean:
	rm -rf $(VENV) .numba_cache runs .pytest_cache .hypothesis

docs: $(STAMP)
	$(PY) -m engine.schema_docs > docs/configuration.md
