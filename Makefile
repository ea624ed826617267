# `make run` and `make test` set everything up on a machine that has only Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run test test-quick install install-test migrate seed lint typecheck pytest translations bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

migrate: install
	$(BIN)/loyalty migrate

seed: migrate
	$(BIN)/loyalty seed-demo

## Serve the member page, the till API and the console on the embedded SQLite database.
run: seed
	@echo "Serving on http://$(HOST):$(PORT)/  (API docs: http://$(HOST):$(PORT)/api/docs)"
	$(BIN)/python -m server.devserver --host $(HOST) --port $(PORT)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install-test
	$(BIN)/mypy

pytest: install-test
	$(BIN)/pytest $(PYTEST_ARGS)

## The whole suite: lint, types, then every test (PostgreSQL and Redis ones skip, with the
## reason, when those servers are not running; under CI=true they must run).
test: lint typecheck pytest

## Everything but the slow tests (browser, fuzzing, races, packaging): for a quick check while
## working. CI runs `make test`.
test-quick: lint typecheck
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

## The pages' strings: extract them from web/ (web/babel.cfg), merge them into each language's
## catalogue (web/translations/<lang>/LC_MESSAGES/messages.po), then, once the new entries are
## translated, run it again to compile the .mo files, which are committed (`make run` and
## `make test` never compile). tests/web/test_languages.py fails while a string has no
## translation or a .mo is not the compiled .po.
TRANSLATIONS := web/translations
TRANSLATED   := ru ca zh
translations: install
	mkdir -p $(TRANSLATIONS)
	$(BIN)/pybabel -q extract -F web/babel.cfg --project=loyalty --copyright-holder= \
	  --msgid-bugs-address= -o $(TRANSLATIONS)/messages.pot web
	@for lang in $(TRANSLATED); do \
	  if [ -f $(TRANSLATIONS)/$$lang/LC_MESSAGES/messages.po ]; then \
	    $(BIN)/pybabel -q update --no-fuzzy-matching --ignore-obsolete -l $$lang \
	      -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) || exit 1; \
	  else \
	    $(BIN)/pybabel -q init -l $$lang -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) || exit 1; \
	  fi; \
	done
	$(BIN)/pybabel compile --statistics -d $(TRANSLATIONS)

bench: install  ## needs PostgreSQL on 127.0.0.1 and wrk (apt-get install wrk); see bench/README.md
	$(BIN)/python bench/till.py --tills 16 --seconds 15 --baseline

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
