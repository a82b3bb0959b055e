# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export GX_ANALYTICS_ENABLED := false

.PHONY: install chromium run test lint bench suites clean-warehouse

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP) chromium

chromium:  ## headless browser for the Data Docs test: apt-get installs it when missing and we are root
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "chromium not installed (needs root and apt-get): the Data Docs browser test will be skipped"

run: $(STAMP)  ## set up, then run the flow on seeds/ into warehouse/
	$(BIN)/newsetl run --source seeds --warehouse warehouse

test: install  ## set up, then run the test suite
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .

bench: install  ## dev-set quality and throughput figures
	$(BIN)/python bench/eval_boilerplate.py
	$(BIN)/python bench/eval_stories.py
	$(BIN)/python bench/eval_events.py

clean-warehouse:
	rm -rf warehouse/current warehouse/snapshots warehouse/news.duckdb warehouse/.writer.lock

suites: install  ## rewrite the committed GX suites from tasks/validate.py
	$(BIN)/python -m tasks.validate
