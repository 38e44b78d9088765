//! Groth16 proving of RLN messages.
//!
//! A proof is `A = α + Σ zᵢ·aᵢ + rδ`, `B = β + Σ zᵢ·bᵢ + sδ` and
//! `C = Σ zᵢ·lᵢ + Σ hⱼ·Hⱼ + sA + rB − rsδ` over the witness `z` and the quotient `h`. Of the
//! 5,839 wires, about 500 change from one message to the next (see [`crate::solver`]);
//! the rest depend only on the member, its limit and its Merkle path. A
//! [`PreparedMembership`] holds those sums over the fixed wires, so a message costs the
//! quotient (FFTs and one multi-scalar multiplication) and four small multi-scalar
//! multiplications. Both paths give the same proof for the same randomness.

use ark_bn254::{Bn254, Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_circom::CircomReduction;
use ark_ec::{CurveGroup, VariableBaseMSM};
use ark_ff::{PrimeField, UniformRand, Zero};
use ark_groth16::r1cs_to_qap::R1CSToQAP;
use ark_groth16::{Groth16, Proof, ProvingKey, VerifyingKey};
use ark_poly::GeneralEvaluationDomain;
use rand::{CryptoRng, RngCore};
use rln_core::{
    external_nullifier, hash_to_field, identity::check_limit, Identity, MerkleProof, RlnError,
    RlnIdentifier,
};

use crate::circuit::{CircuitInputs, PUBLIC_INPUTS};
use crate::error::ZkError;
use crate::keys::ZkeyData;
use crate::proof::RateLimitProof;
use crate::solver::{MessageInputs, WitnessSolver};

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

/// What changes from one message to the next (see [`Prover::prove_message`]).
#[derive(Debug, Clone, Copy)]
pub struct MessageRequest {
    /// 0-based message id, below the limit.
    pub message_id: u64,
    /// `x`, the hash of the signal (see [`hash_to_field`]).
    pub x: Fr,
    /// The epoch as a field element.
    pub epoch: Fr,
    /// The application tag.
    pub rln_identifier: RlnIdentifier,
}

impl MessageRequest {
    /// A request whose `x` is the hash of `signal`.
    pub fn for_signal(
        message_id: u64,
        signal: &[u8],
        epoch: Fr,
        rln_identifier: RlnIdentifier,
    ) -> Self {
        Self {
            message_id,
            x: hash_to_field(signal),
            epoch,
            rln_identifier,
        }
    }
}

/// The part of a proof that depends only on the member, its limit and its Merkle path,
/// computed once by [`Prover::prepare`]. Invalid once the path changes (any change of the
/// tree changes one sibling); [`PreparedMembership::matches`] tells.
#[derive(Clone)]
pub struct PreparedMembership {
    identity_secret: Fr,
    user_message_limit: u64,
    merkle_proof: MerkleProof,
    witness: Vec<Fr>,
    a: G1Projective,
    b_g1: G1Projective,
    b_g2: G2Projective,
    l: G1Projective,
}

impl std::fmt::Debug for PreparedMembership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedMembership")
            .field("user_message_limit", &self.user_message_limit)
            .field("leaf_index", &self.merkle_proof.leaf_index)
            .finish_non_exhaustive()
    }
}

impl PreparedMembership {
    /// Whether this was prepared for this member, limit and path.
    pub fn matches(
        &self,
        identity: &Identity,
        user_message_limit: u64,
        path: &MerkleProof,
    ) -> bool {
        self.identity_secret == identity.secret()
            && self.user_message_limit == user_message_limit
            && self.merkle_proof.leaf_index == path.leaf_index
            && self.merkle_proof.siblings == path.siblings
    }

    /// The Merkle root the proofs will be made against.
    pub fn root(&self) -> Fr {
        self.witness[2]
    }

    /// The member's limit.
    pub fn user_message_limit(&self) -> u64 {
        self.user_message_limit
    }
}

/// Proving-key bases of the per-message wires, gathered once.
struct MessageBases {
    wires: Vec<usize>,
    a: Vec<G1Affine>,
    b_g1: Vec<G1Affine>,
    b_g2: Vec<G2Affine>,
    aux_wires: Vec<usize>,
    l: Vec<G1Affine>,
}

/// Proves RLN messages with one circuit and proving key.
pub struct Prover {
    solver: WitnessSolver,
    zkey: ZkeyData,
    bases: MessageBases,
}

impl std::fmt::Debug for Prover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prover")
            .field("wires", &self.zkey.num_wires)
            .field("per_message_wires", &self.bases.wires.len())
            .finish_non_exhaustive()
    }
}

