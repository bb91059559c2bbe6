# Entry points for people and CI. `make setup` is idempotent and every target starts with it,
# so a fresh clone needs nothing but `make test` or `make run`.
#
# The local stack has a name: `dev` for `make run`, `test` for `make test`; each has its own
# folder (.stack/<name>) and ports. `LOYALTY_STACK=test make stack-down` stops the test stack.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
LOYALTY := $(VENV)/bin/loyalty
PYTEST_ARGS ?=

.PHONY: help setup stack-up stack-down stack-status lint test run bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

setup: ## install what is missing: system packages, .venv, Kafka jars
	@bash stack/bootstrap.sh

stack-up: setup ## start PostgreSQL and Kafka of the stack LOYALTY_STACK (dev by default)
	@$(LOYALTY) stack up

stack-down: setup ## stop them; the data stays
	@$(LOYALTY) stack down

stack-status: setup ## what runs, and where
	@$(LOYALTY) stack status

# All three always run, so one pass shows every finding; the target fails if any found one.
lint: setup ## ruff, mypy (strict) and the import layers (import-linter, pyproject.toml)
	@rc=0; \
	echo "$(VENV)/bin/ruff check ."; $(VENV)/bin/ruff check . || rc=1; \
	echo "$(VENV)/bin/mypy ."; $(VENV)/bin/mypy . || rc=1; \
	echo "$(VENV)/bin/lint-imports"; $(VENV)/bin/lint-imports --no-cache || rc=1; \
	exit $$rc

# Lint and tests both run, so one CI run reports both; the target fails if either failed.
# pytest's exit code 5 ("no tests collected") fails it like any other failure.
test: setup ## the test stack up, lint, then every test against it
	LOYALTY_STACK=test $(LOYALTY) stack up
	@lint=0; $(MAKE) --no-print-directory lint || lint=$$?; \
	echo "LOYALTY_STACK=test $(VENV)/bin/pytest $(PYTEST_ARGS)"; \
	LOYALTY_STACK=test $(VENV)/bin/pytest $(PYTEST_ARGS) || exit $$?; \
	if [ "$$lint" -ne 0 ]; then echo "make test: the tests passed but lint failed" >&2; exit "$$lint"; fi

run: setup ## the dev stack, demo data, workers, relay, admin UI and demo traffic; Ctrl-C stops
	$(LOYALTY) stack up
	$(LOYALTY) db upgrade
	$(LOYALTY) provision demo/demo.yaml
	$(LOYALTY) demo history
	$(LOYALTY) run

# The pipeline benchmark runs on a stack of its own (`bench`, started and stopped by it) and a
# fresh database; then bench/stats_bench.py. BENCH_ARGS="--quick" for a smoke run,
# "--skip-stats" to leave out the statistics one (its data load is long); see --help.
BENCH_ARGS ?=
bench: setup ## pipeline and statistics benchmarks (bench/); BENCH_ARGS="--quick --skip-stats"
	$(VENV)/bin/python -m bench $(BENCH_ARGS)
