# rln-node: the single entry point for people and CI.
#
#   make test      everything CI checks (tools, artifact checks, all Rust tests)
#   make devnet    a local network with a chain, nodes and traffic
#   make lint      rustfmt and clippy, warnings as errors
#   make bench     criterion benchmarks
#   make tools     pinned JavaScript tools (circom2, snarkjs, circomlib, circomlibjs) into tools/
#   make circuits  compile circuits/rln.circom into circuits/build/
#   make zkeys     regenerate the INSECURE development keys in zkeys/ (minutes)

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
CIRCUIT_FLAGS := --r1cs --wasm --O2 -l $(TOOLS)

.PHONY: help system-deps tools circuits zkeys check-artifacts test test-rust lint fmt bench devnet clean-tools

help:
	@sed -n '1,12p' Makefile | sed 's/^# \{0,1\}//'

$(TOOLS_STAMP): tools/package.json tools/package-lock.json
	@command -v npm >/dev/null || { echo "npm is required (Node.js 18+): apt-get install -y nodejs npm" >&2; exit 1; }
	@echo "==> installing pinned JavaScript tools into tools/node_modules"
	cd tools && npm ci --no-audit --no-fund --loglevel=error
	touch $@

tools: system-deps $(TOOLS_STAMP)

# librocksdb-sys generates its bindings with bindgen, which loads libclang at build time.
system-deps:
	@if ! ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/*/libclang*.so* >/dev/null 2>&1; then \
	  echo "==> installing libclang-dev (needed to build RocksDB's bindings)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libclang-dev >/dev/null; \
	fi

# circom2 runs the compiler in a WASI sandbox that sees only the working directory and
# below, so it runs from the repository root with relative paths.
circuits: $(TOOLS_STAMP)
	@echo "==> compiling circuits/rln.circom"
	@mkdir -p circuits/build/tmp
	$(CIRCOM) circuits/rln.circom $(CIRCUIT_FLAGS) -o circuits/build/tmp > circuits/build/tmp/log
	mv circuits/build/tmp/rln.r1cs circuits/build/rln.r1cs
	mv circuits/build/tmp/rln_js/rln.wasm circuits/build/rln.wasm
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
	@rm -rf circuits/build/tmp
	@cd zkeys && sha256sum --quiet -c SHA256SUMS
	@echo "    circuit build and dev keys match their sources"

test: tools check-artifacts test-rust

test-rust:
	@echo "==> cargo test (target dir $(CARGO_TARGET_DIR))"
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

bench: tools
	$(CARGO) bench --bench crypto

devnet:
	@echo "make devnet is not yet available: the relay node and chain sync are still being built" >&2
	@echo "(see the issues 'relay node' and 'one-command devnet'). 'make test' runs what exists." >&2
	@exit 2

clean-tools:
	rm -rf $(TOOLS)
