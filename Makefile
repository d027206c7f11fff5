# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# Each creates .venv when it is missing (torch==2.13.0 CPU first, then tastebud with its dev
# extras) and does nothing extra when it is there.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= .demo

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test proto proto-check venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tastebud demo --workdir $(DEMO_DIR)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The one command that regenerates the gRPC code in proto/tastebud/v1 (never edit it by hand).
proto: $(STAMP)
	$(BIN)/python proto/generate.py

# Regenerates into a temporary folder and fails if the committed code differs.
proto-check: $(STAMP)
	$(BIN)/python proto/generate.py --check

clean:
	rm -rf $(VENV) $(DEMO_DIR) build *.egg-info
