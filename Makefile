# Tastemaker — the two commands: `make run` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
OBP_VENV ?= .venv-obp
OBP_STAMP := $(OBP_VENV)/.installed-$(shell cat tests/obp/requirements.txt | cksum | cut -d' ' -f1)

# the real datasets (tests and benchmarks that need them skip when these are unset)
export TASTEMAKER_OBD_DIR ?=
export TASTEMAKER_TWEETEVAL_DIR ?=

.PHONY: setup obp-venv stickers-catalog chat-corpus sticker-model device-bundle deploy-schemas run test lint codegen bench capacity clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded,device,beam,ml,peers]'
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

## obp-venv: Open Bandit Pipeline 0.5.7 in its own venv, for the parity test and the OPE benchmark
$(OBP_STAMP): tests/obp/requirements.txt
	@test -x $(OBP_VENV)/bin/python || $(PYTHON) -m venv $(OBP_VENV)
	$(OBP_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(OBP_VENV)/bin/python -m pip install --quiet -r tests/obp/requirements.txt
	$(OBP_VENV)/bin/python -m pip install --quiet --no-deps --ignore-requires-python obp==0.5.7
	@rm -f $(OBP_VENV)/.installed-* && touch $(OBP_STAMP)

obp-venv: $(OBP_STAMP)

## stickers-catalog: every CLDR emoji as a sticker in 10 languages (npm's cldr-annotations-full)
CLDR_VERSION := 48.2.0
CATALOG := data/stickers/cldr-catalog.jsonl
$(CATALOG): $(STAMP)
	npm install --silent --no-audit --no-fund --prefix .cache/cldr cldr-annotations-full@$(CLDR_VERSION)
	$(BIN)/tastemaker stickers import-cldr --cldr .cache/cldr/node_modules/cldr-annotations-full --out $(CATALOG)

stickers-catalog: $(CATALOG)

## chat-corpus: the hand-written chat phrases of data/chat composed into (message, stickers) pairs
CHAT_CORPUS := data/stickers/chat-corpus.jsonl
$(CHAT_CORPUS): $(STAMP) $(wildcard data/chat/*.txt)
	$(BIN)/tastemaker stickers corpus --chat data/chat --out $(CHAT_CORPUS)

chat-corpus: $(CHAT_CORPUS)

## sticker-model: the demo's sticker bundle, trained once on the catalog and the chat corpus with the
## defaults (about 5 minutes on 2 cores, a progress bar on a terminal) and cached; later runs start at once
STICKER_MODEL := .cache/stickers/model
$(STICKER_MODEL)/manifest.json: $(CATALOG) $(CHAT_CORPUS)
	@rm -rf $(STICKER_MODEL).partial
	$(BIN)/tastemaker stickers train --catalog $(CATALOG) --pairs $(CHAT_CORPUS) --out $(STICKER_MODEL).partial
	@rm -rf $(STICKER_MODEL) && mv $(STICKER_MODEL).partial $(STICKER_MODEL)

sticker-model: $(STICKER_MODEL)/manifest.json

## device-bundle: the demo model's device bundle (LiteRT encoder, int8/PQ stickers and head; ≤ 5 MB), which
## serve streams over GetDeviceBundle and `tastemaker device suggest --bundle` answers from
DEVICE_BUNDLE := $(STICKER_MODEL)/device-bundle.zip
$(DEVICE_BUNDLE): $(STICKER_MODEL)/manifest.json
	$(BIN)/tastemaker stickers export-device --model $(STICKER_MODEL) --out $(DEVICE_BUNDLE)

device-bundle: $(DEVICE_BUNDLE)

## deploy-schemas: the Compose Specification's JSON schema, as shipped in docker-compose 1.29.2's wheel
## (the package no longer installs here, its wheel still downloads; only the schema file is used)
COMPOSE_SCHEMA := .cache/schemas/compose_spec.json
$(COMPOSE_SCHEMA): $(STAMP)
	@mkdir -p .cache/schemas
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: docker-compose==1.29.2 -d .cache/schemas
	$(BIN)/python -c "import zipfile; zipfile.ZipFile('.cache/schemas/docker_compose-1.29.2-py2.py3-none-any.whl').extract('compose/config/compose_spec.json', '.cache/schemas')"
	mv .cache/schemas/compose/config/compose_spec.json $(COMPOSE_SCHEMA)

deploy-schemas: $(COMPOSE_SCHEMA)

## run: the whole loop with simulated users — home page and chat (embedded broker and Redis unless
## configured); the first run builds the sticker catalog and model; Ctrl-C stops it
run: setup stickers-catalog sticker-model
	TASTEMAKER_STICKER_MODEL=$${TASTEMAKER_STICKER_MODEL:-$(STICKER_MODEL)} $(BIN)/tastemaker up --demo $(ARGS)

## test: the whole suite against a real Redis and a real Kafka-protocol broker (started by the fixtures)
test: setup obp-venv stickers-catalog deploy-schemas
	$(BIN)/python -m pytest -q $(ARGS)

lint: setup
	$(BIN)/ruff check tastemaker tests
	$(BIN)/ruff format --check tastemaker tests
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint deploy/docker/Dockerfile

## codegen: regenerate tastemaker/v1 from proto/ (a test checks it is fresh)
codegen: setup
	$(BIN)/python -m tastemaker.codegen

## bench: ratios against floors measured in the same run
## capacity: the benchmark runs docs/capacity.md is computed from, then docs/capacity.md (~20 min)
CAPACITY := .cache/capacity
capacity: setup obp-venv stickers-catalog
	$(BIN)/python -m tests.benchmarks.bench_rank_home --json $(CAPACITY)/rank_home.json
	$(BIN)/python -m tests.benchmarks.bench_features --json $(CAPACITY)/features.json
	$(BIN)/python -m tests.benchmarks.bench_learning --decisions 40000 --json $(CAPACITY)/learning.json
	$(BIN)/python -m tests.benchmarks.bench_ope --rounds 200000 --beam-rounds 200000 --json $(CAPACITY)/ope.json
	test ! -d .cache/stickers/model || $(BIN)/python -m tests.benchmarks.bench_stickers --model .cache/stickers/model \
		--sections grpc --json $(CAPACITY)/stickers.json
	$(BIN)/python -m tests.benchmarks.capacity --measured $(CAPACITY) --out docs/capacity.md

bench: setup obp-venv stickers-catalog
	$(BIN)/python -m tests.benchmarks.bench_rank_home $(ARGS)
	$(BIN)/python -m tests.benchmarks.bench_features $(ARGS)
	$(BIN)/python -m tests.benchmarks.bench_cluster_failover
	$(BIN)/python -m tests.benchmarks.bench_ope
	$(BIN)/python -m tests.benchmarks.bench_slate_estimators
	$(BIN)/python -m tests.benchmarks.bench_obd_protocol
	$(BIN)/python -m tests.benchmarks.bench_home_bandit
	$(BIN)/python -m tests.benchmarks.bench_learning
	$(BIN)/python -m tests.benchmarks.bench_retrain
	$(BIN)/python -m tests.benchmarks.bench_stickers
	$(BIN)/python -m tests.benchmarks.bench_soak --minutes 10

clean:
	rm -rf $(VENV) $(OBP_VENV) .pytest_cache .mypy_cache .ruff_cache
