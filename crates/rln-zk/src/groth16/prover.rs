//! Groth16 proving of RLN messages.
//!
//! A proof is `A = α + Σ zᵢ·aᵢ + rδ`, `B = β + Σ zᵢ·bᵢ + sδ` and
//! `C = Σ zᵢ·lᵢ + Σ hⱼ·Hⱼ + sA + rB − rsδ` over the witness `z` and the quotient `h`. Of the
//! 5,839 wires, about 500 change from one message to the next (see [`crate::circuit::solver`]);
//! the rest depend only on the member, its limit and its Merkle path. A
//! [`PreparedMembership`] holds those sums over the fixed wires, so a message costs the
//! quotient (FFTs and one multi-scalar multiplication) and four small multi-scalar
//! multiplications. Both paths give the same proof for the same randomness.

use ark_bn254::{g1::Config as G1Config, g2::Config as G2Config};
use ark_bn254::{Bn254, Fr, G1Affine, G1Projective, G2Projective};
use ark_ec::short_weierstrass::{Affine, Projective, SWCurveConfig};
use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::{UniformRand, Zero};
use ark_groth16::{Proof, ProvingKey, VerifyingKey};
use rand::{CryptoRng, RngCore};
use rln_bn254::msm::{best_window, Coordinates, G1Msm, WideMsm};
use rln_core::{
    external_nullifier, hash_to_field, identity::check_limit, Identity, MerkleProof, RlnError,
    RlnIdentifier,
};

use super::quotient::QuotientDomain;
use crate::circuit::solver::{MessageInputs, WitnessSolver};
use crate::circuit::{CircuitInputs, Witness, PUBLIC_INPUTS};
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
    /// `δ` of the proving key it was made with: sums from one key are useless with another.
    key_delta: G1Affine,
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
}

/// One query of the proving key (`A`, `B` in G1 or G2, `L`) over a set of wires, with its
/// zero points left out and its window shifts precomputed.
struct Query<C: SWCurveConfig<ScalarField = Fr>, const K: usize>
where
    C::BaseField: Coordinates<K>,
{
    wires: Vec<usize>,
    msm: WideMsm<C, K>,
}

impl<C: SWCurveConfig<ScalarField = Fr>, const K: usize> Query<C, K>
where
    C::BaseField: Coordinates<K>,
{
    /// The query over `wires`, where wire `w` has base `bases[w - first]`.
    fn new(bases: &[Affine<C>], first: usize, wires: impl Iterator<Item = usize>) -> Self {
        let wires: Vec<usize> = wires
            .filter(|w| {
                bases
                    .get(w.wrapping_sub(first))
                    .is_some_and(|p| !p.is_zero())
            })
            .collect();
        let points: Vec<Affine<C>> = wires.iter().map(|w| bases[w - first]).collect();
        let msm = WideMsm::new(&points, best_window(points.len()));
        Self { wires, msm }
    }

    /// `Σ z[w] · base_w` over the query's wires.
    fn eval(&self, z: &[Fr]) -> Projective<C> {
        let scalars: Vec<Fr> = self.wires.iter().map(|w| z[*w]).collect();
        self.msm.msm(&scalars)
    }
}

/// The four wire queries over one set of wires.
struct Queries {
    a: Query<G1Config, 1>,
    b_g1: Query<G1Config, 1>,
    b_g2: Query<G2Config, 2>,
    l: Query<G1Config, 1>,
}

/// The four sums of a proof over one set of wires.
struct Sums {
    a: G1Projective,
    b_g1: G1Projective,
    b_g2: G2Projective,
    l: G1Projective,
}

impl Queries {
    fn new(pk: &ProvingKey<Bn254>, first_aux: usize, wires: &[usize]) -> Self {
        let all = || wires.iter().copied().filter(|w| *w > 0);
        Self {
            a: Query::new(&pk.a_query, 0, all()),
            b_g1: Query::new(&pk.b_g1_query, 0, all()),
            b_g2: Query::new(&pk.b_g2_query, 0, all()),
            l: Query::new(&pk.l_query, first_aux, all().filter(|w| *w >= first_aux)),
        }
    }

    fn eval(&self, z: &[Fr]) -> Sums {
        let ((a, b_g1), (b_g2, l)) = rayon::join(
            || rayon::join(|| self.a.eval(z), || self.b_g1.eval(z)),
            || rayon::join(|| self.b_g2.eval(z), || self.l.eval(z)),
        );
        Sums { a, b_g1, b_g2, l }
    }
}

/// Proves RLN messages with one circuit and proving key.
///
/// Loading precomputes the window shifts of the proving key's queries (about 50 MB, a second
/// or two), which makes every multi-scalar multiplication of a proof about 1.4× cheaper.
pub struct Prover {
    solver: Witness,
    zkey: ZkeyData,
    /// Queries over every wire but the constant one: full proofs and preparation.
    full: Queries,
    /// Queries over the per-message wires.
    message: Queries,
    h: G1Msm,
    quotient: QuotientDomain,
}

impl std::fmt::Debug for Prover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prover")
            .field("wires", &self.zkey.num_wires)
            .field("per_message_wires", &self.solver.message_wires().len())
            .finish_non_exhaustive()
    }
}

