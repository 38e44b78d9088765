//! The RLN circuit (`circuits/rln.circom`): its inputs, its constraint system and the witness
//! that satisfies it.
//!
//! - [`r1cs`]: circom's `.r1cs` constraint system and wire names.
//! - [`solver`]: the native witness, solved from the constraint system.
//! - `WitnessGenerator` (feature `wasm-witness`): circom's WebAssembly witness generator,
//!   run by wasmer through `ark-circom`; kept as the oracle the native witness is tested
//!   against, and off by default so the node does not link a WebAssembly runtime.

use rln_core::{Fr, MerkleProof};

pub mod r1cs;
pub mod solver;
#[cfg(feature = "wasm-witness")]
mod wasm;

#[cfg(feature = "wasm-witness")]
pub use wasm::WitnessGenerator;

/// Depth of the membership tree the circuit is compiled for.
pub const CIRCUIT_DEPTH: usize = rln_core::TREE_DEPTH;

/// Number of public inputs of the RLN circuit: y, root, nullifier, x, external nullifier.
pub const PUBLIC_INPUTS: usize = 5;

/// Private and public inputs of one RLN proof, as the circuit names them.
#[derive(Debug, Clone)]
pub struct CircuitInputs {
    /// `identitySecret`.
    pub identity_secret: Fr,
    /// `userMessageLimit`.
    pub user_message_limit: u64,
    /// `messageId`.
    pub message_id: u64,
    /// `pathElements` and, from the leaf index, `identityPathIndex`.
    pub merkle_proof: MerkleProof,
    /// `x`.
    pub x: Fr,
    /// `externalNullifier`.
    pub external_nullifier: Fr,
}
