//! The product of many Miller loops, one chunk of pairs per core.
//!
//! A batch check multiplies the Miller loops of all its pairs (one per proof, three for the
//! key) before a single final exponentiation. arkworks' `multi_miller_loop` runs its pairs in
//! chunks of four, each chunk with its own accumulator, so a batch of 64 proofs squares 17
//! accumulators in `Fq12` at each of the 64 steps of the loop. Here the pairs are split into
//! as many chunks as rayon has threads: on two cores, two accumulators. The line evaluations
//! (one sparse product per pair and step) are the same. The result is the same element of
//! `Fq12`: the product does not depend on how the pairs are grouped, and the conjugation
//! that a negative seed calls for is multiplicative, so each chunk applies it to its own part.

use ark_bn254::{Bn254, Config, Fq12, G1Affine};
use ark_ec::bn::{BnConfig, G2Prepared, TwistType};
use ark_ec::pairing::MillerLoopOutput;
use ark_ec::AffineRepr;
use ark_ff::{CyclotomicMultSubgroup, Field, One};
use rayon::prelude::*;

/// One set of line coefficients of a prepared G2 point.
type Line = ark_ec::bn::g2::EllCoeff<Config>;

/// How many line coefficients a prepared point holds: one per step of the loop, one more per
/// non-zero digit of the loop count, and two for the final Frobenius steps.
fn lines_per_point() -> usize {
    let count = Config::ATE_LOOP_COUNT;
    let additions = count[..count.len() - 1].iter().filter(|d| **d != 0).count();
    count.len() - 1 + additions + 2
}

/// Multiplies `f` by the line with coefficients `line` evaluated at `p`.
fn evaluate(f: &mut Fq12, line: &Line, p: &G1Affine) {
    // BN254's twist is a D-type twist: the line is sparse in slots 0, 3 and 4 of Fq12.
    debug_assert!(matches!(Config::TWIST_TYPE, TwistType::D));
    let (mut c0, mut c1, c2) = *line;
    c0.mul_assign_by_fp(&p.y);
    c1.mul_assign_by_fp(&p.x);
    f.mul_by_034(&c0, &c1, &c2);
}

/// The Miller loops of a chunk of pairs, multiplied into one accumulator.
fn chunk_loop(pairs: &[(&G1Affine, &[Line])]) -> Fq12 {
    let count = Config::ATE_LOOP_COUNT;
    let mut f = Fq12::one();
    let mut next = 0;
    let step = |f: &mut Fq12, next: &mut usize| {
        for (p, lines) in pairs {
            evaluate(f, &lines[*next], p);
        }
        *next += 1;
    };
    for i in (1..count.len()).rev() {
        if i != count.len() - 1 {
            f.square_in_place();
        }
        step(&mut f, &mut next);
        if count[i - 1] != 0 {
            step(&mut f, &mut next);
        }
    }
    if Config::X_IS_NEGATIVE {
        f.cyclotomic_inverse_in_place();
    }
    step(&mut f, &mut next);
    step(&mut f, &mut next);
    f
}

/// `Π e_miller(g1ᵢ, g2ᵢ)`, equal to arkworks' `Bn254::multi_miller_loop` over the same pairs.
/// Pairs with a point at infinity are skipped, as arkworks skips them. `None` if a prepared
/// point does not hold the loop's number of lines (arkworks' preparation always does).
pub fn multi_miller_loop<'a>(
    pairs: impl IntoIterator<Item = (&'a G1Affine, &'a G2Prepared<Config>)>,
) -> Option<MillerLoopOutput<Bn254>> {
    let expected = lines_per_point();
    let mut lines: Vec<(&G1Affine, &[Line])> = Vec::new();
    for (p, q) in pairs {
        if p.is_zero() || q.infinity {
            continue;
        }
        if q.ell_coeffs.len() != expected {
            return None;
        }
        lines.push((p, q.ell_coeffs.as_slice()));
    }
    let chunk = lines
        .len()
        .div_ceil(rayon::current_num_threads().max(1))
        .max(1);
    let f = lines.par_chunks(chunk).map(chunk_loop).product();
    Some(MillerLoopOutput(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_bn254::{Fr, G2Affine};
    use ark_ec::pairing::Pairing;
    use ark_ec::{CurveGroup, PrimeGroup};
    use ark_ff::UniformRand;
    use rand::SeedableRng;

    fn pairs(n: usize, rng: &mut impl rand::Rng) -> (Vec<G1Affine>, Vec<G2Prepared<Config>>) {
        let g1 = (0..n)
            .map(|_| (ark_bn254::G1Projective::generator() * Fr::rand(rng)).into_affine())
            .collect();
        let g2 = (0..n)
            .map(|_| (ark_bn254::G2Projective::generator() * Fr::rand(rng)).into_affine())
            .map(G2Prepared::from)
            .collect();
        (g1, g2)
    }

    #[test]
    fn equals_arkworks_for_every_batch_size() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for n in [0, 1, 2, 3, 4, 5, 8, 13, 67] {
            let (g1, g2) = pairs(n, &mut rng);
            let ours = multi_miller_loop(g1.iter().zip(&g2)).unwrap();
            let theirs = Bn254::multi_miller_loop(g1.clone(), g2.clone());
            assert_eq!(ours.0, theirs.0, "{n} pairs");
        }
    }

    #[test]
    fn points_at_infinity_are_skipped_and_short_lines_refused() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        let (mut g1, mut g2) = pairs(5, &mut rng);
        g1[1] = G1Affine::zero();
        g2[3] = G2Prepared::from(G2Affine::zero());
        let ours = multi_miller_loop(g1.iter().zip(&g2)).unwrap();
        assert_eq!(ours.0, Bn254::multi_miller_loop(g1.clone(), g2.clone()).0);
        g2[0].ell_coeffs.pop();
        assert!(multi_miller_loop(g1.iter().zip(&g2)).is_none());
    }

    #[test]
    fn a_valid_pairing_equation_holds_after_the_final_exponentiation() {
        // e(aP, bQ) · e(−abP, Q) = 1.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let (a, b) = (Fr::rand(&mut rng), Fr::rand(&mut rng));
        let p = ark_bn254::G1Projective::generator();
        let q = ark_bn254::G2Projective::generator();
        let g1 = [(p * a).into_affine(), (p * -(a * b)).into_affine()];
        let g2 = [
            G2Prepared::from((q * b).into_affine()),
            G2Prepared::from(q.into_affine()),
        ];
        let out =
            Bn254::final_exponentiation(multi_miller_loop(g1.iter().zip(&g2)).unwrap()).unwrap();
        assert!(out.0.is_one());
    }
}
