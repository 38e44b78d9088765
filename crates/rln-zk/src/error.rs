//! Errors of proving, verification set-up and proof decoding.

use thiserror::Error;

use rln_core::RlnError;

/// Why bytes claimed to be a proof or its public signals could not be read. Every variant
/// means the sender is at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// A public signal (snarkjs JSON) is not a decimal below the scalar field modulus.
    #[error("invalid public signal: {0}")]
    PublicSignal(String),
    /// The Groth16 proof is not 128 bytes of valid compressed curve points in the right
    /// subgroups.
    #[error("malformed Groth16 proof bytes: {0}")]
    MalformedProof(String),
}

/// Errors of loading keys and circuits, and of proving.
#[derive(Debug, Error)]
pub enum ZkError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A snarkjs `.zkey` file could not be parsed.
    #[error("invalid zkey: {0}")]
    Zkey(String),
    /// A verifying key (JSON or arkworks bytes) could not be parsed.
    #[error("invalid verifying key: {0}")]
    VerifyingKey(String),
    /// The witness generator (circom WebAssembly) failed to load or to run.
    #[error("witness generation failed: {0}")]
    Witness(String),
    /// The circuit, the proving key and the verifying key do not belong together.
    #[error("key mismatch: {0}")]
    KeyMismatch(String),
    /// The key has a number of public inputs other than the RLN circuit's five.
    #[error("the key has {got} public inputs; the RLN circuit has {expected}")]
    PublicInputCount {
        /// The RLN circuit's count (5).
        expected: usize,
        /// The key's count.
        got: usize,
    },
    /// The inputs break an RLN rule (message id at or above the limit, limit out of range).
    #[error(transparent)]
    Rln(#[from] RlnError),
    /// The Merkle path does not fit the circuit.
    #[error("the Merkle path has {got} levels; the circuit needs {expected}")]
    PathDepth {
        /// The circuit's depth.
        expected: usize,
        /// The path's length.
        got: usize,
    },
    /// The circuit's constraint system or wire names could not be read or solved.
    #[error("invalid circuit: {0}")]
    Circuit(String),
    /// The inputs do not satisfy the circuit.
    #[error("the inputs do not satisfy the circuit: {0}")]
    Unsatisfied(String),
    /// A prepared membership was used with another member, limit or Merkle path.
    #[error("the prepared membership does not match the request: {0}")]
    PreparedMismatch(&'static str),
    /// The Groth16 prover failed.
    #[error("proving failed: {0}")]
    Proving(String),
}
