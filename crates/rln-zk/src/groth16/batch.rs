//! Batch verification of Groth16 proofs by random linear combination.
//!
//! A proof `(A, B, C)` for public inputs `x` is valid when
//! `e(A, B) = e(α, β) · e(L(x), γ) · e(C, δ)` with `L(x) = IC₀ + Σ xⱼ·ICⱼ`. For n proofs and
//! independent random 128-bit weights `rᵢ`, all n equations hold (except with probability about
//! 2⁻¹²⁸ when one does not) if
//!
//! `Π e(rᵢ·Aᵢ, Bᵢ) · e(−(Σrᵢ)·α, β) · e(Σ rᵢ·L(xᵢ), −γ) · e(Σ rᵢ·Cᵢ, −δ) = 1`.
//!
//! That is n + 3 Miller loops and a single final exponentiation, and `Σ rᵢ·L(xᵢ)` folds into one
//! six-term multi-scalar multiplication because `L` is linear. The weights come from the
//! caller's CSPRNG: a prover who could predict them could make invalid proofs cancel out.
//! When the combined check fails, the batch is bisected: each half is checked the same way,
//! and a half that fails is split again, down to single proofs. One invalid proof among n
//! costs about 2·log₂ n checks instead of n; a half known to fail (because its sibling
//! passed) is split without being checked. Small failing groups are verified one by one,
//! which is cheaper than splitting them further.

use ark_bn254::{Bn254, Fr, G1Affine, G1Projective, G2Affine};
use ark_ec::pairing::{Pairing, PairingOutput};
use ark_ec::{CurveGroup, VariableBaseMSM};
use ark_ff::{One, Zero};
use rand::{CryptoRng, RngCore};
use rln_bn254::pairing::multi_miller_loop;
use rln_bn254::prepare::g2_prepared_many;
use rln_bn254::weights::{mul_by_weights, Weight};

use super::verifier::{ProofVerdict, Verifier};
use crate::circuit::PUBLIC_INPUTS;
use crate::proof::{Groth16Proof, RateLimitProof};

/// Groups this small are verified proof by proof (a combined check costs about as much as two
/// single ones).
const SINGLES_BELOW: usize = 2;

/// A proof and its public inputs, ready for batch verification.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchItem {
    /// The Groth16 proof.
    pub proof: Groth16Proof,
    /// `[y, root, nullifier, x, external_nullifier]`.
    pub public_inputs: [Fr; PUBLIC_INPUTS],
}

impl From<&RateLimitProof> for BatchItem {
    fn from(proof: &RateLimitProof) -> Self {
        Self {
            proof: proof.proof.clone(),
            public_inputs: proof.public_inputs(),
        }
    }
}

impl Verifier {
    /// Verifies many proofs at once; one verdict per proof, in order, identical to what
    /// [`Verifier::verify`] would say for each.
    pub fn verify_batch<R: RngCore + CryptoRng>(
        &self,
        items: &[BatchItem],
        rng: &mut R,
    ) -> Vec<ProofVerdict> {
        self.verify_batch_counted(items, rng).0
    }

    /// [`Self::verify_batch`], with the number of pairing checks (final exponentiations) it
    /// took: 1 for a valid batch, about 2·log₂ n more per invalid proof.
    pub fn verify_batch_counted<R: RngCore + CryptoRng>(
        &self,
        items: &[BatchItem],
        rng: &mut R,
    ) -> (Vec<ProofVerdict>, usize) {
        let mut verdicts = vec![ProofVerdict::Valid; items.len()];
        let mut checks = 0;
        self.bisect(items, &mut verdicts, false, &mut checks, rng);
        (verdicts, checks)
    }

    /// Gives each of `items` its verdict in `out`. `failed`: the group is known to hold an
    /// invalid proof, so checking it as a whole would be wasted.
    fn bisect<R: RngCore + CryptoRng>(
        &self,
        items: &[BatchItem],
        out: &mut [ProofVerdict],
        failed: bool,
        checks: &mut usize,
        rng: &mut R,
    ) {
        if items.len() <= SINGLES_BELOW || (failed && items.len() <= SINGLES_BELOW * 2) {
            for (item, verdict) in items.iter().zip(out.iter_mut()) {
                *checks += 1;
                *verdict = self.check_item(item);
            }
            return;
        }
        if !failed {
            *checks += 1;
            if self.combined_check(items, rng) {
                return;
            }
        }
        let mid = items.len() / 2;
        let (left, right) = items.split_at(mid);
        let (left_out, right_out) = out.split_at_mut(mid);
        if left.len() > SINGLES_BELOW {
            *checks += 1;
            if self.combined_check(left, rng) {
                // The whole failed and the left half is fine: the right half holds the fault.
                return self.bisect(right, right_out, true, checks, rng);
            }
            self.bisect(left, left_out, true, checks, rng);
        } else {
            self.bisect(left, left_out, false, checks, rng);
        }
        self.bisect(right, right_out, false, checks, rng);
    }

