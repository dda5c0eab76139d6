# actas: `make run` starts the product, `make test` runs every check.
# Both work on a fresh Debian machine: they create .venv and install what is missing.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench lint typecheck pytest jstest system-deps screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: actas + dashboard + the demo app on SQLite, with demo users (actas dev)
run: $(STAMP)
	$(BIN)/actas dev

## test: lint, type-check, and the whole suite on SQLite and PostgreSQL
test: $(STAMP) system-deps lint typecheck jstest pytest

system-deps:
	scripts/install-system-deps postgresql chromium nodejs

## bench: every benchmark, each against its baseline in the same run (see bench/README.md)
bench: $(STAMP)
	scripts/install-system-deps postgresql wrk
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.refresh
	$(BIN)/python -m bench.verify
	$(BIN)/python -m bench.middleware
	$(BIN)/python -m bench.impersonation
	$(BIN)/python -m bench.audit_appends
	$(BIN)/python -m bench.webhook_isolation
	$(BIN)/python -m bench.session_list
	$(BIN)/python -m bench.dashboard_users
	$(BIN)/python -m bench.audit_chain

## jstest: the browser SDK's and React binding's unit tests, and the served bundle's freshness
jstest:
	cd js && npm ci --no-audit --no-fund && npm test
	node js/scripts/build.mjs --check

## screenshots: the README's screenshots, taken by the browser tests (1280 px and 390 px)
README_SHOTS := 01-dashboard-users 02-user-detail 03-app-impersonating 04b-live-impersonations \
                06-audit-log page-audit-event-1280 10-user-access-history page-user-390 \
                page-impersonations-390 17-passkey-added 18-admin-tool-created
screenshots: $(STAMP) system-deps jstest
	ACTAS_TEST_BACKENDS=sqlite $(BIN)/pytest tests/e2e -q
	mkdir -p docs/screenshots
	for shot in $(README_SHOTS); do cp test-artifacts/screenshots/$$shot.png docs/screenshots/; done

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .actas .pytest_cache .mypy_cache .ruff_cache test-artifacts js/node_modules
