# Two commands make a fresh clone usable: `make demo` and `make test`.
# Both are idempotent: the stamp files skip installation when nothing changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
STAMP := $(VENV)/.reelforge-installed
DEV_STAMP := $(VENV)/.reelforge-dev-installed
DEMO_DIR := demo-output

.PHONY: install dev demo test test-fast lint format bench constraints clean

install: $(STAMP)
dev: $(DEV_STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel

# torch is named first and pinned so pip takes the local CPU wheel instead of a CUDA build.
$(STAMP): $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) install -c constraints.txt torch
	$(PIP) install -c constraints.txt -e .
	@touch $@

$(DEV_STAMP): $(STAMP)
	$(PIP) install -c constraints.txt -e '.[dev]'
	@touch $@

# The whole story (about 10 minutes on 2 cores): platform up, two tenants fine-tune through the API,
# generate, contact sheet and quality table in $(DEMO_DIR)/, platform down (Ctrl-C stops it too).
demo: $(STAMP)
	$(BIN)/reelforge demo --out $(DEMO_DIR)

# The whole suite (CI runs this): Ray, Serve, Train, MLflow, PostgreSQL, real MP4s.
test: $(DEV_STAMP)
	$(BIN)/python -m pytest

# The day-to-day loop (under 3 minutes): everything that needs no Ray cluster and is not a slow
# acceptance test: unit tests, stores on SQLite and PostgreSQL, the API through FastAPI's TestClient.
test-fast: $(DEV_STAMP)
	$(BIN)/python -m pytest -m "not cluster and not slow"

lint: $(DEV_STAMP)
	$(BIN)/ruff check reelforge tests bench
	$(BIN)/ruff format --check reelforge tests bench

format: $(DEV_STAMP)
	$(BIN)/ruff check --fix reelforge tests bench
	$(BIN)/ruff format reelforge tests bench

bench: $(DEV_STAMP)
	$(BIN)/python -m bench

# Re-pin every installed version after an intentional upgrade.
constraints: $(DEV_STAMP)
	@{ head -2 constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | grep -v '^reelforge' \
		| sed 's/^torch==\(.*\)+cpu/torch==\1/'; } > constraints.txt.new && mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache
