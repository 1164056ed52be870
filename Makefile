# `make run` and `make test` set everything up themselves on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
NODES ?= 5
STAMP := $(VENV)/.installed

.PHONY: run test lint bench-propagation clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,sim]'
	touch $(STAMP)

run: $(STAMP)  ## a local cluster of $(NODES) nodes, with a write shown spreading
	$(BIN)/gossip-cluster --nodes $(NODES) --demo

test: $(STAMP)  ## the whole suite, what CI runs
	bash scripts/install-test-deps.sh  # Debian packages some tests need (skipped, saying why, without root)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=15  # two processes, each taking whole files; the slowest tests named
	$(BIN)/ruff check gossip node scripts simulations tests examples benchmarks chaos
	$(BIN)/mypy

lint: $(STAMP)
	$(BIN)/ruff check gossip node scripts simulations tests examples benchmarks chaos
	$(BIN)/mypy

bench-propagation: $(STAMP)  ## time for a write to reach all nodes, eager push on and off
	$(BIN)/python -m scripts.bench_propagation --nodes 10 --writes 60

.PHONY: bench bench-quick
bench: $(STAMP)  ## read path, propagation, idle cost, write load, memory, apply cost vs baselines -> docs/benchmarks/
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks

bench-quick: $(STAMP)  ## the same, reduced (about 5 minutes) -> docs/benchmarks/quick/
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks --quick

.PHONY: bench-probes
bench-probes: $(STAMP)  ## direct probes against phi alone on 50 real nodes over 5 namespace hosts: a kill -9, 2 s SIGSTOPs, 10 % loss (about 7 minutes, root) -> docs/benchmarks/probes/
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	bash scripts/install-test-deps.sh
	$(BIN)/python -m benchmarks --only probes

SEEDS ?= 0-9999
.PHONY: check-long check-theory
check-long: $(STAMP)  ## the fault search over $(SEEDS), and the routine operations at the defaults
	$(BIN)/gossip-sim check --seeds $(SEEDS) --workers 2 --shrink
	$(BIN)/gossip-sim routine
	$(BIN)/gossip-sim routine --at-defaults

check-theory: $(STAMP)  ## every case of the reference table, up to N=1000 (about 15 minutes)
	$(BIN)/gossip-sim theory

FUZZ_EXAMPLES ?= 1000
.PHONY: fuzz
fuzz: $(STAMP)  ## schemathesis and the gossip-body fuzz harness, $(FUZZ_EXAMPLES) examples each
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q \
		tests/processes/test_schemathesis.py tests/node/test_fuzz_gossip.py --hypothesis-show-statistics

.PHONY: test-limits-peers
test-limits-peers: $(STAMP)  ## the limits package's and slowapi's own tests against gossip:// (SLOWAPI_TESTS=<checkout> for slowapi's)
	$(BIN)/python -m pip install --quiet -e '.[peers]'
	$(BIN)/python -m scripts.limits_peers

.PHONY: test-recipes-long
test-recipes-long: $(STAMP)  ## the recipes with real workers: 20 s of job ticks (make test: 3), SSE cut-off
	SINGLETON_SECONDS=20 RECIPES_LONG=1 $(BIN)/python -m pytest -q \
		tests/node/test_jobs.py tests/node/test_watch.py -k "exactly_one_worker or sse"

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache *.egg-info

SEEDS_CHAOS ?= 0-19
.PHONY: chaos
chaos: $(STAMP)  ## real nodes on namespace hosts under seeded faults, each run checked (about 25 minutes, root) -> docs/RELIABILITY.md
	bash scripts/install-test-deps.sh
	$(BIN)/python -m chaos --seeds $(SEEDS_CHAOS) --report docs/RELIABILITY.md

.PHONY: detect
detect: $(STAMP)  ## direct probes (R23): a crash seen dead, false marks under loss, pauses and load, at 10, 100 and 1,000 nodes (about 35 minutes)
	$(BIN)/gossip-sim detect --nodes 10,100,1000

.PHONY: explore
explore: $(STAMP)  ## every interleaving of the lifecycle rules at a small scope, in each grain and with a cut (about 20 CPU minutes) -> out/explore/
	status=0; for bound in "--grain tick --depth 6" "--grain message --depth 5" "--grain round --depth 4" "--grain round --depth 3 --cuts 1"; do \
		$(BIN)/python -m simulations.explore $$bound || status=1; done; exit $$status
