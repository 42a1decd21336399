# GoShip developer entry points. `make demo` and `make test` are all a fresh clone needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := $(CURDIR)/.venv
PYTEST      := $(VENV)/bin/pytest
COLLECTIONS := $(CURDIR)/build/collections

# goship.core resolves through build/collections/ansible_collections/goship/core -> repo
# (made by scripts/setup.sh); community.libvirt comes from the `ansible` package in .venv.
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PATH := $(VENV)/bin:$(PATH)

# Test tiers run in this order: fast first, VMs last.
TIER_DIRS := $(wildcard tests/unit tests/sanity tests/integration tests/reliability)

.PHONY: help setup test test-unit test-integration test-reliability sanity demo lock clean

help:
	@echo "make demo             set up, then run the GoShip demo"
	@echo "make test             set up, then run unit, sanity and integration tests"
	@echo "make setup            install Debian packages, .venv, start libvirtd (idempotent)"
	@echo "make test-unit        unit tests only"
	@echo "make sanity           ansible-test sanity + ansible-lint on a copy of the collection"
	@echo "make test-integration integration tests only (libvirt/QEMU)"
	@echo "make test-reliability faults, fuzzing and security checks only"
	@echo "make lock             rewrite constraints.txt from the current .venv"
	@echo "make clean            remove build output and caches (keeps .venv, build/image)"

setup:
	@bash scripts/setup.sh

test: setup
	$(PYTEST) $(TIER_DIRS)

test-unit: setup
	$(PYTEST) tests/unit

sanity: setup
	$(PYTEST) tests/sanity

test-integration: setup
	$(PYTEST) tests/integration

test-reliability: setup
	$(PYTEST) tests/reliability

demo: setup
	$(VENV)/bin/goship-ctl demo

lock:
	@{ echo "# Exact versions of the GoShip virtualenv (.venv): a full lock of 'pip freeze --all'."; \
	   echo "# scripts/setup.sh installs from this file; refresh it with 'make lock' after changing pyproject.toml."; \
	   $(VENV)/bin/python -m pip freeze --all --exclude-editable --disable-pip-version-check \
	     | grep -v -E '^(-e |goship==)'; } > constraints.txt.new
	@mv constraints.txt.new constraints.txt
	@echo "constraints.txt rewritten"

# Keeps build/image (the guest image cache, slow to rebuild) and .venv.
clean:
	rm -rf build/sanity build/collections .pytest_cache tests/output .ansible
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -path ./.venv -prune -o -name '*.egg-info' -type d -prune -exec rm -rf {} +
