//! Shared fixtures of this binary: the interop vectors and one prover. Paths, tools and
//! processes come from the test kit.

use std::sync::OnceLock;

use rln_core::{fr_from_le_slice, Fr};
use rln_zk::Prover;
use serde_json::Value;

pub use rln_testkit::node::run;
pub use rln_testkit::paths::{interop_dir, node_tool, repo};

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

/// The prover of the Waku key set (the one nodes use by default), built once.
pub fn waku_prover() -> &'static Prover {
    static PROVER: OnceLock<Prover> = OnceLock::new();
    PROVER.get_or_init(|| {
        rln_zk::KeySet::Waku
            .prover()
            .expect("the Waku prover loads")
    })
}

/// Runs `test_name` of this test binary as a child process with `env` set to `dir` (the
/// test's child mode), lets it work for `work`, kills it with SIGKILL and waits for it.
pub fn run_then_sigkill(
    test_name: &str,
    env: &str,
    dir: &std::path::Path,
    work: std::time::Duration,
) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = std::process::Command::new(exe)
        .args([test_name, "--exact", "--test-threads=1", "--nocapture"])
        .env(env, dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("the child starts");
    std::thread::sleep(work);
    let exited = child.try_wait().expect("the child's status");
    assert!(exited.is_none(), "the child stopped by itself: {exited:?}");
    child.kill().expect("SIGKILL");
    child.wait().expect("the child is reaped");
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
