# The two commands a newcomer needs: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help setup demo test bench-check test-fast lint dvc-yaml prefect-yaml repro promote s3-local doctor experiments rehearse use-kaggle use-demo
.DEFAULT_GOAL := help

help:  ## list the targets (this text)
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(STAMP)  ## make .venv and install the pinned versions (constraints.txt); the other targets do it first

# uv installs the same pinned wheels as pip (constraints.txt) in well under half the time (BENCHMARKS.md row 13);
# --compile-bytecode as pip does, or every import would compile TensorFlow afresh where PYTHONDONTWRITEBYTECODE is set.
$(STAMP): pyproject.toml constraints.txt tasks/docs_assets.py ops/docs_assets.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -c constraints.txt -e ".[test,s3]"
	$(BIN)/python -m ops.docs_assets  # the Data Docs' scripts and styles, from npm (sha512-checked), for offline pages
	touch $(STAMP)

demo: setup  ## run the whole pipeline on the offline synthetic default, then promote its model to production
	$(BIN)/python -m tasks.doctor --check
	$(BIN)/dvc repro
	$(BIN)/python -m ops.promote
	$(BIN)/dvc status

repro: setup  ## dvc repro, after checking DVC's own state files (see `make doctor`)
	$(BIN)/python -m tasks.doctor --check
	$(BIN)/dvc repro

promote: setup  ## make the gated candidate the production model (GTO tag model#prod#N); refuses a failed gate
	$(BIN)/python -m ops.promote

s3-local: setup  ## an S3 API server on 127.0.0.1:5555 (moto, in memory) to try an S3 team remote; prints the commands
	$(BIN)/python -m ops.s3_local $(ARGS)

doctor: setup  ## repair dvc.lock or .dvc/tmp/rwlock left broken by a killed run
	$(BIN)/python -m tasks.doctor

experiments: setup  ## every experiment beside its baseline commit: metrics, gate verdict, Δacc, the params that differ
	$(BIN)/python -m flows.experiments

PYTEST := $(BIN)/python -m pytest -n auto --dist loadfile --no-loadscope-reorder

test: setup system lint  ## lint, then every product test, slow ones included, one process per core (pytest-xdist)
	$(PYTEST) --durations=25 -m "not bench"

bench-check: setup  ## every benchmark at its --small size, its figures checked (CI runs it after `make test`)
	$(PYTEST) --durations=10 -m bench

lint: setup  ## ruff (lint, import order, formatting); dvc.yaml and prefect.yaml match their definitions in code
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m tasks.stages --check
	$(BIN)/python -m flows.deployments --check

dvc-yaml: setup  ## regenerate dvc.yaml from the stage contracts (STAGE in tasks/<stage>.py)
	$(BIN)/python -m tasks.stages

prefect-yaml: setup  ## regenerate prefect.yaml from the deployments' one definition (flows/deployments.py)
	$(BIN)/python -m flows.deployments

test-fast: setup  ## every test but the slow ones (no training, no dvc repro, no Prefect server)
	$(PYTEST) -m "not slow"

rehearse: setup  ## before a real run: configs/kaggle.yaml end to end, data and backbone from loopback fakes (15-20 min)
	$(BIN)/python -m benchmarks.rehearsal $(ARGS)

use-kaggle: setup  ## switch params.yaml to the real configuration (Kaggle data, TF Hub ResNet50 v2, GPU); keeps your edits
	$(BIN)/python -m ops.configs kaggle

use-demo: setup  ## back to the embedded offline default (the committed params.yaml); keeps your edits
	$(BIN)/python -m ops.configs demo

PREFECT_API_URL ?= http://127.0.0.1:4200/api

.PHONY: flow ui serve deploy deploy-team worker system server-postgres
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

DEBIAN_PACKAGES := chromium postgresql iproute2
system:  ## Debian's chromium (the UI test; Playwright's own download fails offline), postgresql and iproute2 (ss), when missing
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	[ -z "$$missing" ] || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; }

server-postgres: setup system  ## the Prefect server and UI on a PostgreSQL database (a team server; see README)
	$(BIN)/python -m flows.postgres $(ARGS)

flow: setup  ## the Prefect flow, with Prefect's temporary local server (nothing to start)
	$(BIN)/python -m flows.pipeline

ui: setup  ## the Prefect server and UI on http://127.0.0.1:4200 (loopback only)
	$(BIN)/prefect server start --host 127.0.0.1 --port 4200

serve: setup  ## serve the scheduled deployments (starts the local server if none answers)
	PREFECT_API_URL=$(PREFECT_API_URL) $(BIN)/python -m flows.serve

deploy: setup  ## the work-pool route: prefect.yaml's deployments on a process pool, and the alerts (ALERT_WEBHOOK_URL)
	PREFECT_API_URL=$(PREFECT_API_URL) $(BIN)/prefect work-pool create local-process --type process --overwrite
	PREFECT_API_URL=$(PREFECT_API_URL) PIPELINE_ROOT=$(CURDIR) $(BIN)/prefect --no-prompt deploy --all
	PREFECT_API_URL=$(PREFECT_API_URL) $(BIN)/python -m flows.events

REPO ?= $(shell git remote get-url origin 2>/dev/null)
BRANCH ?= main
POOL ?= team
GPU_POOL ?= gpu
deploy-team: setup  ## team-retrain: POOL's worker clones REPO@BRANCH, pulls, trains on GPU_POOL, promotes, publishes runs/<run>
	PREFECT_API_URL=$(PREFECT_API_URL) $(BIN)/prefect work-pool create $(POOL) --type process --overwrite
	PREFECT_API_URL=$(PREFECT_API_URL) $(BIN)/prefect work-pool create $(GPU_POOL) --type process --overwrite
	PREFECT_API_URL=$(PREFECT_API_URL) $(BIN)/python -m flows.team $(REPO) --branch $(BRANCH) --pool $(POOL) --gpu-pool $(GPU_POOL)

worker: setup  ## a worker for the process pool of `make deploy`
	PREFECT_API_URL=$(PREFECT_API_URL) $(BIN)/prefect worker start --pool local-process

.PHONY: bench bench-200k
bench: setup  ## every CPU benchmark at its documented size (~30 min on 2 cores); results in benchmarks/results/
	$(BIN)/python -m benchmarks.frozen_phase --mixed-precision
	$(BIN)/python -m benchmarks.input_pipeline
	$(BIN)/python -m benchmarks.scale
	$(BIN)/python -m benchmarks.predict
	$(BIN)/python -m benchmarks.near_duplicates
	$(BIN)/python -m benchmarks.precision
	$(BIN)/python -m benchmarks.rehearsal
	$(BIN)/python -m benchmarks.install  # the only one that needs the package registry

bench-200k: setup  ## the data half (download, validate, preprocess) on 200,000 images (~15 min, ~10 GB of disk)
	$(BIN)/python -m benchmarks.scale --data-half
