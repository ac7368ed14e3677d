# Qunflow: the commands everyone uses. A fresh machine needs only Python 3.11+ and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint format serve web bench constraints migration schema clean browser

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/qunflow db upgrade
	$(BIN)/qunflow demo

test: $(STAMP) browser
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
