//! The RLN circuit's witness generator: circom's WebAssembly, run by wasmer through
//! `ark-circom` (feature `wasm-witness`).

use std::sync::Mutex;

use ark_circom::WitnessCalculator;
use ark_ff::{BigInteger, PrimeField};
use num_bigint::{BigInt, Sign};
use rln_core::Fr;
use wasmer::{Module, Store};

use super::{CircuitInputs, CIRCUIT_DEPTH};
use crate::error::ZkError;

fn big(value: &Fr) -> BigInt {
    BigInt::from_bytes_le(Sign::Plus, &value.into_bigint().to_bytes_le())
}

/// The inputs as circom's calculator takes them: by signal name.
fn named(inputs: &CircuitInputs) -> Vec<(String, Vec<BigInt>)> {
    let path_index = inputs
        .merkle_proof
        .path_index()
        .into_iter()
        .map(BigInt::from)
        .collect();
    vec![
        ("identitySecret".into(), vec![big(&inputs.identity_secret)]),
        (
            "userMessageLimit".into(),
            vec![BigInt::from(inputs.user_message_limit)],
        ),
        ("messageId".into(), vec![BigInt::from(inputs.message_id)]),
        (
            "pathElements".into(),
            inputs.merkle_proof.siblings.iter().map(big).collect(),
        ),
        ("identityPathIndex".into(), path_index),
        ("x".into(), vec![big(&inputs.x)]),
        (
            "externalNullifier".into(),
            vec![big(&inputs.external_nullifier)],
        ),
    ]
}

struct Runtime {
    store: Store,
    calculator: WitnessCalculator,
}

/// The compiled witness generator. One instance is shared by all callers; the WebAssembly
/// instance runs one witness at a time.
pub struct WitnessGenerator {
    runtime: Mutex<Runtime>,
}

impl std::fmt::Debug for WitnessGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitnessGenerator").finish_non_exhaustive()
    }
}

impl WitnessGenerator {
    /// Compiles circom's `rln.wasm`.
    pub fn from_wasm(bytes: &[u8]) -> Result<Self, ZkError> {
        let mut store = Store::default();
        let module = Module::new(&store, bytes)
            .map_err(|e| ZkError::Witness(format!("cannot compile the circuit's wasm: {e}")))?;
        let calculator = WitnessCalculator::from_module(&mut store, module)
            .map_err(|e| ZkError::Witness(format!("cannot instantiate the circuit's wasm: {e}")))?;
        Ok(Self {
            runtime: Mutex::new(Runtime { store, calculator }),
        })
    }

    /// Computes the full wire assignment (wire 0 is the constant 1, then the public signals).
    pub fn witness(&self, inputs: &CircuitInputs) -> Result<Vec<Fr>, ZkError> {
        if inputs.merkle_proof.siblings.len() != CIRCUIT_DEPTH {
            return Err(ZkError::PathDepth {
                expected: CIRCUIT_DEPTH,
                got: inputs.merkle_proof.siblings.len(),
            });
        }
        // A poisoned lock only means another thread panicked mid-witness; the wasm instance
        // re-initialises itself at the start of every witness, so its state is safe to reuse.
        let mut guard = self
            .runtime
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Runtime { store, calculator } = &mut *guard;
        calculator
            .calculate_witness_element::<Fr, _>(store, named(inputs), true)
            .map_err(|e| ZkError::Witness(format!("{e}")))
    }
}
