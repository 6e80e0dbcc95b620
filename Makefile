# The README's commands. `make run` and `make test` set up whatever is missing first.
VENV  ?= .venv
TOOLS ?= .tools
ARGS  ?=

export PATH := $(CURDIR)/$(TOOLS)/bin:$(CURDIR)/$(VENV)/bin:$(PATH)

STAMP := $(VENV)/.openforager-installed

.PHONY: setup run test check fix bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt deploy/setup.sh
	VENV=$(VENV) TOOLS=$(TOOLS) bash deploy/setup.sh
	touch $@

run: setup
	forager run $(ARGS)

test: setup
	python -m pytest

check: setup
	ruff format --check .
	ruff check .
	mypy
	lint-imports

bench: setup
	python -m bench.tick
	python -m bench.telemetry_overhead
	python -m bench.http_load
	python -m bench.decision --threads 1,2
	python -m bench.footprint
	python -m bench.density
	python -m bench.density --prompt compact
	python -m bench.decision --threads 2 --prompts compact --weights q4_1,q8_0 --trades 0.3
	python -m bench.density --prompt compact --weights q8_0 --agents 4,6,8 --modes forager
	python -m bench.weights
	python -m bench.swaps

fix: setup
	ruff format .
	ruff check --fix .

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache
