# Tastemaker — the two commands: `make run` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup run test lint codegen bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded,beam]'
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

## run: the whole loop with simulated users (embedded broker and Redis unless configured); Ctrl-C stops it
run: setup
	$(BIN)/tastemaker up --demo $(ARGS)

## test: the whole suite against a real Redis and a real Kafka-protocol broker (started by the fixtures)
test: setup
	$(BIN)/python -m pytest -q $(ARGS)

lint: setup
	$(BIN)/ruff check tastemaker tests
	$(BIN)/ruff format --check tastemaker tests
	$(BIN)/mypy

## codegen: regenerate tastemaker/v1 from proto/ (a test checks it is fresh)
codegen: setup
	$(BIN)/python -m tastemaker.codegen

## bench: ratios against floors measured in the same run
bench: setup
	$(BIN)/python -m tests.benchmarks.bench_rank_home $(ARGS)
	$(BIN)/python -m tests.benchmarks.bench_features $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
