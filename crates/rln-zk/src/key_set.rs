//! The keys a node proves and verifies with, chosen by name or given as files, and checked
//! to belong together before anything uses them.
//!
//! Two key sets are compiled in:
//! - [`KeySet::Waku`]: the circuit and key Waku's nodes use (RLN v2, depth 20; the reference
//!   implementation's `.arkzkey`, witness graph and verifying key, in `zkeys/waku/`).
//! - [`KeySet::Dev`]: this repository's circuit (`circuits/rln.circom`) with the INSECURE
//!   development key, whose setup anyone can recompute: with it anyone can forge proofs.
//!
//! Files ([`KeyFiles`]) replace parts of the chosen set. Whatever the source, [`load`] refuses
//! a proving key and a verifying key of different setups, and proves and verifies one test
//! message, so a key whose matrices do not fit the witness is refused at start rather than
//! making proofs nobody accepts.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ark_bn254::Bn254;
use ark_groth16::VerifyingKey;
use rln_core::{Identity, MerkleProof, RlnIdentifier, TREE_DEPTH};

use crate::circuit::graph::WitnessGraph;
use crate::circuit::solver::WitnessSolver;
use crate::circuit::Witness;
use crate::error::ZkError;
use crate::keys::{self, ZkeyData};
use crate::{ProofRequest, ProofVerdict, Prover, Verifier};

/// The proving key of the Waku key set (`zkeys/waku/rln_final.arkzkey`).
pub const WAKU_ARKZKEY: &[u8] = include_bytes!("../../../zkeys/waku/rln_final.arkzkey");

/// The witness graph of the Waku circuit (`zkeys/waku/graph.bin`).
pub const WAKU_GRAPH: &[u8] = include_bytes!("../../../zkeys/waku/graph.bin");

/// The verifying key of the Waku key set, snarkjs JSON (`zkeys/waku/verification_key.json`).
pub const WAKU_VERIFYING_KEY_JSON: &str = include_str!("../../../zkeys/waku/verification_key.json");

/// A compiled-in key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeySet {
    /// Waku's RLN v2 circuit and key: proofs interoperate with Waku's nodes.
    #[default]
    Waku,
    /// This repository's circuit with the INSECURE development key.
    Dev,
}

impl KeySet {
    /// The name used in configuration files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Waku => "waku",
            Self::Dev => "dev",
        }
    }

    /// Whether anyone can forge proofs against this set's key.
    pub fn is_insecure(self) -> bool {
        self == Self::Dev
    }

    /// The set's prover (parses the key and precomputes its tables: a second or two).
    pub fn prover(self) -> Result<Prover, ZkError> {
        match self {
            Self::Waku => Prover::new(
                WitnessGraph::from_bytes(WAKU_GRAPH)?,
                ZkeyData::from_bytes(WAKU_ARKZKEY)?,
            ),
            Self::Dev => Prover::dev(),
        }
    }

    /// The set's verifying key.
    pub fn verifying_key(self) -> Result<VerifyingKey<Bn254>, ZkError> {
        keys::snarkjs::verifying_key_from_json(match self {
            Self::Waku => WAKU_VERIFYING_KEY_JSON,
            Self::Dev => keys::DEV_VERIFYING_KEY_JSON,
        })
    }
}

impl fmt::Display for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeySet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "waku" => Ok(Self::Waku),
            "dev" => Ok(Self::Dev),
            other => Err(format!(
                "unknown key set `{other}`: `waku` (Waku's circuit and key) or `dev` (INSECURE development key)"
            )),
        }
    }
}

/// Key files that replace parts of a key set.
#[derive(Debug, Clone, Default)]
pub struct KeyFiles {
    /// A proving key: snarkjs `.zkey` or `.arkzkey`.
    pub zkey: Option<PathBuf>,
    /// The witness graph of the proving key's circuit; without it the circuit is this
    /// repository's.
    pub witness_graph: Option<PathBuf>,
    /// A verifying key: snarkjs JSON or arkworks bytes.
    pub verifying_key: Option<PathBuf>,
}

/// Keys ready to use.
#[derive(Debug)]
pub struct LoadedKeys {
    /// The prover, when one was asked for.
    pub prover: Option<Prover>,
    /// The verifier.
    pub verifier: Verifier,
    /// The verifying key is the INSECURE development key's (by value, wherever it came
    /// from).
    pub insecure: bool,
    /// Where the keys came from, for logs: the set's name or the files.
    pub source: String,
}

fn mismatch(message: String) -> ZkError {
    ZkError::KeyMismatch(message)
}

