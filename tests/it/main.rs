//! Integration tests of the rln-node workspace, one binary for link time.

mod archive;
mod batch;
mod chain;
mod common;
mod cross_tool;
mod db;
mod db_crash;
mod edge;
mod fuzz_seeds;
mod hardening;
mod in_process;
mod interop;
mod layers;
mod native_witness;
mod poseidon_circomlibjs;
mod relay;
mod store;
mod zk_errors;