    /// [`Self::verify_batch`] over RLN proofs.
    pub fn verify_proofs<R: RngCore + CryptoRng>(
        &self,
        proofs: &[&RateLimitProof],
        rng: &mut R,
    ) -> Vec<ProofVerdict> {
        let items: Vec<BatchItem> = proofs.iter().map(|p| BatchItem::from(*p)).collect();
        self.verify_batch(&items, rng)
    }

    fn check_item(&self, item: &BatchItem) -> ProofVerdict {
        match self.verify_public_inputs(&item.proof, &item.public_inputs) {
            Ok(verdict) => verdict,
            // The input count is fixed by the type; this arm cannot be reached.
            Err(_) => ProofVerdict::Invalid,
        }
    }

    /// The random-linear-combination check: `true` only if (with overwhelming probability)
    /// every proof is valid.
    pub fn combined_check<R: RngCore + CryptoRng>(&self, items: &[BatchItem], rng: &mut R) -> bool {
        let prepared = self.prepared();
        let vk = &prepared.vk;
        let n = items.len();
        // 128-bit weights `lo + λ·hi` whose multiplications run over 64 bits (see
        // `rln_bn254::weights`); none is zero, which would drop its proof from the check.
        let halves: Vec<Weight> = (0..n)
            .map(|_| Weight::new(rng.next_u64(), rng.next_u64()))
            .collect();
        let weights: Vec<Fr> = halves.iter().map(Weight::scalar).collect();

        // Σ rᵢ·L(xᵢ) = (Σ rᵢ)·IC₀ + Σⱼ (Σᵢ rᵢ·xᵢⱼ)·ICⱼ
        let mut input_scalars = vec![Fr::zero(); PUBLIC_INPUTS + 1];
        for (item, r) in items.iter().zip(&weights) {
            input_scalars[0] += r;
            for (acc, x) in input_scalars[1..].iter_mut().zip(&item.public_inputs) {
                *acc += *r * x;
            }
        }
        let weight_sum = input_scalars[0];
        let inputs_acc = self.input_table().combine(&input_scalars);
        let cs: Vec<G1Affine> = items.iter().map(|i| i.proof.c).collect();
        let Ok(c_acc) = G1Projective::msm(&cs, &weights) else {
            return false;
        };
        // The per-proof work (a scalar multiplication in G1, the line coefficients of B in
        // G2) is independent between proofs: it runs on every core, as the Miller loops do.
        let a_points: Vec<G1Affine> = items.iter().map(|i| i.proof.a).collect();
        let scaled_a = G1Projective::normalize_batch(&mul_by_weights(&a_points, &halves));
        // B's line coefficients, eight proofs per vector (see `rln_bn254::prepare`).
        let b_points: Vec<G2Affine> = items.iter().map(|i| i.proof.b).collect();
        let b_lines = g2_prepared_many(&b_points);
        let key_points = [
            (vk.alpha_g1 * -weight_sum).into_affine(),
            inputs_acc.into_affine(),
            c_acc.into_affine(),
        ];
        let key_lines = [
            self.beta_prepared(),
            &prepared.gamma_g2_neg_pc,
            &prepared.delta_g2_neg_pc,
        ];
        // One accumulator per core rather than arkworks' one per four pairs (see
        // `rln_bn254::pairing`); same product.
        let pairs = scaled_a
            .iter()
            .zip(&b_lines)
            .chain(key_points.iter().zip(key_lines));
        let Some(product) = multi_miller_loop(pairs) else {
            return false;
        };
        matches!(
            Bn254::final_exponentiation(product),
            Some(PairingOutput(value)) if value.is_one()
        )
    }
}

/// β in G2, for callers preparing it once.
pub(crate) fn beta_prepared(beta: G2Affine) -> <Bn254 as Pairing>::G2Prepared {
    beta.into()
}
