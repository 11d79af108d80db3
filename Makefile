# Two commands make a fresh clone usable: `make demo` and `make test`.
# Both are idempotent: the stamp files skip installation when nothing changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
STAMP := $(VENV)/.reelforge-installed
DEV_STAMP := $(VENV)/.reelforge-dev-installed
DEMO_DIR := demo-output

.PHONY: install dev demo test bench constraints clean

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

test: $(DEV_STAMP)
	$(BIN)/python -m pytest

bench: $(DEV_STAMP)
	$(BIN)/python -m bench

# Re-pin every installed version after an intentional upgrade.
constraints: $(DEV_STAMP)
	@{ head -2 constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | grep -v '^reelforge' \
		| sed 's/^torch==\(.*\)+cpu/torch==\1/'; } > constraints.txt.new && mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
