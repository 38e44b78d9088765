//! Groth16 verification of RLN proofs with a key prepared once.

use ark_bn254::{Bn254, Fr};
use ark_ec::pairing::Pairing;
use ark_groth16::{Groth16, PreparedVerifyingKey, VerifyingKey};

use super::input_table::InputTable;
use crate::circuit::PUBLIC_INPUTS;
use crate::error::ZkError;
use crate::keys::check_public_inputs;
use crate::proof::{Groth16Proof, RateLimitProof};

/// The outcome of checking a well-formed proof.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofVerdict {
    /// The proof is valid for its public inputs.
    Valid,
    /// The pairing check failed: the proof does not match its public inputs.
    Invalid,
}

impl ProofVerdict {
    /// `true` for [`ProofVerdict::Valid`].
    pub fn is_valid(self) -> bool {
        self == ProofVerdict::Valid
    }
}

/// Verifies RLN proofs against one verifying key, prepared once.
#[derive(Debug, Clone)]
pub struct Verifier {
    prepared: PreparedVerifyingKey<Bn254>,
    /// β prepared for the batch check's `e(−Σrᵢ·α, β)` term.
    beta: <Bn254 as Pairing>::G2Prepared,
    /// Multiples of the key's `IC` points, for the public-input term.
    inputs: InputTable,
}

impl Verifier {
    /// Prepares `vk`, which must have the RLN circuit's five public inputs.
    pub fn new(vk: &VerifyingKey<Bn254>) -> Result<Self, ZkError> {
        check_public_inputs(vk)?;
        Ok(Self {
            prepared: ark_groth16::prepare_verifying_key(vk),
            beta: super::batch::beta_prepared(vk.beta_g2),
            inputs: InputTable::new(&vk.gamma_abc_g1),
        })
    }

    /// The verifier of the INSECURE development key.
    pub fn dev() -> Result<Self, ZkError> {
        Self::new(&crate::keys::snarkjs::verifying_key_from_json(
            crate::keys::DEV_VERIFYING_KEY_JSON,
        )?)
    }

    /// A verifier for a key file (snarkjs JSON or arkworks bytes).
    pub fn from_path(path: &std::path::Path) -> Result<Self, ZkError> {
        Self::new(&crate::keys::verifying_key_from_path(path)?)
    }

    /// The verifying key.
    pub fn verifying_key(&self) -> &VerifyingKey<Bn254> {
        &self.prepared.vk
    }

    pub(crate) fn prepared(&self) -> &PreparedVerifyingKey<Bn254> {
        &self.prepared
    }

    pub(crate) fn beta_prepared(&self) -> &<Bn254 as Pairing>::G2Prepared {
        &self.beta
    }

    pub(crate) fn input_table(&self) -> &InputTable {
        &self.inputs
    }

    /// Checks an RLN proof against the public values it carries.
    pub fn verify(&self, proof: &RateLimitProof) -> ProofVerdict {
        self.check(&proof.proof, &proof.public_inputs())
    }

    /// Checks a Groth16 proof against explicit public inputs, in the order
    /// `[y, root, nullifier, x, external_nullifier]`.
    pub fn verify_public_inputs(
        &self,
        proof: &Groth16Proof,
        public_inputs: &[Fr],
    ) -> Result<ProofVerdict, ZkError> {
        let inputs: &[Fr; PUBLIC_INPUTS] =
            public_inputs
                .try_into()
                .map_err(|_| ZkError::PublicInputCount {
                    expected: PUBLIC_INPUTS,
                    got: public_inputs.len(),
                })?;
        Ok(self.check(proof, inputs))
    }

    fn check(&self, proof: &Groth16Proof, inputs: &[Fr; PUBLIC_INPUTS]) -> ProofVerdict {
        // With the input count fixed and the points validated on decoding, the arkworks
        // verifier has no error path left; treat any error as a failed check all the same.
        let input_term = self.inputs.public_input_term(inputs);
        match Groth16::<Bn254>::verify_proof_with_prepared_inputs(
            &self.prepared,
            proof,
            &input_term,
        ) {
            Ok(true) => ProofVerdict::Valid,
            Ok(false) | Err(_) => ProofVerdict::Invalid,
        }
    }
}
