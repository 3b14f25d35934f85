# Quick start: `make demo` builds the example edition; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup constraints system-packages demo lint test test-fast bench clean

# The test environment at the versions in constraints.txt, so that every run (and CI) tests the same releases.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# Refresh constraints.txt: the newest releases pyproject.toml admits, installed into a throwaway virtualenv.
# Run it after changing a dependency, then `make test` before committing the new file.
constraints:
	rm -rf .constraints-venv
	$(PYTHON) -m venv .constraints-venv
	.constraints-venv/bin/python -m pip install -q --upgrade pip
	.constraints-venv/bin/python -m pip install -q -e '.[test]'
	{ echo "# The test environment's exact versions (make setup installs with -c constraints.txt), so CI is repeatable."; \
	  echo "# Made by \`make constraints\` (the newest releases pyproject.toml admits); refresh it when raising a floor."; \
	  .constraints-venv/bin/python -m pip freeze --exclude newsletter; } > constraints.txt
	rm -rf .constraints-venv

# Real servers and a browser from Debian for the tests: headless Chromium (Playwright drives it; it downloads no
# browser), Dovecot (the IMAP server of the mailbox tests) and SpamAssassin (scores the example with its local
# rules only, `spamassassin -L`: no network). Installed only when missing.
system-packages:
	@missing=; command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	  command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || missing="$$missing dovecot-imapd"; \
	  command -v spamassassin >/dev/null 2>&1 || missing="$$missing spamassassin"; \
	  if [ -n "$$missing" ]; then \
	    echo "Installing from Debian for the tests:$$missing"; \
	    if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	    $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  fi

demo: setup
	$(VENV)/bin/newsletter build 2025-09
	@echo
	@echo "Open the email in your browser:  editions/2025-09/build/email.html"
	@echo "Plain-text part:                 editions/2025-09/build/email.txt"
	@echo "Live preview (desktop + phone):  $(VENV)/bin/newsletter preview 2025-09"

# ruff (rules in pyproject.toml) and mypy --strict on newsletter_cli; the import-direction test is in the suite.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: setup system-packages lint
	$(PY) -m pytest -q -ra

# Everything but the slow fault/stress tests and the browser tests, for the edit-test loop: about 2.5 minutes on 2
# cores shared with other work (162 s measured; 346 s before the tests over ~2 s were marked slow). No test in it takes
# over ~2 s on its own (`pytest --durations=25` shows them): mark one that does `@pytest.mark.slow`.
test-fast: setup lint
	$(PY) -m pytest -q -m "not slow and not browser"

# Benchmarks against the MJML CLI, mailmerge and a bare smtplib loop (installed into bench/.peers/);
# writes docs/performance.md. A few minutes; BENCH_ARGS=--quick for a shorter run.
bench: setup system-packages
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) editions/*/build editions/*/outbox .pytest_cache
