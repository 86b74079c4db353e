# gamebackend: the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck jstest pytest pytest-all bench cluster clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

## Run one node (single-machine profile unless DATABASE_URL/REDIS_URL are set).
run: $(STAMP)
	$(BIN)/python manage.py runnode

## Two nodes behind nginx on this machine's PostgreSQL and Redis; Ctrl-C stops everything.
## Installs Debian's nginx when it is missing.
cluster: $(STAMP)
	command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx)
	$(BIN)/python -m gamebackend.cluster $(CLUSTER_ARGS)

## Lint (ruff, import rules), type-check and run the whole test suite (Python and JavaScript).
test: $(STAMP) lint typecheck jstest pytest-all

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy .

# The JavaScript SDK's unit tests (Node.js 20+, no npm packages; its end-to-end,
# determinism and browser tests run under pytest).
NODE ?= node
jstest:
	$(NODE) --input-type=module --check < gamebackend/play/static/play/play.js
	$(NODE) --test --test-reporter=dot --no-warnings tests/gamebackend/play/js/*.test.mjs

# The in-process suite runs in the single-machine profile with its own var directory;
# cluster-profile tests start their nodes with their own DATABASE_URL/REDIS_URL.
PYTEST_ENV := env -u DATABASE_URL -u REDIS_URL -u DJANGO_SECRET_KEY -u GAME_JWT_SECRET
pytest: $(STAMP)
	$(PYTEST_ENV) GAME_VAR_DIR=$(CURDIR)/var/test $(BIN)/pytest $(PYTEST_ARGS)

# The whole suite (what `make test` runs) in three pytest processes side by side: the
# in-process tests and the subprocess tests in two halves, each with its own var directory
# and Redis database (tests/parallel.py; docs/DEVELOPMENT.md).
pytest-all: $(STAMP)
	$(PYTEST_ENV) $(BIN)/python -m tests.parallel $(PYTEST_ARGS)

## Benchmarks (docs/BENCHMARKS.md); the gateway one in its quick form (a few minutes),
## the rooms one without its end-to-end part (about a minute).
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-bench.txt
	$(BIN)/python bench/actors_bench.py
	$(BIN)/python bench/flow_bench.py
	$(BIN)/python bench/tickets_bench.py
	$(BIN)/python bench/gateway_bench.py --quick
	$(BIN)/python bench/rooms_bench.py --scheduler-only --repeats 1
	$(NODE) bench/jssdk_bench.mjs

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
