# Quick start: `make demo` builds the example edition; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup chromium demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# Headless Chromium from Debian for the browser tests (Playwright drives it; it downloads no browser).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

demo: setup
	$(VENV)/bin/newsletter build 2025-09
	@echo
	@echo "Open the email in your browser:  editions/2025-09/build/email.html"
	@echo "Plain-text part:                 editions/2025-09/build/email.txt"
	@echo "Live preview (desktop + phone):  $(VENV)/bin/newsletter preview 2025-09"

test: setup chromium
	$(PY) -m pytest -q -ra

# Benchmarks against the MJML CLI, mailmerge and a bare smtplib loop (installed into bench/.peers/);
# writes docs/performance.md. A few minutes; BENCH_ARGS=--quick for a shorter run.
bench: setup chromium
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) editions/*/build editions/*/outbox .pytest_cache
