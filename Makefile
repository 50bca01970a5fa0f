# `make demo` and `make test` each do their own setup on a fresh machine: the virtualenv (uv), a
# Docker engine and the lab image are created only when missing or out of date.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# The lab that `make demo` uses, and its size.
LAB ?= gymfleet
NODES ?= 3
SCENARIOS := $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))

.PHONY: help env host-tools image demo demo-down status test lint docs systems unit molecule integration clean

help:
	@echo "make demo       bring up a $(NODES)-node lab, deploy the whole stack to it, print its status"
	@echo "make demo-down  remove the demo lab"
	@echo "make test       lint, unit tests, molecule scenarios ($(SCENARIOS)), integration tests"
	@echo "make docs       regenerate the role variable tables in README.md"
	@echo "make systems    regenerate the lifecycle playbooks from meta/systems.yml"

$(VENV)/.installed: pyproject.toml tools/bootstrap-env
	tools/bootstrap-env $(VENV)
	touch $@

env: $(VENV)/.installed

# Starts (or installs) a Docker engine when none answers and the lab's APT cache (apt-cacher-ng), then builds the
# lab images if their recipes changed.
image: env
	gymfleet lab image

# OMNIBOXES=/path/to/webgym deploys the real OmniBoxes instead of the test double; BARE=1 starts from the bare
# lab image (the Debian packages installed by the deploy, as on a fresh machine).
demo: image
	gymfleet lab up --name $(LAB) --nodes $(NODES) --exist-ok $(if $(BARE),--bare)
	gymfleet lab stack --name $(LAB) $(if $(OMNIBOXES),--omniboxes $(OMNIBOXES))
	gymfleet deploy -i inventories/lab/$(LAB)
	$(MAKE) --no-print-directory status

status: env
	gymfleet status -i inventories/lab/$(LAB)

demo-down: env
	gymfleet lab down --name $(LAB)

# Every part (lint, unit, each molecule scenario, integration) side by side in lanes, longest first: see
# tools/test_lanes.py. LANES=1 runs them one after another.
test: image host-tools
	python tools/test_lanes.py

lint: env
	yamllint --strict .
	ansible-lint --profile production
	ruff check src plugins tests tools molecule bench roles
	python tools/role_docs.py --check
	python tools/systems.py --check
	python tools/jinja_length.py --check

docs: env
	python tools/role_docs.py

systems: env
	python tools/systems.py

# The module tests talk to a real redis-server on loopback, started by the tests themselves.
host-tools:
	@command -v redis-server >/dev/null || { apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server; }

unit: env host-tools
	pytest --numprocesses=auto tests/unit

molecule: image
	python tools/test_lanes.py $(addprefix molecule:,$(SCENARIOS))

integration: image
	pytest --durations=20 tests/integration

clean:
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache gymfleet-cluster-*.tar.gz