fn prover_from_files(zkey: &Path, graph: Option<&Path>) -> Result<Prover, ZkError> {
    let data = ZkeyData::from_path(zkey)?;
    let witness: Witness = match graph {
        Some(graph) => WitnessGraph::from_path(graph)?.into(),
        None => {
            let solver = WitnessSolver::rln()?;
            if solver.num_wires() != data.num_wires {
                return Err(mismatch(format!(
                    "the proving key {} is for a circuit of {} wires, not this repository's \
                     circuit ({} wires); give the witness graph of its circuit",
                    zkey.display(),
                    data.num_wires,
                    solver.num_wires()
                )));
            }
            solver.into()
        }
    };
    Prover::new(witness, data).map_err(|err| match err {
        ZkError::KeyMismatch(why) => mismatch(format!(
            "the proving key {} does not fit the witness graph: {why}",
            zkey.display()
        )),
        other => other,
    })
}

/// Loads the keys of `set` with `files` replacing its parts, and checks that they belong
/// together. Without `need_prover` only the verifying key is loaded, except that a proving
/// key file is always loaded and checked whole (its setup against the verifying key, its
/// matrices by a test proof): a key that does not fit is refused at start, not at the
/// first publication after a membership is added.
pub fn load(set: KeySet, files: &KeyFiles, need_prover: bool) -> Result<LoadedKeys, ZkError> {
    if files.witness_graph.is_some() && files.zkey.is_none() {
        return Err(mismatch(
            "a witness graph was given without the proving key of its circuit".into(),
        ));
    }
    let prover_source = match &files.zkey {
        Some(path) => path.display().to_string(),
        None => format!("key set `{set}`"),
    };
    let prover = match (&files.zkey, need_prover) {
        (Some(path), _) => Some(prover_from_files(path, files.witness_graph.as_deref())?),
        (None, true) => Some(set.prover()?),
        (None, false) => None,
    };
    let (vk, vk_source) = match (&files.verifying_key, &prover) {
        (Some(path), _) => (
            keys::verifying_key_from_path(path)?,
            path.display().to_string(),
        ),
        (None, Some(prover)) => (prover.verifying_key().clone(), prover_source.clone()),
        (None, None) => (set.verifying_key()?, format!("key set `{set}`")),
    };
    if let Some(prover) = &prover {
        if prover.verifying_key() != &vk {
            return Err(mismatch(format!(
                "the proving key ({prover_source}) and the verifying key ({vk_source}) come \
                 from different setups: proofs made with one fail under the other"
            )));
        }
    }
    let verifier = Verifier::new(&vk)?;
    if let Some(prover) = &prover {
        self_check(prover, &verifier).map_err(|why| {
            mismatch(format!(
                "a test proof made with the proving key ({prover_source}) does not verify: {why}"
            ))
        })?;
    }
    let insecure = vk == KeySet::Dev.verifying_key()?;
    let source = match (&files.zkey, &files.verifying_key) {
        (None, None) => format!("key set `{set}`"),
        _ => format!("proving key {prover_source}, verifying key {vk_source}"),
    };
    Ok(LoadedKeys {
        prover,
        verifier,
        insecure,
        source,
    })
}

/// Proves one message of a made-up member and verifies it: a proving key whose constraint
/// matrices are not those of the witness's circuit makes proofs that do not verify.
fn self_check(prover: &Prover, verifier: &Verifier) -> Result<(), String> {
    let identity = Identity::from_seed(b"rln-node key self-check");
    let path = MerkleProof {
        leaf_index: 0,
        siblings: vec![rln_core::Fr::from(0u64); TREE_DEPTH],
    };
    let request = ProofRequest::for_signal(
        &identity,
        1,
        0,
        &path,
        b"self-check",
        rln_core::Fr::from(1u64),
        RlnIdentifier::waku(),
    );
    let proof = prover
        .prove(&request, &mut rand::rngs::OsRng)
        .map_err(|e| e.to_string())?;
    match verifier.verify(&proof) {
        ProofVerdict::Valid => Ok(()),
        ProofVerdict::Invalid => {
            Err("its constraint matrices do not match the circuit of the witness".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for set in [KeySet::Waku, KeySet::Dev] {
            assert_eq!(set.name().parse::<KeySet>(), Ok(set));
        }
        assert!("prod"
            .parse::<KeySet>()
            .unwrap_err()
            .contains("unknown key set"));
        assert_eq!(KeySet::default(), KeySet::Waku);
    }

    #[test]
    fn verifier_only_loads_need_no_prover_and_flag_the_dev_key() {
        let waku = load(KeySet::Waku, &KeyFiles::default(), false).unwrap();
        assert!(waku.prover.is_none() && !waku.insecure);
        let dev = load(KeySet::Dev, &KeyFiles::default(), false).unwrap();
        assert!(dev.insecure);
    }

    #[test]
    fn a_graph_without_its_key_is_refused() {
        let files = KeyFiles {
            witness_graph: Some("graph.bin".into()),
            ..KeyFiles::default()
        };
        let err = load(KeySet::Waku, &files, false).unwrap_err().to_string();
        assert!(err.contains("without the proving key"), "{err}");
    }
}