fn msm_g1(bases: &[G1Affine], scalars: &[Fr]) -> G1Projective {
    let scalars: Vec<_> = scalars.iter().map(|s| s.into_bigint()).collect();
    G1Projective::msm_bigint(bases, &scalars)
}

fn msm_g2(bases: &[G2Affine], scalars: &[Fr]) -> G2Projective {
    let scalars: Vec<_> = scalars.iter().map(|s| s.into_bigint()).collect();
    G2Projective::msm_bigint(bases, &scalars)
}

impl Prover {
    /// Combines the circuit's witness solver with a proving key, checking that they describe
    /// the same circuit.
    pub fn new(solver: WitnessSolver, zkey: ZkeyData) -> Result<Self, ZkError> {
        let wires = solver.num_wires();
        let pk = &zkey.proving_key;
        let aux = zkey.num_wires.checked_sub(zkey.num_instance_variables);
        if wires != zkey.num_wires
            || pk.a_query.len() != wires
            || pk.b_g1_query.len() != wires
            || pk.b_g2_query.len() != wires
            || Some(pk.l_query.len()) != aux
        {
            return Err(ZkError::KeyMismatch(format!(
                "the circuit has {wires} wires but the proving key expects {}; \
                 the zkey was made for another circuit",
                zkey.num_wires
            )));
        }
        let first_aux = zkey.num_instance_variables;
        let message_wires = solver.message_wires().to_vec();
        let aux_wires: Vec<usize> = message_wires
            .iter()
            .copied()
            .filter(|w| *w >= first_aux)
            .collect();
        let bases = MessageBases {
            a: message_wires.iter().map(|w| pk.a_query[*w]).collect(),
            b_g1: message_wires.iter().map(|w| pk.b_g1_query[*w]).collect(),
            b_g2: message_wires.iter().map(|w| pk.b_g2_query[*w]).collect(),
            l: aux_wires
                .iter()
                .map(|w| pk.l_query[*w - first_aux])
                .collect(),
            wires: message_wires,
            aux_wires,
        };
        Ok(Self {
            solver,
            zkey,
            bases,
        })
    }

    /// The circuit in this repository with the INSECURE development key.
    pub fn dev() -> Result<Self, ZkError> {
        Self::new(WitnessSolver::rln()?, ZkeyData::dev()?)
    }

    /// The circuit in this repository with a proving key loaded from a `.zkey` file.
    pub fn with_zkey_path(path: &std::path::Path) -> Result<Self, ZkError> {
        Self::new(WitnessSolver::rln()?, ZkeyData::from_path(path)?)
    }

    /// The proving key.
    pub fn proving_key(&self) -> &ProvingKey<Bn254> {
        &self.zkey.proving_key
    }

    /// The verifying key that matches the proving key.
    pub fn verifying_key(&self) -> &VerifyingKey<Bn254> {
        &self.zkey.proving_key.vk
    }

    /// The witness solver.
    pub fn solver(&self) -> &WitnessSolver {
        &self.solver
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
        check_message_id(request.message_id, request.user_message_limit)?;
        let external_nullifier = external_nullifier(request.epoch, request.rln_identifier.to_fr());
        let inputs = CircuitInputs {
            identity_secret: request.identity.secret(),
            user_message_limit: request.user_message_limit,
            message_id: request.message_id,
            merkle_proof: request.merkle_proof.clone(),
            x: request.x,
            external_nullifier,
        };
        let assignment = self.solver.solve(&inputs)?;
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
        Ok(rate_limit_proof(
            proof,
            &assignment,
            request.epoch,
            request.x,
            request.rln_identifier,
        ))
    }

