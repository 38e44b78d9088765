//! Groth16 proving of RLN messages.

use ark_bn254::{Bn254, Fr};
use ark_circom::CircomReduction;
use ark_ff::UniformRand;
use ark_groth16::{Groth16, ProvingKey, VerifyingKey};
use rand::{CryptoRng, RngCore};
use rln_core::{
    external_nullifier, hash_to_field, identity::check_limit, Identity, MerkleProof, RlnError,
    RlnIdentifier,
};

use crate::circuit::{CircuitInputs, WitnessGenerator, PUBLIC_INPUTS};
use crate::error::ZkError;
use crate::keys::ZkeyData;
use crate::proof::RateLimitProof;

/// What a member proves for one message.
#[derive(Debug, Clone)]
pub struct ProofRequest<'a> {
    /// The member.
    pub identity: &'a Identity,
    /// The limit bound into the member's leaf.
    pub user_message_limit: u64,
    /// 0-based message id, below the limit.
    pub message_id: u64,
    /// The path of the member's leaf in the current tree.
    pub merkle_proof: &'a MerkleProof,
    /// `x`, the hash of the signal (see [`hash_to_field`]).
    pub x: Fr,
    /// The epoch as a field element.
    pub epoch: Fr,
    /// The application tag.
    pub rln_identifier: RlnIdentifier,
}

impl<'a> ProofRequest<'a> {
    /// A request whose `x` is the hash of `signal`.
    #[allow(clippy::too_many_arguments)]
    pub fn for_signal(
        identity: &'a Identity,
        user_message_limit: u64,
        message_id: u64,
        merkle_proof: &'a MerkleProof,
        signal: &[u8],
        epoch: Fr,
        rln_identifier: RlnIdentifier,
    ) -> Self {
        Self {
            identity,
            user_message_limit,
            message_id,
            merkle_proof,
            x: hash_to_field(signal),
            epoch,
            rln_identifier,
        }
    }
}

/// Proves RLN messages with one loaded circuit and proving key.
#[derive(Debug)]
pub struct Prover {
    witness: WitnessGenerator,
    zkey: ZkeyData,
}

impl Prover {
    /// Combines a witness generator (circom wasm) with a proving key, checking that they
    /// describe the same circuit.
    pub fn new(wasm: &[u8], zkey: ZkeyData) -> Result<Self, ZkError> {
        let witness = WitnessGenerator::from_wasm(wasm)?;
        let prover = Self { witness, zkey };
        prover.check_circuit_matches_key()?;
        Ok(prover)
    }

    /// The circuit in this repository with the INSECURE development key.
    pub fn dev() -> Result<Self, ZkError> {
        Self::new(crate::keys::RLN_WASM, ZkeyData::dev()?)
    }

    /// The circuit in this repository with a proving key loaded from a `.zkey` file.
    pub fn with_zkey_path(path: &std::path::Path) -> Result<Self, ZkError> {
        Self::new(crate::keys::RLN_WASM, ZkeyData::from_path(path)?)
    }

    /// The proving key.
    pub fn proving_key(&self) -> &ProvingKey<Bn254> {
        &self.zkey.proving_key
    }

    /// The verifying key that matches the proving key.
    pub fn verifying_key(&self) -> &VerifyingKey<Bn254> {
        &self.zkey.proving_key.vk
    }

    fn check_circuit_matches_key(&self) -> Result<(), ZkError> {
        // Witness of an all-zero-path member: any valid input shape will do.
        let identity = Identity::from_secret(Fr::from(1u64));
        let path = MerkleProof {
            leaf_index: 0,
            siblings: vec![Fr::from(0u64); crate::circuit::CIRCUIT_DEPTH],
        };
        let inputs = CircuitInputs {
            identity_secret: identity.secret(),
            user_message_limit: 1,
            message_id: 0,
            merkle_proof: path,
            x: Fr::from(0u64),
            external_nullifier: Fr::from(0u64),
        };
        let wires = self.witness.witness(&inputs)?.len();
        let expected = self.zkey.num_wires;
        if wires != expected {
            return Err(ZkError::KeyMismatch(format!(
                "the circuit has {wires} wires but the proving key expects {expected}; \
                 the zkey was made for another circuit"
            )));
        }
        Ok(())
    }

    /// Proves a message with fresh Groth16 randomness.
    pub fn prove<R: RngCore + CryptoRng>(
        &self,
        request: &ProofRequest<'_>,
        rng: &mut R,
    ) -> Result<RateLimitProof, ZkError> {
        let r = Fr::rand(rng);
        let s = Fr::rand(rng);
        self.prove_with_randomness(request, r, s)
    }

    /// Proves a message with the given Groth16 randomness `r`, `s`. Deterministic; use only
    /// for known-answer tests (reusing randomness across messages leaks the witness).
    pub fn prove_with_randomness(
        &self,
        request: &ProofRequest<'_>,
        r: Fr,
        s: Fr,
    ) -> Result<RateLimitProof, ZkError> {
        check_limit(request.user_message_limit)?;
        if request.message_id >= request.user_message_limit {
            return Err(RlnError::MessageIdOutOfRange {
                message_id: request.message_id,
                limit: request.user_message_limit,
            }
            .into());
        }
        let external_nullifier = external_nullifier(request.epoch, request.rln_identifier.to_fr());
        let inputs = CircuitInputs {
            identity_secret: request.identity.secret(),
            user_message_limit: request.user_message_limit,
            message_id: request.message_id,
            merkle_proof: request.merkle_proof.clone(),
            x: request.x,
            external_nullifier,
        };
        let assignment = self.witness.witness(&inputs)?;
        if assignment.len() <= PUBLIC_INPUTS {
            return Err(ZkError::KeyMismatch(
                "the witness is shorter than the public inputs".into(),
            ));
        }
        let proof = Groth16::<Bn254, CircomReduction>::create_proof_with_reduction_and_matrices(
            &self.zkey.proving_key,
            r,
            s,
            &self.zkey.matrices,
            self.zkey.num_instance_variables,
            self.zkey.num_constraints,
            &assignment,
        )
        .map_err(|e| ZkError::Proving(e.to_string()))?;
        // Wires 1..=3 are the circuit's outputs: y, root, nullifier.
        Ok(RateLimitProof {
            proof,
            merkle_root: assignment[2],
            epoch: request.epoch,
            share_x: request.x,
            share_y: assignment[1],
            nullifier: assignment[3],
            rln_identifier: request.rln_identifier,
        })
    }
}
