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
