# Sängplats — `make run` (demo at http://127.0.0.1:5000; or `make run PORT=8000 STRIPE_PORT=8421`), `make test`
# (the whole suite), `make lint` (ruff).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app wsgi
PYTHON ?= python3.11
PORT ?= 5000
STRIPE_PORT ?= 8420
export STRIPE_API_BASE ?= http://127.0.0.1:$(STRIPE_PORT)
export STRIPE_JS_URL ?= http://127.0.0.1:$(STRIPE_PORT)/js.stripe.com/v3/
export STRIPE_SECRET_KEY ?= sk_test_sangplats
export STRIPE_PUBLISHABLE_KEY ?= pk_test_sangplats
export STRIPE_WEBHOOK_SECRET ?= whsec_sangplats_dev
# `make run` is development: the defaults (SQLite, memory:// limits, a development key) are refused elsewhere.
export APP_ENV ?= development
export BASE_URL ?= http://127.0.0.1:$(PORT)

.PHONY: run test lint typecheck install install-dev chromium axe translations translations-extract bench bench-quick services clean

# Runtime packages (requirements.txt), then the development tools on top (requirements-dev.txt, which
# includes the runtime file): each stamp is renewed when its own file, or the runtime one, changes.
$(VENV)/.installed: requirements.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || PYTHON=python3; \
	  test -x $(PY) || $$( command -v $(PYTHON) || echo python3 ) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed translations

install-dev: $(VENV)/.installed-dev translations

# One .mo per catalogue, rebuilt when its .po changes; a failing compile fails the build (the tests
# refuse to run with a missing or stale .mo). Written beside and renamed, so a running app never reads half a file.
PO_FILES := $(wildcard app/translations/*/LC_MESSAGES/messages.po)
MO_FILES := $(PO_FILES:.po=.mo)

translations: $(MO_FILES)

app/translations/%/LC_MESSAGES/messages.mo: app/translations/%/LC_MESSAGES/messages.po | $(VENV)/.installed
	$(VENV)/bin/pybabel -q compile -f -l $* -i $< -o $@.tmp
	mv -f $@.tmp $@

# For developers after changing texts: collect every msgid into messages.pot and merge it into
# each catalogue (new entries arrive untranslated; tests/test_i18n.py fails until they are translated).
translations-extract: $(VENV)/.installed
	$(VENV)/bin/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k N_ --sort-by-file \
	  --project Sängplats --version 1 --msgid-bugs-address sangplats@example.se \
	  -o app/translations/messages.pot .
	$(VENV)/bin/pybabel update -i app/translations/messages.pot -d app/translations --ignore-obsolete

# Debian's Chromium for the browser tests (never a Playwright download).
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  echo "Installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "Could not install chromium (the browser tests will say so)"; \
	fi

# axe-core (pinned in tests/axe/package-lock.json) for the accessibility check.
AXE_JS := tests/axe/node_modules/axe-core/axe.min.js
$(AXE_JS): tests/axe/package-lock.json
	npm ci --prefix tests/axe --no-audit --no-fund
	touch $@

axe: $(AXE_JS)

# The development server on 127.0.0.1:$(PORT), one worker and localstripe on 127.0.0.1:$(STRIPE_PORT), all three
# stopped together by Ctrl-C (tools/run.py supervises them).
run: install-dev
	$(FLASK) db upgrade
	$(FLASK) demo seed
	SESSION_COOKIE_SECURE=0 $(PY) -m tools.run --port $(PORT) --stripe-port $(STRIPE_PORT)

# The whole suite in two parts: everything but the gunicorn races on TEST_WORKERS processes (pytest-xdist, one
# test file per worker at a time, so module fixtures such as the browser's live app start once), then the races
# alone, since their gunicorn workers want the whole machine. Both parts always run; either failing fails the target.
TEST_WORKERS ?= auto
test: install-dev chromium axe
	@status=0; \
	  $(PY) -m pytest -m "not serial" -n $(TEST_WORKERS) --dist loadfile || status=$$?; \
	  $(PY) -m pytest -m serial || status=$$?; \
	  exit $$status

# Style, imports, likely bugs and old idioms (settings in pyproject.toml).
lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check app config.py wsgi.py tests tools bench
	$(VENV)/bin/mypy

# Types alone (settings in pyproject.toml; `make lint` runs them too).
typecheck: $(VENV)/.installed-dev
	$(VENV)/bin/mypy

bench: install
	$(PY) -m bench.rush

bench-quick: install
	$(PY) -m bench.rush --quick

clean:
	rm -rf $(VENV) instance/*.db .pytest_cache
