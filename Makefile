# rln-node: the single entry point for people and CI.
#
#   make test      everything CI checks (tools, artifact checks, all Rust tests)
#   make devnet    a local network with a chain, nodes and traffic (DURATION=60 for a scripted run)
#   make chaos     the devnet with faults: kill -9 nodes, restart anvil, reorgs (CHAOS_DURATION=120)
#   make lint      rustfmt and clippy, warnings as errors
#   make bench     criterion benchmarks
#   make bench-throughput  relay throughput of rln-node processes under an outside load
#   make simulate  100 rln-nodes in one process: propagation, gossip bytes, spam containment (PNG)
#   make bench-compare  rln-node and the reference (zerokit rln v2.0.2) side by side
#   make tools     pinned JavaScript tools (circom2, snarkjs, circomlibjs, forge, anvil, solc) into tools/
#   make circuits  compile circuits/rln.circom into circuits/build/
#   make zkeys     regenerate the INSECURE development keys in zkeys/ (minutes)
#   make contracts rebuild contracts/ (Poseidon hashers, forge build, artifacts/)
#   make contracts-test  forge tests of the membership contract
#   make fuzz-smoke  every fuzz target for a few seconds (part of `make test`)
#   make fuzz      a longer fuzzing run (FUZZ_SECONDS=60 per target, FUZZ_TARGETS="a b" for some)

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Reused across runs and clones: a cold build takes many minutes on a small machine.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/rln-node/target
CARGO ?= cargo

TOOLS := tools/node_modules
TOOLS_STAMP := $(TOOLS)/.installed
CIRCOM := $(TOOLS)/.bin/circom2
SNARKJS := $(TOOLS)/.bin/snarkjs
CIRCUIT_FLAGS := --r1cs --wasm --sym --O2 -l $(TOOLS)
# The symbol file reduced to the wires that survive simplification: `wire,name` per line.
WIRE_NAMES := awk -F, '$$2 >= 0 { print $$2 "," $$4 }'
# Foundry from npm (absolute paths: forge runs inside contracts/, where foundry.toml's
# `solc = "./solc-shim"` is resolved against the working directory).
FORGE := $(CURDIR)/$(TOOLS)/@foundry-rs/forge-linux-amd64/bin/forge
ANVIL := $(CURDIR)/$(TOOLS)/@foundry-rs/anvil-linux-amd64/bin/anvil

.PHONY: help system-deps tools circuits zkeys poseidon-constants check-artifacts test test-rust lint fmt bench bench-throughput bench-compare simulate devnet chaos clean-tools

help:
	@awk '!/^#/ { exit } { sub(/^# ?/, ""); print }' Makefile

$(TOOLS_STAMP): tools/package.json tools/package-lock.json
	@command -v npm >/dev/null || { echo "npm is required (Node.js 18+): apt-get install -y nodejs npm" >&2; exit 1; }
	@echo "==> installing pinned JavaScript tools into tools/node_modules"
	cd tools && npm ci --no-audit --no-fund --loglevel=error
	touch $@

tools: system-deps $(TOOLS_STAMP)

