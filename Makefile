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

.PHONY: demo test web browser proto proto-check venv clean bench bench-ann bench-embedding bench-peers bench-serving bench-cluster

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tastebud demo --workdir $(DEMO_DIR)

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

# The homepage website on the demo data: demo data + index (once, in $(DEMO_DIR)), then tastebud
# serve + tastebud web on http://127.0.0.1:$(WEB_PORT); Ctrl-C stops both.
WEB_PORT ?= 8080
web: $(STAMP)
	$(BIN)/tastebud web --demo --workdir $(DEMO_DIR) --port $(WEB_PORT)

# Debian's Chromium for the browser tests (tests/web/test_browser.py; Playwright never downloads
# one). Needs root or sudo; without them the browser tests are skipped, saying why (.ci/run
# installs it and makes a missing browser a failure).
browser:
	bash web/setup-browser.sh || echo "make: Chromium could not be installed; the browser tests will be skipped" >&2

# The one command that regenerates the gRPC code in proto/tastebud/v1 (never edit it by hand).
proto: $(STAMP)
	$(BIN)/python proto/generate.py

# Regenerates into a temporary folder and fails if the committed code differs.
proto-check: $(STAMP)
	$(BIN)/python proto/generate.py --check

# Benchmarks (issue 4): each writes JSON + PNG into bench/results/. Slow; not part of `make test`.
# bench/results/README.md lists what each figure is and the run that produced the committed ones.
ML100K ?= ../shared/data/ml-100k
BENCH_DIR ?= .bench
SCALE_SIZES ?= 100000 300000 1000000

bench: bench-ann bench-embedding bench-serving bench-peers bench-cluster

bench-ann: $(STAMP)
	$(BIN)/python bench/ann.py --dataset text
	$(BIN)/python bench/ann.py --dataset synthetic --items 1000000

bench-embedding: $(STAMP)
	$(BIN)/python bench/embedding.py

# pgvector, Chroma and Milvus Lite go into their own .venv-peers (their pins differ from ours).
bench-peers: $(STAMP)
	bash bench/peers/setup.sh
	$(BIN)/python bench/peers.py

bench-serving: $(STAMP)
	$(BIN)/tastebud build --format movielens --data $(ML100K) --out $(BENCH_DIR)/ml100k --no-progress
	$(BIN)/python bench/serving.py floor --index $(BENCH_DIR)/ml100k
	for n in $(SCALE_SIZES); do \
	  test -f $(BENCH_DIR)/synth-$$n/vectors.npz || $(BIN)/python bench/synthetic.py --items $$n --users 20000 --out $(BENCH_DIR)/synth-$$n || exit 1; \
	  test -e $(BENCH_DIR)/synth-$$n/idx/current || $(BIN)/tastebud build --items $(BENCH_DIR)/synth-$$n/items.csv \
	    --interactions $(BENCH_DIR)/synth-$$n/interactions.csv --vectors $(BENCH_DIR)/synth-$$n/vectors.npz \
	    --retrieval content --shards 4 --out $(BENCH_DIR)/synth-$$n/idx --no-progress || exit 1; \
	done
	$(BIN)/python bench/serving.py overhead --index $(BENCH_DIR)/synth-1000000/idx
	$(BIN)/python bench/serving.py scaling $(foreach n,$(SCALE_SIZES),--index $(BENCH_DIR)/synth-$(n)/idx)

# Issue 5: the router hop over 1/2/4 shard processes vs the in-process server, and memory at 1M.
bench-cluster: $(STAMP)
	$(BIN)/python bench/cluster.py --data $(ML100K) --work $(BENCH_DIR)

clean:
	rm -rf $(VENV) $(DEMO_DIR) build *.egg-info
