//! Random weights for batch verification, built so that multiplying a G1 point by one costs
//! half a 128-bit multiplication.
//!
//! A batch check multiplies each proof's `A` by an unpredictable weight. A weight here is
//! `r = lo + λ·hi` with `lo`, `hi` two random 64-bit halves and `λ` the eigenvalue of the
//! curve's endomorphism `φ(x, y) = (β·x, y)` on G1 (`φ(P) = [λ]P`). Then
//! `[r]P = [lo]P + [hi]φ(P)`: one pass of 64 doublings over both halves at once (Shamir's
//! trick, with `P`, `φ(P)` and their sum as the table), where a 128-bit weight takes 128.
//!
//! The weights keep 128 bits of unpredictability: two pairs of halves give one weight only
//! if `(lo − lo', hi − hi')` is a vector of the lattice `{(a, b) : a + λ·b ≡ 0 (mod r)}`
//! with both entries under 2⁶⁴, and that lattice's shortest vectors are about 2¹²⁷ long (they
//! are the basis arkworks decomposes scalars with for GLV).

use ark_bn254::{g1::Config as G1Config, Fr, G1Affine, G1Projective};
use ark_ec::scalar_mul::glv::GLVConfig;
use ark_ec::CurveGroup;
use ark_ff::AdditiveGroup;
use rayon::prelude::*;

/// A batch-verification weight `lo + λ·hi`, never zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weight {
    lo: u64,
    hi: u64,
}

impl Weight {
    /// The weight of two random halves; both zero (which would drop a proof from the check)
    /// becomes `1`.
    pub fn new(lo: u64, hi: u64) -> Self {
        Self {
            lo: if lo == 0 && hi == 0 { 1 } else { lo },
            hi,
        }
    }

    /// The weight as a scalar, `lo + λ·hi`.
    pub fn scalar(&self) -> Fr {
        Fr::from(self.lo) + G1Config::LAMBDA * Fr::from(self.hi)
    }

    /// `[lo]p + [hi]q`, with `sum = p + q`, by one double-and-add over both halves.
    fn apply(&self, p: &G1Affine, q: &G1Affine, sum: &G1Affine) -> G1Projective {
        let mut acc = G1Projective::ZERO;
        let top = 64 - (self.lo | self.hi).leading_zeros();
        for bit in (0..top).rev() {
            acc.double_in_place();
            match (self.lo >> bit & 1, self.hi >> bit & 1) {
                (1, 1) => acc += sum,
                (1, 0) => acc += p,
                (0, 1) => acc += q,
                _ => {}
            }
        }
        acc
    }
}

/// `[wᵢ]Pᵢ` for every point and its weight, on every core. Extra weights or points are
/// ignored.
pub fn mul_by_weights(points: &[G1Affine], weights: &[Weight]) -> Vec<G1Projective> {
    let endo: Vec<G1Affine> = points.iter().map(G1Config::endomorphism_affine).collect();
    let sums = G1Projective::normalize_batch(
        &points
            .iter()
            .zip(&endo)
            .map(|(p, q)| *p + q)
            .collect::<Vec<_>>(),
    );
    points
        .par_iter()
        .zip(&endo)
        .zip(&sums)
        .zip(weights)
        .map(|(((p, q), sum), w)| w.apply(p, q, sum))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ec::{AffineRepr, PrimeGroup};
    use ark_ff::UniformRand;
    use rand::{Rng, SeedableRng};

    #[test]
    fn the_endomorphism_multiplies_by_lambda() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for _ in 0..8 {
            let p = (G1Projective::generator() * Fr::rand(&mut rng)).into_affine();
            assert_eq!(
                G1Config::endomorphism_affine(&p),
                (p * G1Config::LAMBDA).into_affine()
            );
        }
    }

    #[test]
    fn weighted_points_equal_multiplication_by_the_scalar() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
        let mut points: Vec<G1Affine> = (0..40)
            .map(|_| (G1Projective::generator() * Fr::rand(&mut rng)).into_affine())
            .collect();
        points.push(G1Affine::zero());
        points.push(G1Affine::generator());
        let mut weights: Vec<Weight> = (0..points.len())
            .map(|_| Weight::new(rng.gen(), rng.gen()))
            .collect();
        for (k, w) in [
            (0, 1),
            (1, 0),
            (u64::MAX, u64::MAX),
            (0, u64::MAX),
            (1 << 63, 1),
        ]
        .into_iter()
        .enumerate()
        {
            weights[k] = Weight::new(w.0, w.1);
        }
        let got = mul_by_weights(&points, &weights);
        assert_eq!(got.len(), points.len());
        for ((p, w), got) in points.iter().zip(&weights).zip(&got) {
            assert_eq!(*got, *p * w.scalar(), "weight {w:?}");
        }
    }

    #[test]
    fn no_weight_is_zero() {
        assert_eq!(Weight::new(0, 0).scalar(), Fr::from(1u64));
        assert_ne!(Weight::new(0, 5).scalar(), Fr::from(0u64));
    }
}
