# Two commands: `make run` starts the classroom, `make test` runs every test.
# Everything is installed into the project directory (.venv, .node) and reused.

SHELL := /bin/bash
VENV := .venv
# Labs may run as other OS users, who cannot enter /root: build the venv from
# Debian's interpreter when it is there, not from a pyenv shim under /root.
BASE_PYTHON := $(shell if [ -x /usr/bin/python3 ]; then echo /usr/bin/python3; else command -v python3; fi)
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
CHP := .node/node_modules/.bin/configurable-http-proxy
KERNEL_CONFIG := $(VENV)/etc/ipython/ipython_kernel_config.py
# Jupyter AI (when installed) talks to the gateway: see that file.
SERVER_CONFIG := $(VENV)/etc/jupyter/jupyter_server_config.py

.PHONY: run test bench soak install install-test lint clean postgres redis

run: install
	PATH="$(CURDIR)/.node/node_modules/.bin:$$PATH" $(VENV)/bin/classroom run

install: $(VENV)/.stamp-install $(CHP) $(KERNEL_CONFIG) $(SERVER_CONFIG)

$(VENV)/bin/python:
	$(BASE_PYTHON) -m venv $(VENV)

$(VENV)/.stamp-install: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -e .
	touch $@

$(VENV)/.stamp-test: pyproject.toml $(VENV)/.stamp-install
	$(PIP) install -e '.[test]'
	touch $@

$(KERNEL_CONFIG): extensions/classroom/ipython_kernel_config.py | $(VENV)/bin/python
	mkdir -p $(dir $@)
	cp $< $@

$(SERVER_CONFIG): extensions/classroom/jupyter_server_config.py | $(VENV)/bin/python
	mkdir -p $(dir $@)
	cp $< $@

$(CHP):
	npm install --prefix .node --no-audit --no-fund --loglevel=error configurable-http-proxy@^5
	test -x $@

# Debian's chromium for the browser tests; never `playwright install` (it downloads).
/usr/bin/chromium:
	if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; fi

# A real PostgreSQL for the tests that run the history on it (started by the tests on a
# free loopback port as the postgres user, never as a system service).
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; fi; fi

# A real Redis for the tests of gateway replicas sharing one key pool (started by the tests
# on a free loopback port in a temporary directory, never as a system service).
redis:
	@if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; fi; fi

# Debian's tinyproxy: the real HTTP proxy the network tests send vendor calls through.
/usr/bin/tinyproxy:
	if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tinyproxy; \
	else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tinyproxy; fi


install-test: install $(VENV)/.stamp-test /usr/bin/chromium /usr/bin/tinyproxy postgres redis

test: install-test
	PATH="$(CURDIR)/.node/node_modules/.bin:$$PATH" $(PY) -m pytest $(PYTEST_ARGS)

bench: install-test
	PATH="$(CURDIR)/.node/node_modules/.bin:$$PATH" $(PY) -m benchmarks

soak: install-test
	PATH="$(CURDIR)/.node/node_modules/.bin:$$PATH" $(PY) -m benchmarks.soak $(SOAK_ARGS)

lint: install-test
	$(VENV)/bin/ruff check gateway hub extensions tests
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .node