impl Prover {
    /// Combines the circuit's witness solver with a proving key, checking that they describe
    /// the same circuit.
    pub fn new(solver: impl Into<Witness>, zkey: ZkeyData) -> Result<Self, ZkError> {
        let solver = solver.into();
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
        let quotient = QuotientDomain::new(zkey.num_constraints, zkey.num_instance_variables)?;
        if zkey.matrices[0].len() < zkey.num_constraints
            || zkey.matrices[1].len() < zkey.num_constraints
            || pk.h_query.len() != quotient.size()
        {
            return Err(ZkError::KeyMismatch(
                "the proving key's matrices or quotient query do not fit its constraint count"
                    .into(),
            ));
        }
        // Only a key that fits gets its tables built (the expensive part of loading).
        let first_aux = zkey.num_instance_variables;
        let every: Vec<usize> = (1..wires).collect();
        let full = Queries::new(pk, first_aux, &every);
        let message = Queries::new(pk, first_aux, solver.message_wires());
        let h = G1Msm::new(&pk.h_query, best_window(pk.h_query.len()));
        Ok(Self {
            solver,
            zkey,
            full,
            message,
            h,
            quotient,
        })
    }

    /// The circuit in this repository with the INSECURE development key.
    pub fn dev() -> Result<Self, ZkError> {
        Self::new(WitnessSolver::rln()?, ZkeyData::dev()?)
    }

    /// The proving key.
    pub fn proving_key(&self) -> &ProvingKey<Bn254> {
        &self.zkey.proving_key
    }

    /// The verifying key that matches the proving key.
    pub fn verifying_key(&self) -> &VerifyingKey<Bn254> {
        &self.zkey.proving_key.vk
    }

    /// How the witness is computed.
    pub fn solver(&self) -> &Witness {
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
        let proof = self.assemble(
            &assignment,
            self.constant_sums(Sums::zero()),
            &self.full,
            r,
            s,
        )?;
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
        for wire in self.solver.message_wires() {
            fixed[*wire] = Fr::zero();
        }
        let Sums { a, b_g1, b_g2, l } = self.constant_sums(self.full.eval(&fixed));
        Ok(PreparedMembership {
            key_delta: self.zkey.proving_key.delta_g1,
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
        if prepared.key_delta != self.zkey.proving_key.delta_g1 {
            return Err(ZkError::PreparedMismatch(
                "it was prepared with another proving key",
            ));
        }
        check_message_id(request.message_id, prepared.user_message_limit)?;
        let message = MessageInputs {
            message_id: request.message_id,
            x: request.x,
            external_nullifier: external_nullifier(request.epoch, request.rln_identifier.to_fr()),
        };
        let membership = CircuitInputs {
            identity_secret: prepared.identity_secret,
            user_message_limit: prepared.user_message_limit,
            message_id: 0,
            merkle_proof: prepared.merkle_proof.clone(),
            x: Fr::zero(),
            external_nullifier: Fr::zero(),
        };
        let mut z = prepared.witness.clone();
        self.solver.solve_message(&mut z, &membership, &message)?;

        let fixed = Sums {
            a: prepared.a,
            b_g1: prepared.b_g1,
            b_g2: prepared.b_g2,
            l: prepared.l,
        };
        let proof = self.assemble(&z, fixed, &self.message, r, s)?;
        Ok(rate_limit_proof(
            proof,
            &z,
            request.epoch,
            request.x,
            request.rln_identifier,
        ))
    }

    /// Adds the key's constant terms (`α`, `β` and the constant wire's bases) to sums over
    /// wires.
    fn constant_sums(&self, sums: Sums) -> Sums {
        let pk = &self.zkey.proving_key;
        Sums {
            a: sums.a + pk.vk.alpha_g1 + pk.a_query[0],
            b_g1: sums.b_g1 + pk.beta_g1 + pk.b_g1_query[0],
            b_g2: sums.b_g2 + pk.vk.beta_g2 + pk.b_g2_query[0],
            l: sums.l,
        }
    }

    /// The proof from the witness `z`, the sums over some wires (constants included) and
    /// the queries over the others: the quotient (FFTs) runs beside those queries, then the
    /// quotient's multiplication, the randomisers and the final combination.
    fn assemble(
        &self,
        z: &[Fr],
        base: Sums,
        queries: &Queries,
        r: Fr,
        s: Fr,
    ) -> Result<Proof<Bn254>, ZkError> {
        let zkey = &self.zkey;
        let pk = &zkey.proving_key;
        let delta_g1 = pk.delta_g1;
        // The randomisers' multiples of δ need only `r` and `s`: they run beside the quotient
        // and the queries rather than after them.
        let randomisers = || {
            rayon::join(
                || [delta_g1 * r, delta_g1 * s, delta_g1 * (r * s)],
                || pk.vk.delta_g2 * s,
            )
        };
        let (h, (rest, ([delta_r, delta_s, delta_rs], delta_g2_s))) = rayon::join(
            || {
                self.quotient
                    .evaluate(&zkey.matrices[0], &zkey.matrices[1], z)
            },
            || rayon::join(|| queries.eval(z), randomisers),
        );
        let g_a = base.a + rest.a + delta_r;
        let g1_b = base.b_g1 + rest.b_g1 + delta_s;
        let g2_b = base.b_g2 + rest.b_g2 + delta_g2_s;
        // Likewise the two products of the sums run beside the quotient's multiplication.
        let (h_acc, (a_s, b_r)) = rayon::join(|| self.h.msm(&h), || (g_a * s, g1_b * r));
        let g_c = a_s + b_r - delta_rs + base.l + rest.l + h_acc;
        Ok(Proof {
            a: g_a.into_affine(),
            b: g2_b.into_affine(),
            c: g_c.into_affine(),
        })
    }
}

impl Sums {
    fn zero() -> Self {
        Self {
            a: G1Projective::zero(),
            b_g1: G1Projective::zero(),
            b_g2: G2Projective::zero(),
            l: G1Projective::zero(),
        }
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
