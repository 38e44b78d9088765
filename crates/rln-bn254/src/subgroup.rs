//! Membership of a twist point in G2, the prime-order subgroup, with one 63-bit
//! multiplication.
//!
//! A proof's `B` arrives compressed from the network and must lie in G2 before it enters a
//! pairing. arkworks tests `ψ(Q) = [6x₀²]Q`, a 127-bit multiplication; this module tests
//! `[x₀+1]Q + ψ([x₀]Q) + ψ²([x₀]Q) = ψ³([2x₀]Q)` (Dai, Lin, Zhao and Zhou, "Fast subgroup
//! membership testings for G1, G2 and GT on pairing-friendly curves", eprint 2022/348), whose
//! only multiplication is by the curve's seed `x₀`, 63 bits. In criterion the check costs
//! about half of arkworks'.
//!
//! Why it is exact, on BN254:
//! - `ψ(x, y) = (x̄·c_x, ȳ·c_y)`, with `x̄` the conjugate in `Fq2` (its p-power Frobenius),
//!   `c_x = (9+u)^((p−1)/3)` and `c_y = (9+u)^((p−1)/2)`, is an endomorphism of the twist's
//!   group `E'(Fq2)` that acts on G2 as multiplication by `p`. With `p ≡ 6x₀² (mod r)` one
//!   has `(x₀+1) + x₀·p + x₀·p² − 2x₀·p³ ≡ 0 (mod r)`, so every point of G2 passes.
//! - `E'(Fq2)` has order `r·h` with `h = 10069 · 5864401 · 1875725156269 · q₄` (`q₄` a
//!   177-bit prime) square-free and prime to `r`, so each prime part of the group is cyclic
//!   and the test's endomorphism multiplies it by one scalar. The tests take a point of each
//!   prime order dividing `h` and check that it fails: no part but G2 passes.

use ark_bn254::{Fq2, G2Affine, G2Projective};
use ark_ec::AffineRepr;
use ark_ff::{AdditiveGroup, Field, MontFp};

/// The curve's seed `x₀` (`p` and `r` are polynomials in it).
pub const SEED: u64 = 4_965_661_367_192_848_881;

/// `(9+u)^((p−1)/3)`, the factor ψ puts on the conjugated `x`.
const PSI_X: Fq2 = Fq2::new(
    MontFp!("21575463638280843010398324269430826099269044274347216827212613867836435027261"),
    MontFp!("10307601595873709700152284273816112264069230130616436755625194854815875713954"),
);

/// `(9+u)^((p−1)/2)`, the factor ψ puts on the conjugated `y`.
const PSI_Y: Fq2 = Fq2::new(
    MontFp!("2821565182194536844548159561693502659359617185244120367078079554186484126554"),
    MontFp!("3505843767911556378687030309984248845540243509899259641013678093033130930403"),
);

/// ψ on Jacobian coordinates: conjugation is a field automorphism, so it maps
/// `(X/Z², Y/Z³)` to `(X̄/Z̄², Ȳ/Z̄³)` and the factors apply to `X` and `Y` alone.
fn psi(p: &G2Projective) -> G2Projective {
    let mut q = *p;
    q.x.frobenius_map_in_place(1);
    q.y.frobenius_map_in_place(1);
    q.z.frobenius_map_in_place(1);
    q.x *= PSI_X;
    q.y *= PSI_Y;
    q
}

