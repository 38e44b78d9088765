//! The RLN circuit (`circuits/rln.circom`): its inputs, its constraint system and the witness
//! that satisfies it.
//!
//! - [`r1cs`]: circom's `.r1cs` constraint system and wire names.
//! - [`solver`]: the native witness, solved from the constraint system.
//! - [`graph`]: the witness computed from a witness graph (iden3 circom-witnesscalc), the
//!   form the reference implementation ships for Waku's circuit.
//! - [`Witness`]: either of the two, as a [`crate::Prover`] uses it.
//! - `WitnessGenerator` (feature `wasm-witness`): circom's WebAssembly witness generator,
//!   run by wasmer through `ark-circom`; kept as the oracle the native witness is tested
//!   against, and off by default so the node does not link a WebAssembly runtime.

use rln_core::{Fr, MerkleProof};

use crate::error::ZkError;
use graph::WitnessGraph;
use solver::{MessageInputs, WitnessSolver};

pub mod graph;
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

impl CircuitInputs {
    /// Refuses a Merkle path whose depth is not the circuit's.
    pub(crate) fn check_depth(&self) -> Result<(), ZkError> {
        let got = self.merkle_proof.siblings.len();
        if got != CIRCUIT_DEPTH {
            return Err(ZkError::PathDepth {
                expected: CIRCUIT_DEPTH,
                got,
            });
        }
        Ok(())
    }
}

/// How a prover computes the witness of its circuit.
#[derive(Debug, Clone)]
pub enum Witness {
    /// Solved from circom's `.r1cs` and wire names (the circuit in this repository).
    Solver(WitnessSolver),
    /// Evaluated from a witness graph (the reference implementation's circuit).
    Graph(WitnessGraph),
}

impl Witness {
    /// Wires of the circuit, including the constant one.
    pub fn num_wires(&self) -> usize {
        match self {
            Self::Solver(s) => s.num_wires(),
            Self::Graph(g) => g.num_wires(),
        }
    }

    /// The wires that change from one message to the next, ascending.
    pub fn message_wires(&self) -> &[usize] {
        match self {
            Self::Solver(s) => s.message_wires(),
            Self::Graph(g) => g.message_wires(),
        }
    }

    /// The full witness (wire 0 is the constant one, then the public signals).
    pub fn solve(&self, inputs: &CircuitInputs) -> Result<Vec<Fr>, ZkError> {
        match self {
            Self::Solver(s) => s.solve(inputs),
            Self::Graph(g) => g.solve(inputs),
        }
    }

    /// Recomputes the per-message wires of `witness`, solved before from `membership` (whose
    /// message fields are ignored), for `message`.
    pub fn solve_message(
        &self,
        witness: &mut [Fr],
        membership: &CircuitInputs,
        message: &MessageInputs,
    ) -> Result<(), ZkError> {
        match self {
            Self::Solver(s) => s.solve_message(witness, message, membership.user_message_limit),
            Self::Graph(g) => g.solve_message(witness, membership, message),
        }
    }
}

impl From<WitnessSolver> for Witness {
    fn from(solver: WitnessSolver) -> Self {
        Self::Solver(solver)
    }
}

impl From<WitnessGraph> for Witness {
    fn from(graph: WitnessGraph) -> Self {
        Self::Graph(graph)
    }
}
