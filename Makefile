# Qunflow: the commands everyone uses. A fresh machine needs only Python 3.11+ and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint format serve web bench constraints migration schema clean browser \
	messages

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test,dev]'
	touch $(STAMP)

# The message catalog: .po files are the source; the compiled .mo files the service reads are
# committed too (a plain `pip install .` ships them) and rebuilt here whenever a .po changes.
LOCALE := flows/i18n/locale
MO     := $(LOCALE)/zh_CN/LC_MESSAGES/qunflow.mo $(LOCALE)/en/LC_MESSAGES/qunflow.mo

$(LOCALE)/%.mo: $(LOCALE)/%.po | $(STAMP)
	$(BIN)/pybabel compile -i $< -o $@

install: $(STAMP) $(MO)

demo: $(STAMP)
	$(BIN)/qunflow db upgrade
	$(BIN)/qunflow demo

test: $(STAMP) $(MO) browser
	$(BIN)/pytest

# Debian's Chromium for the browser tests (Playwright drives it; no browser download), and a
# CJK font so Chinese pages and charts render as text, not boxes.
browser:
	@if command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi wqy; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium and a CJK font for the browser tests"; \
	  apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium fonts-wqy-microhei >/dev/null 2>&1 || \
	  { apt-get update -qq >/dev/null 2>&1; \
	    apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium fonts-wqy-microhei >/dev/null 2>&1; } || \
	  echo "chromium could not be installed: browser tests will skip"; \
	else echo "chromium not found: browser tests will skip"; fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy crm flows
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

serve: $(STAMP)
	$(BIN)/python -m deployments.stack

web: $(STAMP)
	$(BIN)/qunflow web

# After adding t("key") in code or templates: extract the keys, add the new ones to both .po files
# (fill in their words there), then compile. Keys built at run time are kept from the .po files.
messages: $(STAMP)
	$(BIN)/pybabel -q extract -F babel.cfg --no-location --sort-output \
	  -o $(LOCALE)/qunflow.pot .
	$(BIN)/python -m flows.i18n.template $(LOCALE)/qunflow.pot
	$(BIN)/pybabel -q update -i $(LOCALE)/qunflow.pot -d $(LOCALE) -D qunflow \
	  --no-fuzzy-matching --ignore-pot-creation-date
	rm $(LOCALE)/qunflow.pot
	$(BIN)/pybabel compile -d $(LOCALE) -D qunflow --statistics

# Refresh the pinned versions after changing dependencies in pyproject.toml.
constraints: $(STAMP)
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e' > constraints.new
	{ head -3 constraints.txt; cat constraints.new; } > constraints.txt && rm constraints.new

migration: $(STAMP)
	$(BIN)/python -m crm.core.migrations.autogen "$(MSG)"

# Until the first release the schema is one migration, regenerated from the models.
schema: $(STAMP)
	rm -f crm/core/migrations/versions/0001_initial_schema.py
	$(BIN)/python -m crm.core.migrations.autogen "initial schema" --rev-id 0001

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
