//! Shared fixtures: repository paths, the interop vectors, one prover for the whole binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use rln_core::{fr_from_le_slice, Fr};
use rln_zk::Prover;
use serde_json::Value;

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/interop/zerokit-v2.0.2`, or `$RLN_INTEROP_DIR`.
pub fn interop_dir() -> PathBuf {
    std::env::var_os("RLN_INTEROP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/interop/zerokit-v2.0.2"))
}

pub fn vectors() -> &'static Value {
    static VECTORS: OnceLock<Value> = OnceLock::new();
    VECTORS.get_or_init(|| {
        let path = interop_dir().join("vectors.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text).expect("vectors.json is JSON")
    })
}

/// The dev-key prover, built once (parsing the proving key takes a second).
pub fn prover() -> &'static Prover {
    static PROVER: OnceLock<Prover> = OnceLock::new();
    PROVER.get_or_init(|| Prover::dev().expect("the dev prover loads"))
}

/// A field element given as `{le_hex, be_hex, dec}`.
pub fn fr(value: &Value) -> Fr {
    let hex = value["le_hex"].as_str().expect("le_hex");
    fr_from_le_slice(&hex::decode(hex).expect("hex")).expect("canonical")
}

pub fn fr_hex(value: &Value) -> Fr {
    fr_from_le_slice(&hex::decode(value.as_str().expect("hex string")).expect("hex"))
        .expect("canonical")
}

pub fn bytes(value: &Value) -> Vec<u8> {
    hex::decode(value.as_str().expect("hex string")).expect("hex")
}

/// A pinned JavaScript tool installed by `make tools`.
pub fn node_tool(name: &str) -> PathBuf {
    let path = repo().join("tools/node_modules/.bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `make tools` (make test does it)",
        path.display()
    );
    path
}

/// Runs a command and returns (success, stdout + stderr).
pub fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("the command starts");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
