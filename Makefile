# The four verbs: install, run, test, check (+ bench). Everything lives in .venv.
# The first Python 3.11/3.12 that really runs (a pyenv shim may exist without its version).
PYTHON ?= $(shell for p in python3.11 python3.12 python3; do \
	$$p -c 'import sys; assert (3, 11) <= sys.version_info[:2] < (3, 13)' 2>/dev/null \
	&& { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test check bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Dangan needs Python 3.11 or 3.12 (oso has no wheel for 3.13)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: install
	$(BIN)/dangan dev --demo

test: install
	$(BIN)/pytest

check: install
	$(BIN)/ruff check dangan tests bench
	$(BIN)/ruff format --check dangan tests bench
	$(BIN)/mypy

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .dangan .pytest_cache .mypy_cache .ruff_cache
