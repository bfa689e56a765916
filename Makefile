# Two commands do all the set-up: `make demo` (the main job) and `make test` (the suite).
# Each creates .venv if absent and installs the pinned versions from constraints.txt first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.nanog1-installed
PIP    := $(PY) -m pip install --disable-pip-version-check -q -c constraints.txt

.PHONY: demo test lint app install clean-demo browser

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/nanog1 demo

# The dashboard's end-to-end test drives Debian's chromium; install it where we may (root + apt).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian chromium for the browser test"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "warning: chromium not found; the dashboard browser test will fail (apt-get install chromium)"; fi; }

test: $(STAMP) browser
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .

app: $(STAMP)
	$(VENV)/bin/nanog1 app

clean-demo:
	rm -rf results/demo
