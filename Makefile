# The only commands a newcomer needs. Everything installs from nothing into .venv
# (Python packages with uv from the lock file) and .state/ (Kafka jars, data, logs).

PYTHON   ?= python3.11
VENV     := .venv
PY       := $(VENV)/bin/python
UV_HOME  := .state/uv
UV       := $(UV_HOME)/bin/uv
UV_VERSION := 0.13.9
DEV      := $(PY) -m deploy.dev
TEST_PROFILE ?= test
TEST_ENV := KORTFLYT_PROFILE=$(TEST_PROFILE)

.PHONY: install run stop status demo lint test test-unit test-integration test-e2e test-infra bench schemas clean \
	browser-deps bench-verify bench-recheck verify-screenshots

install: $(VENV)/.installed

$(UV):
	$(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --python $(PYTHON) --quiet
	touch $@

## make browser-deps: headless Chromium (Debian's packages) and axe-core (npm, from the lock
## file) for the browser tests of the console and the verify pages; installs only what is missing
browser-deps: node_modules/axe-core/axe.min.js
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		echo "installing chromium and chromium-driver (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	fi

node_modules/axe-core/axe.min.js: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

## make run: start Kafka, PostgreSQL and every service, publish sample orders, show outcomes
run: install
	$(DEV) up
	$(PY) deploy/demo.py

## make stop: stop the services and the infrastructure (data is kept; `make clean` drops it)
stop:
	@if [ -x $(PY) ]; then $(DEV) down; $(DEV) --profile $(TEST_PROFILE) down; fi

status: install
	$(DEV) status

demo: install
	$(PY) deploy/demo.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

## make test: lint, then every tier against a fresh real Kafka and PostgreSQL (test profile)
test: lint test-infra browser-deps
	$(TEST_ENV) $(PY) -m pytest tests

test-infra: install
	$(DEV) --profile $(TEST_PROFILE) reset
	$(DEV) --profile $(TEST_PROFILE) infra up

test-unit: install
	$(PY) -m pytest tests/unit

test-integration: install
	$(DEV) --profile $(TEST_PROFILE) infra up
	$(TEST_ENV) $(PY) -m pytest tests/integration

test-e2e: install browser-deps
	$(DEV) --profile $(TEST_PROFILE) infra up
	$(TEST_ENV) $(PY) -m pytest tests/e2e

## make bench: N orders (default 2000) through the pipeline and a bare relay, and their work alone
bench: install
	$(DEV) --profile $(TEST_PROFILE) infra up
	$(TEST_ENV) $(PY) -m tests.bench --orders $${N:-2000} --instances $${INSTANCES:-1}

## make bench-verify: verifications/s and latency of the verify service (JSON API and page)
bench-verify: install
	$(DEV) --profile $(TEST_PROFILE) infra up
	$(TEST_ENV) $(PY) -m tests.bench_verify $${BENCH_ARGS:-}

## make bench-recheck: 500,000 active cards: a day's re-check budget, new orders beside it, a day of feed changes
bench-recheck: install
	$(DEV) --profile $(TEST_PROFILE) infra up
	$(TEST_ENV) $(PY) -m tests.bench_recheck $${BENCH_ARGS:-}

## make verify-screenshots: the verify pages at phone size into docs/screenshots/ (e2e test)
verify-screenshots: install browser-deps
	$(DEV) --profile $(TEST_PROFILE) infra up
	$(TEST_ENV) KORTFLYT_SCREENSHOT_DIR=docs/screenshots $(PY) -m pytest tests/e2e/test_verify.py -k axe

## make schemas: regenerate schemas/ (JSON Schema per event and command) and docs/ (AsyncAPI)
schemas: install
	$(PY) -m shared.events schemas
	$(PY) -m shared.contract docs

clean: stop
	rm -rf .state $(VENV)
