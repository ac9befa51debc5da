# The two commands the README promises: `make run` (the local end-to-end run) and `make test`.
# Every install comes from requirements.lock (every package, hashes included); `make lock` is the only resolve.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
LATEST := .venv-latest
# The lock is resolved for the machines this project runs on: CPython 3.11 on x86_64 Linux.
LOCK_TARGET := --python-version 3.11 --python-platform x86_64-manylinux_2_28
# uv does not read pip's configuration: hand it pip's find-links (where these machines keep torch's CPU build), and
# let it trust the system's certificate store as pip does.
PIP_FIND_LINKS ?= $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null)
export UV_FIND_LINKS ?= $(PIP_FIND_LINKS)
export UV_SYSTEM_CERTS ?= 1
COMPILE = $(BIN)/uv pip compile --quiet --upgrade --generate-hashes --extra dev $(LOCK_TARGET) \
	--custom-compile-command 'make lock' pyproject.toml
FAST_TESTS := -m "not slow and not container"

.PHONY: run test lint install lock test-latest clean mutants

# Installs exactly the lock: pip brings the locked uv (hash-checked), and uv makes the environment exactly the lock,
# refusing any file whose hash the lock does not list and any package it does not list.
define install_from
	$(PYTHON) -c 'import sys; sys.exit(None if sys.version_info[:2] == (3, 11) else "the lock is resolved for Python 3.11; run make PYTHON=python3.11")'
	rm -rf $(1)
	$(PYTHON) -m venv $(1)
	awk '/^uv==/ {keep = 1; print; next} /^[a-z0-9]/ {keep = 0} keep' $(2) > $(1)/uv.txt
	$(1)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r $(1)/uv.txt
	$(1)/bin/uv pip sync --quiet --require-hashes --strict --compile-bytecode --python $(1)/bin/python $(2)
	$(1)/bin/uv pip install --quiet --no-deps --no-build-isolation --python $(1)/bin/python -e .
	$(1)/bin/uv pip check --quiet --python $(1)/bin/python
endef

$(STAMP): $(LOCK) pyproject.toml
	$(call install_from,$(VENV),$(LOCK))
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m pipeline.javacheck
	$(BIN)/seclake run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pipeline.javacheck
	$(BIN)/pytest

# Mutation testing of the decisions the tests must protect ([tool.mutmut] in pyproject.toml names the files and the
# tests): mutmut changes one thing at a time and runs the tests that reach it; a mutant that survives is a behaviour no
# test pins. Prints the kill rate per file and the survivors not judged equivalent in benchmarks/equivalent_mutants.txt.
# Results are kept in mutants/ (rerun after a change: only the mutants of changed functions run again).
mutants: $(STAMP)
	$(BIN)/mutmut run
	$(BIN)/python -m benchmarks.mutation_report

# A dependency bump on purpose: resolve the newest versions pyproject.toml allows, reinstall, run every test.
# Commit requirements.lock alone, once this passes.
lock: $(STAMP)
	$(COMPILE) -o $(LOCK)
	$(MAKE) test

# Drift, found before users find it: the newest allowed versions in $(LATEST), and the fast tests on them.
# Not part of .ci/run; the lock is untouched.
test-latest: $(STAMP)
	$(COMPILE) -o $(LATEST).txt
	$(call install_from,$(LATEST),$(LATEST).txt)
	diff <(grep -E '^[a-z0-9]' $(LOCK)) <(grep -E '^[a-z0-9]' $(LATEST).txt) | grep -E '^[<>]' || true
	$(LATEST)/bin/python -m pipeline.javacheck
	$(LATEST)/bin/pytest $(FAST_TESTS)

clean:
	rm -rf $(VENV) $(LATEST) $(LATEST).txt .seclake .pytest_cache .mypy_cache .ruff_cache
