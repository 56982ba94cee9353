PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export NUMBA_CACHE_DIR := $(CURDIR)/.numba_cache

.PHONY: run test test-browser chromium bench profile validate docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/dcabs run configs/hyperion.toml --out runs/hyperion --overwrite

# The whole suite, the browser tests included: report.html and each figure rendered in headless
# Chromium (Debian's, installed when missing; a missing one fails the run rather than skipping).
test: $(STAMP) chromium
	DCABS_REQUIRE_BROWSER=1 $(PY) -m pytest -q -m "browser or not browser" tests

test-browser: $(STAMP) chromium
	DCABS_REQUIRE_BROWSER=1 $(PY) -m pytest -q -m browser tests

# As root, or through sudo without a password prompt when not.
chromium:
	command -v chromium >/dev/null || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo -n); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }

bench: $(STAMP)
	$(VENV)/bin/dcabs bench --json benchmarks/results.json

profile: $(STAMP)
	$(PY) benchmarks/profile.py

validate: $(STAMP)
	for f in configs/*.toml; do $(VENV)/bin/dcabs validate $$f || exit 1; done

clean:
	rm -rf $(VENV) .numba_cache runs .pytest_cache .hypothesis

# docs/configuration.md from the schema; every sample output in README.md and docs/*.md from a fresh
# run of its command, recorded in docs/samples.lock (tests/test_docs.py checks both; about 1.5 min).
docs: $(STAMP)
	$(PY) -m engine.config.schema_docs > docs/configuration.md
	$(PY) docs/samples.py --write
