# Two commands do all the set-up: `make demo` (the main job) and `make test` (the suite).
# Each creates .venv if absent and installs the pinned versions from constraints.txt first.
# `make test` also builds .venv-triton (torch + Triton, constraints-triton.txt), the Python that runs the
# Triton kernels in Triton's CPU interpreter (tests/interpreter.py).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.nanog1-installed
PIP    := $(PY) -m pip install --disable-pip-version-check -q -c constraints.txt
TRITON_VENV  ?= .venv-triton
TRITON_PY    := $(TRITON_VENV)/bin/python
TRITON_STAMP := $(TRITON_VENV)/.nanog1-installed

.PHONY: demo test lint app install clean-demo browser

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

$(TRITON_STAMP): constraints.txt constraints-triton.txt
	@test -x $(TRITON_PY) || $(PYTHON) -m venv $(TRITON_VENV)
	$(TRITON_PY) -m pip install --disable-pip-version-check -q -c constraints.txt -c constraints-triton.txt \
	  torch==2.13.0 triton numpy pytest
	@touch $(TRITON_STAMP)

demo: $(STAMP)
	$(VENV)/bin/nanog1 demo

# The dashboard's end-to-end test drives Debian's chromium; install it where we may (root + apt).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian chromium for the browser test"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "warning: chromium not found; the dashboard browser test will fail (apt-get install chromium)"; fi; }

test: $(STAMP) $(TRITON_STAMP) browser
	$(PY) -m ruff check .
	NANOG1_TRITON_PYTHON=$(abspath $(TRITON_PY)) $(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .

app: $(STAMP)
	$(VENV)/bin/nanog1 app

clean-demo:
	rm -rf results/demo