    /// Computes the part of every proof of this member that does not depend on the message:
    /// the witness of the Merkle path and the sums over its wires. Costs about as much as
    /// one proof; afterwards each [`Prover::prove_message`] is a fraction of one.
    pub fn prepare(
        &self,
        identity: &Identity,
        user_message_limit: u64,
        merkle_proof: &MerkleProof,
    ) -> Result<PreparedMembership, ZkError> {
        check_limit(user_message_limit)?;
        let inputs = CircuitInputs {
            identity_secret: identity.secret(),
            user_message_limit,
            message_id: 0,
            merkle_proof: merkle_proof.clone(),
            x: Fr::zero(),
            external_nullifier: Fr::zero(),
        };
        let witness = self.solver.solve(&inputs)?;
        let mut fixed = witness.clone();
        for wire in &self.bases.wires {
            fixed[*wire] = Fr::zero();
        }
        let pk = &self.zkey.proving_key;
        let first_aux = self.zkey.num_instance_variables;
        let a = msm_g1(&pk.a_query[1..], &fixed[1..]) + pk.vk.alpha_g1 + pk.a_query[0];
        let b_g1 = msm_g1(&pk.b_g1_query[1..], &fixed[1..]) + pk.beta_g1 + pk.b_g1_query[0];
        let b_g2 = msm_g2(&pk.b_g2_query[1..], &fixed[1..]) + pk.vk.beta_g2 + pk.b_g2_query[0];
        let l = msm_g1(&pk.l_query, &fixed[first_aux..]);
        Ok(PreparedMembership {
            identity_secret: identity.secret(),
            user_message_limit,
            merkle_proof: merkle_proof.clone(),
            witness,
            a,
            b_g1,
            b_g2,
            l,
        })
    }

    /// Proves a message of a prepared member with fresh Groth16 randomness.
    pub fn prove_message<R: RngCore + CryptoRng>(
        &self,
        prepared: &PreparedMembership,
        request: &MessageRequest,
        rng: &mut R,
    ) -> Result<RateLimitProof, ZkError> {
        let r = Fr::rand(rng);
        let s = Fr::rand(rng);
        self.prove_message_with_randomness(prepared, request, r, s)
    }

    /// [`Prover::prove_message`] with the given randomness; the proof equals
    /// [`Prover::prove_with_randomness`]'s for the same inputs.
    pub fn prove_message_with_randomness(
        &self,
        prepared: &PreparedMembership,
        request: &MessageRequest,
        r: Fr,
        s: Fr,
    ) -> Result<RateLimitProof, ZkError> {
        check_message_id(request.message_id, prepared.user_message_limit)?;
        let message = MessageInputs {
            message_id: request.message_id,
            x: request.x,
            external_nullifier: external_nullifier(request.epoch, request.rln_identifier.to_fr()),
        };
        let mut z = prepared.witness.clone();
        self.solver
            .solve_message(&mut z, &message, prepared.user_message_limit)?;

        let zkey = &self.zkey;
        let pk = &zkey.proving_key;
        let h = CircomReduction::witness_map_from_matrices::<Fr, GeneralEvaluationDomain<Fr>>(
            &zkey.matrices,
            zkey.num_instance_variables,
            zkey.num_constraints,
            &z,
        )
        .map_err(|e| ZkError::Proving(e.to_string()))?;
        let bases = &self.bases;
        let scalars: Vec<Fr> = bases.wires.iter().map(|w| z[*w]).collect();
        let aux_scalars: Vec<Fr> = bases.aux_wires.iter().map(|w| z[*w]).collect();
        let ((h_acc, l_acc), ((a_acc, b1_acc), b2_acc)) = rayon::join(
            || (msm_g1(&pk.h_query, &h), msm_g1(&bases.l, &aux_scalars)),
            || {
                (
                    (msm_g1(&bases.a, &scalars), msm_g1(&bases.b_g1, &scalars)),
                    msm_g2(&bases.b_g2, &scalars),
                )
            },
        );
        let delta_g1 = pk.delta_g1;
        let g_a = prepared.a + a_acc + delta_g1 * r;
        let g1_b = prepared.b_g1 + b1_acc + delta_g1 * s;
        let g2_b = prepared.b_g2 + b2_acc + pk.vk.delta_g2 * s;
        let g_c = g_a * s + g1_b * r - delta_g1 * (r * s) + prepared.l + l_acc + h_acc;
        let proof = Proof {
            a: g_a.into_affine(),
            b: g2_b.into_affine(),
            c: g_c.into_affine(),
        };
        Ok(rate_limit_proof(
            proof,
            &z,
            request.epoch,
            request.x,
            request.rln_identifier,
        ))
    }
}

fn check_message_id(message_id: u64, limit: u64) -> Result<(), ZkError> {
    if message_id >= limit {
        return Err(RlnError::MessageIdOutOfRange { message_id, limit }.into());
    }
    Ok(())
}

fn rate_limit_proof(
    proof: Proof<Bn254>,
    assignment: &[Fr],
    epoch: Fr,
    x: Fr,
    rln_identifier: RlnIdentifier,
) -> RateLimitProof {
    // Wires 1..=3 are the circuit's outputs: y, root, nullifier.
    RateLimitProof {
        proof,
        merkle_root: assignment[2],
        epoch,
        share_x: x,
        share_y: assignment[1],
        nullifier: assignment[3],
        rln_identifier,
    }
}
