# Two commands for a newcomer (see README):
#   make demo   start Temporal + a worker, migrate, ingest the sample, show the cases
#   make test   run the whole test suite
# Both create the virtual environment from pyproject.toml on first use.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test stop venv bench bench-ingest bench-vs-bare clean screenshot
N ?= 2000

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	./scripts/demo.sh

stop:
	./scripts/stop.sh

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

# A case in the Temporal Web UI as a PNG (needs `make demo` running and
# Debian's chromium): make screenshot [ACCOUNT=ACC-1001] [OUT=docs/case-in-ui.png]
ACCOUNT ?= ACC-1001
OUT ?= docs/case-in-ui.png
screenshot: $(STAMP)
	$(PY) -m pip install -q -e '.[ui]'
	$(PY) scripts/screenshot.py $(ACCOUNT) --out $(OUT)

bench: $(STAMP)
	$(PY) bench/disaster_fanout.py $(N)

bench-ingest: $(STAMP)
	$(PY) bench/ingest.py $(N)

# The product beside bare Temporal on one dev server: opening rate, memory per
# parked case, ingest alone (bench/vs_bare.py; N defaults to 1000 here).
bench-vs-bare: $(STAMP)
	$(PY) bench/vs_bare.py $(if $(filter command line,$(origin N)),$(N),1000)

clean: stop
	rm -rf .data
