# CityLedger — the two commands a newcomer needs: `make devnet` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SEEDS ?= 1000
VALIDATORS ?= 4

.PHONY: install test test-pure test-compiled compile compile-strict clean-compiled lint typecheck unit devnet devnet-down sim properties bench-core bench faults soak multihost clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# -qq: pip shows errors only (not the build backend's notices); one line says what runs
$(STAMP): pyproject.toml | $(BIN)/python
	@echo "installing cityledger and its dependencies into $(VENV) ..."
	@$(BIN)/pip install -qq --upgrade pip
	@$(BIN)/pip install -qq -e '.[dev]'
	@touch $(STAMP)
	@echo "installed: $(BIN)/cityledger"

install: $(STAMP)

## make test: compile the hot modules (pure Python if that fails), lint, type-check and run
## the whole suite (< 10 minutes)
test: compile lint typecheck unit

## make test-pure: the same suite on the pure-Python modules (the compiled ones stay built)
test-pure: lint typecheck
	CITYLEDGER_PURE=1 $(BIN)/pytest -q

## make test-compiled: the suite on the compiled modules; fails if they do not build or load
test-compiled: compile-strict lint typecheck
	CITYLEDGER_REQUIRE_COMPILED=1 $(BIN)/pytest -q

## make compile: build the hot modules with mypyc in place (again only if a source changed)
compile: $(STAMP)
	$(BIN)/python mypyc_build.py

compile-strict: $(STAMP)
	$(BIN)/python mypyc_build.py --strict

## make clean-compiled: remove the compiled modules; everything runs as pure Python
clean-compiled:
	$(PY) mypyc_build.py --clean

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q --durations=15

## make devnet: a local 4-validator network with the demo scenario loaded
devnet: $(STAMP)
	$(BIN)/cityledger devnet up --validators $(VALIDATORS) --demo --detach
	@echo
	@echo "The network keeps running in the background. Stop it with: make devnet-down"

devnet-down: $(STAMP)
	$(BIN)/cityledger devnet down

## make sim SEEDS=N: N more seeded consensus scenarios in the simulator
sim: $(STAMP)
	$(BIN)/python -m tests.sim.run --seeds $(SEEDS)

## make properties EXAMPLES=N: the contract property tests with N examples each
EXAMPLES ?= 2000
properties: $(STAMP)
	CITYLEDGER_PROPERTY_EXAMPLES=$(EXAMPLES) $(BIN)/pytest -q \
		tests/unit/contracts/test_properties_*.py --hypothesis-show-statistics

## make bench-core: state tree, Merkle log and consensus core figures
bench-core: $(STAMP)
	$(BIN)/python -m benchmarks.core

## make bench: a 4-validator network under the realistic workload; figures to bench.json
bench: $(STAMP)
	$(BIN)/cityledger bench run --json bench.json

## make faults: the full fault-injection matrix (the quick set runs in make test)
faults: $(STAMP)
	CITYLEDGER_FULL_FAULTS=1 $(BIN)/pytest -q -rxXs tests/e2e tests/multihost

## make soak MINUTES=30: random faults under load, then every invariant
MINUTES ?= 30
soak: $(STAMP)
	$(BIN)/python -m tests.e2e.soak --minutes $(MINUTES)

## make multihost: validators in network namespaces with delay and loss between them (root)
## 4 and 7 validators at 20 and 60 ms one-way, 1 % loss; figures to multihost.json (~8 min)
multihost: $(STAMP)
	$(BIN)/python -m tests.multihost.rehearsal --validators 4,7 --delays 20,60 --loss 1 \
		--json multihost.json

clean: clean-compiled
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build/mypyc
