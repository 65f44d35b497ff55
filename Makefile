# The two commands a newcomer needs: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast repro clean-outputs use-kaggle use-demo

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: setup  ## run the whole pipeline on the offline synthetic default
	$(BIN)/dvc repro
	$(BIN)/dvc status

test: setup  ## every test, slow ones included
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

use-kaggle:  ## switch params.yaml to the real configuration (Kaggle data, TF Hub ResNet50 v2, GPU)
	cp configs/kaggle.yaml params.yaml

use-demo:  ## back to the embedded offline default (the committed params.yaml)
	git checkout -- params.yaml