# librocksdb-sys generates its bindings with bindgen, which loads libclang at build time.
# PostgreSQL's server: the Store archive's tests run against a real one of their own
# (crates/rln-testkit/src/postgres.rs), started from Debian's binaries, never the system's
# service.
system-deps:
	@if ! ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/*/libclang*.so* >/dev/null 2>&1; then \
	  echo "==> installing libclang-dev (needed to build RocksDB's bindings)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libclang-dev >/dev/null; \
	fi
	@if ! ls /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf >/dev/null 2>&1; then \
	  echo "==> installing fonts-dejavu-core (the text of the network simulation's plot)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq fonts-dejavu-core >/dev/null; \
	fi
	@if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then \
	  echo "==> installing postgresql (the Store archive's tests start a server of their own)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; \
	fi

# circom2 runs the compiler in a WASI sandbox that sees only the working directory and
# below, so it runs from the repository root with relative paths.
circuits: $(TOOLS_STAMP)
	@echo "==> compiling circuits/rln.circom"
	@mkdir -p circuits/build/tmp
	$(CIRCOM) circuits/rln.circom $(CIRCUIT_FLAGS) -o circuits/build/tmp > circuits/build/tmp/log
	mv circuits/build/tmp/rln.r1cs circuits/build/rln.r1cs
	mv circuits/build/tmp/rln_js/rln.wasm circuits/build/rln.wasm
	$(WIRE_NAMES) circuits/build/tmp/rln.sym > circuits/build/rln.wires
	$(CIRCOM) --version | tr -d '\r' > circuits/build/COMPILER
	grep -E 'constraints|inputs|outputs|wires' circuits/build/tmp/log | sed 's/\x1b\[[0-9;]*m//g' >> circuits/build/COMPILER
	rm -rf circuits/build/tmp
	@cat circuits/build/COMPILER

zkeys: $(TOOLS_STAMP)
	@echo "==> making the INSECURE development keys (deterministic; a few minutes)"
	bash circuits/make-dev-keys.sh

# The committed circuit build and keys must be what the sources produce: recompile the
# circuit (seconds) and compare, and check the keys against their checksums.
check-artifacts: $(TOOLS_STAMP)
	@echo "==> checking committed circuit artifacts and dev keys"
	@rm -rf circuits/build/tmp && mkdir -p circuits/build/tmp
	@$(CIRCOM) circuits/rln.circom $(CIRCUIT_FLAGS) -o circuits/build/tmp > /dev/null
	@cmp circuits/build/tmp/rln.r1cs circuits/build/rln.r1cs || { echo "circuits/build/rln.r1cs is stale: run 'make circuits zkeys'" >&2; exit 1; }
	@cmp circuits/build/tmp/rln_js/rln.wasm circuits/build/rln.wasm || { echo "circuits/build/rln.wasm is stale: run 'make circuits'" >&2; exit 1; }
	@$(WIRE_NAMES) circuits/build/tmp/rln.sym | cmp - circuits/build/rln.wires || { echo "circuits/build/rln.wires is stale: run 'make circuits'" >&2; exit 1; }
	@rm -rf circuits/build/tmp
	@cd zkeys && sha256sum --quiet -c SHA256SUMS
	@cd zkeys/waku && sha256sum --quiet -c SHA256SUMS
	@node tools/gen-poseidon-opt.mjs | cmp - crates/rln-bn254/src/poseidon/constants.rs || { echo "crates/rln-bn254/src/poseidon/constants.rs is stale: run 'make poseidon-constants'" >&2; exit 1; }
	@echo "    circuit build, dev keys, Waku key set and Poseidon constants match their sources"

# circomlibjs's optimised Poseidon constants as Rust (rln-bn254 parses them once).
poseidon-constants: $(TOOLS_STAMP)
	node tools/gen-poseidon-opt.mjs > crates/rln-bn254/src/poseidon/constants.rs

test: tools check-artifacts check-contracts contracts-test test-rust fuzz-smoke

test-rust:
	@echo "==> cargo test (target dir $(CARGO_TARGET_DIR))"
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc

# The membership contract: circomlibjs generates the Poseidon hashers, forge (offline, through
# contracts/solc-shim and the npm solc) compiles, and the compact artifacts that the Rust side
# binds with alloy's sol! are written to contracts/artifacts/. Always a full build (--force), so
# the bytecode never depends on what an incremental build happened to recompile.
.PHONY: contracts contracts-test check-contracts
contracts: $(TOOLS_STAMP)
	@echo "==> generating Poseidon hashers and building contracts/"
	node contracts/script/gen-poseidon.js contracts/generated contracts/artifacts
	cd contracts && $(FORGE) build --force --quiet
	node contracts/script/export-artifact.js contracts/out contracts/artifacts
	@echo "    wrote contracts/artifacts/{RlnMembership,PoseidonT2,PoseidonT3}.json"

contracts-test: $(TOOLS_STAMP)
	@echo "==> forge test (contracts/)"
	@cd contracts && if out=$$($(FORGE) test 2>&1); then \
	  grep -E '^Ran [0-9]+ test suites? ' <<<"$$out"; \
	else \
	  printf '%s\n' "$$out" >&2; exit 1; \
	fi

# The committed generated code and artifacts must be what the sources produce: rebuild
# everything into a temporary directory (a fresh forge cache, so a full build) and compare.
check-contracts: $(TOOLS_STAMP)
	@echo "==> checking committed contract artifacts"
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	node contracts/script/gen-poseidon.js "$$tmp/generated" "$$tmp/artifacts"; \
	( cd contracts && $(FORGE) build --force --quiet --out "$$tmp/out" --cache-path "$$tmp/cache" ); \
	node contracts/script/export-artifact.js "$$tmp/out" "$$tmp/artifacts"; \
	diff -rq contracts/generated "$$tmp/generated" && diff -rq contracts/artifacts "$$tmp/artifacts" \
	  || { echo "contracts/generated or contracts/artifacts is stale: run 'make contracts'" >&2; exit 1; }
	@echo "    contract artifacts match their sources"

# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of the decoders of network input and of the
# files a user passes: fuzz/ (its own workspace), seeds in fuzz/seeds/, fuzz/fuzz.sh does the
# work. The stable toolchain builds it (RUSTC_BOOTSTRAP, no sanitizer) into its own target
# dir, linking the RocksDB that the workspace build compiled: in `make test`, fuzz-smoke comes
# after test-rust (the order of `test`'s prerequisites), so that build exists by then.
CARGO_FUZZ_VERSION := 0.13.2
CARGO_FUZZ_ROOT := tools/cargo-fuzz
CARGO_FUZZ := $(CARGO_FUZZ_ROOT)/bin/cargo-fuzz
CARGO_FUZZ_STAMP := $(CARGO_FUZZ_ROOT)/.installed-$(CARGO_FUZZ_VERSION)
FUZZ_TARGET_DIR ?= $(HOME)/.cache/rln-node/fuzz-target
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
FUZZ_ENV := CARGO_FUZZ=$(CURDIR)/$(CARGO_FUZZ) FUZZ_TARGET_DIR=$(FUZZ_TARGET_DIR) \
  MAIN_TARGET_DIR=$(CARGO_TARGET_DIR)

.PHONY: fuzz-tool fuzz-build fuzz-smoke fuzz fuzz-seeds

# Built in a temporary directory (not the workspace's target dir, which must not see other
# flags), installed into tools/.
$(CARGO_FUZZ_STAMP):
	@echo "==> installing cargo-fuzz $(CARGO_FUZZ_VERSION) into $(CARGO_FUZZ_ROOT)"
	env -u CARGO_TARGET_DIR $(CARGO) install --locked --quiet --force --root $(CARGO_FUZZ_ROOT) \
	  cargo-fuzz --version $(CARGO_FUZZ_VERSION)
	touch $@

fuzz-tool: system-deps $(CARGO_FUZZ_STAMP)

fuzz-build: fuzz-tool
	$(FUZZ_ENV) bash fuzz/fuzz.sh build

fuzz-smoke: fuzz-build
	$(FUZZ_ENV) bash fuzz/fuzz.sh smoke $(FUZZ_SMOKE_SECONDS) $(FUZZ_TARGETS)

fuzz: fuzz-build
	$(FUZZ_ENV) bash fuzz/fuzz.sh run $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Rewrites fuzz/seeds/ with the workspace's encoders (tests/it/fuzz_seeds.rs checks them);
# built as `make test` builds (one filter over every target), so RocksDB is not compiled again.
fuzz-seeds:
	RLN_WRITE_FUZZ_SEEDS=1 $(CARGO) test --workspace --all-targets fuzz_seeds

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# The throughput bench drives release `rln-node run` processes: they are built first.
bench: tools
	$(CARGO) build --release -p rln-node --bin rln-node
	$(CARGO) bench --benches

# Relay throughput, latency and proof floods: the load generator (the bench) in one process,
# the nodes under test in others (the first run proves a pool of messages, minutes, kept in
# $(CARGO_TARGET_DIR)/rln-load-pool).
bench-throughput: tools
	$(CARGO) build --release -p rln-node --bin rln-node
	$(CARGO) bench --bench throughput

# make simulate                          100 nodes, mesh degrees 6 and 3
# make simulate SIM_ARGS="--nodes 200 --rate 40 --degrees 8,4"
# Writes report.md and propagation.png under $(CARGO_TARGET_DIR)/simulate/.
SIM_ARGS ?=
simulate: tools
	$(CARGO) bench --bench simulate -- $(SIM_ARGS)

# Builds the reference implementation (zerokit's rln crate) once, then prints one table.
bench-compare: tools
	$(CARGO) bench --features compare --bench compare

# make devnet                  runs until Ctrl-C, with a live summary
# make devnet DURATION=60      a scripted run: exits 0 only if the spammer was caught
# make devnet NODES=6 DEVNET_ARGS="--epoch-secs 20"
NODES ?= 4
DURATION ?=
DEVNET_ARGS ?=
# The devnet is built exactly as `make test` builds (same profile, every target, so cargo
# resolves the same features), so the two commands share one build of RocksDB and the rest:
# `--bins` alone resolves the build tools' features differently and rebuilds RocksDB.
devnet: tools
	@echo "==> building rln-node and rln-devnet (the first build takes many minutes)"
	$(CARGO) build --workspace --all-targets
	$(CARGO_TARGET_DIR)/debug/rln-devnet --nodes $(NODES) $(if $(DURATION),--duration $(DURATION)) \
	  --anvil $(ANVIL) $(DEVNET_ARGS)

# make chaos                   120 s of traffic with a fault every 8 s, then the verdict (exit 0
#                              only if every root equals the contract's, no honest message was
#                              lost by a node that was up, no spam beyond the limit was accepted)
# make chaos CHAOS_DURATION=300 DEVNET_ARGS="--chaos-every 5"
CHAOS_DURATION ?= 120
chaos: tools
	@echo "==> building rln-node and rln-devnet (the first build takes many minutes)"
	$(CARGO) build --workspace --all-targets
	$(CARGO_TARGET_DIR)/debug/rln-devnet --nodes $(NODES) --duration $(CHAOS_DURATION) --chaos \
	  --dir target/chaos --anvil $(ANVIL) $(DEVNET_ARGS)

clean-tools:
	rm -rf $(TOOLS)
