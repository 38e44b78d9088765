#!/usr/bin/env bash
# Makes the INSECURE development proving and verifying keys for circuits/build/rln.r1cs.
#
# Every step is deterministic: phase 1 and phase 2 each receive one public "beacon"
# contribution from a fixed hash instead of secret randomness. Anyone can recompute the
# toxic waste from this file, so these keys prove nothing about honesty of a prover:
# they exist so that the devnet and the tests are reproducible. Production nodes load a
# ceremony zkey by path.
set -euo pipefail
cd "$(dirname "$0")/.."

snarkjs=tools/node_modules/.bin/snarkjs
r1cs=circuits/build/rln.r1cs
out=zkeys
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 2^13 = 8192 >= 5816 constraints + public signals.
power=13
beacon_ptau=72c6f2e9d1b8a5c4e3f20718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c
beacon_zkey=9f8e7d6c5b4a39281706f5e4d3c2b1a0918273645546372819a0b1c2d3e4f5a6

step() { printf '  [dev keys] %s\n' "$*"; }

step "phase 1: new powers of tau (2^$power)"
$snarkjs powersoftau new bn128 $power "$tmp/pot_0.ptau" > /dev/null
step "phase 1: public beacon contribution"
$snarkjs powersoftau beacon "$tmp/pot_0.ptau" "$tmp/pot_1.ptau" $beacon_ptau 10 \
  -n="rln-node INSECURE dev beacon" > /dev/null
step "phase 1: prepare phase 2 (takes a few minutes)"
$snarkjs powersoftau prepare phase2 "$tmp/pot_1.ptau" "$tmp/pot_final.ptau" > /dev/null
step "phase 2: circuit-specific setup"
$snarkjs groth16 setup "$r1cs" "$tmp/pot_final.ptau" "$tmp/rln_0.zkey" > /dev/null
step "phase 2: public beacon contribution"
$snarkjs zkey beacon "$tmp/rln_0.zkey" "$out/rln_dev_insecure.zkey" $beacon_zkey 10 \
  -n="rln-node INSECURE dev beacon" > /dev/null
step "exporting the verifying key"
$snarkjs zkey export verificationkey "$out/rln_dev_insecure.zkey" "$out/verification_key.json" > /dev/null

(cd "$out" && sha256sum rln_dev_insecure.zkey verification_key.json ../circuits/build/rln.r1cs ../circuits/build/rln.wasm > SHA256SUMS)
step "done: $out/rln_dev_insecure.zkey, $out/verification_key.json, $out/SHA256SUMS"