/// Whether `q`, a point of the twist curve, lies in G2. Same answer as arkworks'
/// `is_in_correct_subgroup_assuming_on_curve`, for about half the work.
pub fn g2_in_subgroup(q: &G2Affine) -> bool {
    // arkworks' double-and-add over the seed's bits, with mixed additions.
    let xq = q.mul_bigint([SEED]);
    let psi_xq = psi(&xq);
    let lhs = xq + q + psi_xq + psi(&psi_xq);
    let rhs = psi(&psi(&psi(&xq.double())));
    lhs == rhs
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_bn254::{Fq, Fr};
    use ark_ec::short_weierstrass::SWCurveConfig;
    use ark_ec::{CurveGroup, PrimeGroup};
    use ark_ff::{BigInteger, PrimeField, UniformRand, Zero};
    use num_bigint::BigUint;
    use rand::SeedableRng;

    /// The prime factors of `h = #E'(Fq2) / r`.
    const COFACTOR_PRIMES: [&str; 4] = [
        "10069",
        "5864401",
        "1875725156269",
        "197620364512881247228717050342013327560683201906968909",
    ];

    fn big(s: &str) -> BigUint {
        s.parse().unwrap()
    }

    fn limbs(n: &BigUint) -> Vec<u64> {
        n.to_u64_digits()
    }

    /// A point of `E'(Fq2)` with a random `x`: almost never in G2.
    fn twist_point(rng: &mut impl rand::Rng) -> G2Affine {
        loop {
            let x = Fq2::rand(rng);
            if let Some(p) = G2Affine::get_point_from_x_unchecked(x, rng.gen()) {
                return p;
            }
        }
    }

    fn order_r() -> BigUint {
        BigUint::from_bytes_le(&Fr::MODULUS.to_bytes_le())
    }

    #[test]
    fn the_seed_gives_the_curve() {
        let x = BigUint::from(SEED);
        let p = BigUint::from_bytes_le(&Fq::MODULUS.to_bytes_le());
        let poly = |c: u32| 36u32 * x.pow(4) + 36u32 * x.pow(3) + c * x.pow(2) + 6u32 * &x + 1u32;
        assert_eq!(poly(24), p);
        assert_eq!(poly(18), order_r());
    }

    #[test]
    fn the_group_order_is_r_times_the_cofactor_primes() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let h: BigUint = COFACTOR_PRIMES.iter().map(|q| big(q)).product();
        let n = order_r() * &h;
        for _ in 0..4 {
            let p = twist_point(&mut rng);
            assert!(p.mul_bigint(limbs(&n)).is_zero());
            assert!(!p.mul_bigint(limbs(&h)).is_zero());
        }
    }

    #[test]
    fn points_of_g2_pass() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        assert!(g2_in_subgroup(&G2Affine::generator()));
        assert!(g2_in_subgroup(&G2Affine::zero()));
        for _ in 0..64 {
            let q = (G2Projective::generator() * Fr::rand(&mut rng)).into_affine();
            assert!(g2_in_subgroup(&q));
        }
        // And G2's part of a random twist point: the cofactor times it.
        for _ in 0..8 {
            let h: BigUint = COFACTOR_PRIMES.iter().map(|q| big(q)).product();
            let q = twist_point(&mut rng).mul_bigint(limbs(&h)).into_affine();
            assert!(g2_in_subgroup(&q));
            assert!(q.is_in_correct_subgroup_assuming_on_curve());
        }
    }

    #[test]
    fn a_point_of_every_other_prime_order_fails() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let h: BigUint = COFACTOR_PRIMES.iter().map(|q| big(q)).product();
        let n = order_r() * &h;
        for q in COFACTOR_PRIMES.iter().map(|q| big(q)) {
            let mut found = 0;
            while found < 3 {
                let t = twist_point(&mut rng).mul_bigint(limbs(&(&n / &q)));
                if t.is_zero() {
                    continue;
                }
                found += 1;
                let t = t.into_affine();
                assert!(t.mul_bigint(limbs(&q)).is_zero(), "order {q}");
                assert!(!g2_in_subgroup(&t), "a point of order {q} passed");
                // A point of G2 plus it fails as well.
                let g = (G2Projective::generator() * Fr::rand(&mut rng) + t).into_affine();
                assert!(!g2_in_subgroup(&g), "G2 plus order {q} passed");
            }
        }
    }

    #[test]
    fn same_answer_as_arkworks_on_random_points() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        for _ in 0..64 {
            let p = twist_point(&mut rng);
            assert!(p.is_on_curve());
            assert_eq!(
                g2_in_subgroup(&p),
                ark_bn254::g2::Config::is_in_correct_subgroup_assuming_on_curve(&p)
            );
            assert!(!g2_in_subgroup(&p));
        }
    }
}
