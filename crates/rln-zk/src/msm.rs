//! Multi-scalar multiplication over bases that never change (the proving key's queries),
//! with the window shifts precomputed.
//!
//! Pippenger's method splits each scalar into `m` windows of `c` bits and, window by window,
//! sorts the bases into `2^(c-1)` buckets (signed digits), sums each bucket and combines the
//! buckets; the windows are then joined by `c` doublings each. The combination costs about
//! `2^c` additions per window, which for a few thousand bases is a large share of the work.
//! With `2^(c·j)·P` stored for every base `P` and window `j`, every window sorts into the
//! same buckets: one combination in all, and a wider window. For the 8,192 bases of the
//! quotient query that is about 0.7× the additions of a fresh multiplication, at 20 stored
//! points per base (about 12 MB).

use ark_ec::CurveGroup;
use ark_ff::{PrimeField, Zero};
use rayon::prelude::*;

/// Bits of the scalar field's modulus, plus one for the carry of signed digits.
const SCALAR_BITS: usize = 255;

/// Precomputed window shifts of a fixed list of bases.
#[derive(Clone)]
pub struct FixedBaseMsm<G: CurveGroup> {
    window: usize,
    windows: usize,
    len: usize,
    /// `table[i * windows + j] = 2^(window·j) · base_i`.
    table: Vec<G::Affine>,
}

impl<G: CurveGroup> std::fmt::Debug for FixedBaseMsm<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixedBaseMsm")
            .field("bases", &self.len)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// The window width that minimises `n·⌈255/c⌉ + 2^c` additions.
pub fn best_window(bases: usize) -> usize {
    (4..=16)
        .min_by_key(|c| bases * SCALAR_BITS.div_ceil(*c) + (1 << c))
        .unwrap_or(8)
}

impl<G: CurveGroup> FixedBaseMsm<G> {
    /// Precomputes the window shifts of `bases` for windows of `window` bits (4 to 16).
    pub fn new(bases: &[G::Affine], window: usize) -> Self {
        let window = window.clamp(4, 16);
        let windows = SCALAR_BITS.div_ceil(window);
        let projective: Vec<G> = bases
            .par_iter()
            .flat_map_iter(|base| {
                let mut point: G = (*base).into();
                (0..windows).map(move |_| {
                    let current = point;
                    for _ in 0..window {
                        point.double_in_place();
                    }
                    current
                })
            })
            .collect();
        Self {
            window,
            windows,
            len: bases.len(),
            table: G::normalize_batch(&projective),
        }
    }

    /// Number of bases.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no bases.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `Σ scalars[i] · base_i`. Extra scalars are ignored; missing ones count as zero.
    pub fn msm(&self, scalars: &[G::ScalarField]) -> G {
        let n = self.len.min(scalars.len());
        if n == 0 {
            return G::zero();
        }
        let threads = rayon::current_num_threads().max(1);
        // Chunks large enough that the per-chunk bucket combination stays a small share.
        let chunk = n.div_ceil(threads).max(1 << self.window.min(12));
        (0..n)
            .step_by(chunk)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|start| self.accumulate(start, (start + chunk).min(n), scalars))
            .sum()
    }

    fn accumulate(&self, start: usize, end: usize, scalars: &[G::ScalarField]) -> G {
        let c = self.window;
        let half = 1usize << (c - 1);
        let mask = (1u64 << c) - 1;
        let mut buckets = vec![G::zero(); half];
        for (i, scalar) in scalars.iter().enumerate().take(end).skip(start) {
            if scalar.is_zero() {
                continue;
            }
            let limbs = scalar.into_bigint();
            let limbs = limbs.as_ref();
            let row = &self.table[i * self.windows..(i + 1) * self.windows];
            let mut carry = 0u64;
            for (j, point) in row.iter().enumerate() {
                let bit = j * c;
                let limb = bit / 64;
                let offset = bit % 64;
                let mut digit = if limb < limbs.len() {
                    limbs[limb] >> offset
                } else {
                    0
                };
                if offset + c > 64 && limb + 1 < limbs.len() {
                    digit |= limbs[limb + 1] << (64 - offset);
                }
                let digit = (digit & mask) + carry;
                if digit == 0 {
                    carry = 0;
                } else if digit as usize <= half {
                    carry = 0;
                    buckets[digit as usize - 1] += point;
                } else {
                    // digit - 2^c, negative: subtract and carry one into the next window.
                    carry = 1;
                    let magnitude = (1u64 << c) - digit;
                    if magnitude > 0 {
                        buckets[magnitude as usize - 1] += &(-*point);
                    }
                }
            }
            debug_assert_eq!(carry, 0, "255 bits hold every scalar with its carry");
        }
        // Σ d·bucket_d as running sums from the top.
        let mut running = G::zero();
        let mut total = G::zero();
        for bucket in buckets.iter().rev() {
            running += bucket;
            total += running;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_bn254::{Fr, G1Affine, G1Projective, G2Affine, G2Projective};
    use ark_ec::VariableBaseMSM;
    use ark_ff::{BigInteger, One, UniformRand};
    use ark_std::rand::SeedableRng;

    fn scalars(n: usize, rng: &mut ark_std::rand::rngs::StdRng) -> Vec<Fr> {
        (0..n)
            .map(|i| match i % 7 {
                0 => Fr::zero(),
                1 => Fr::one(),
                2 => -Fr::one(),
                3 => Fr::from(1u64 << 12),
                4 => -Fr::from(3u64),
                _ => Fr::rand(rng),
            })
            .collect()
    }

    #[test]
    fn equals_arkworks_msm_on_g1_and_g2() {
        let mut rng = ark_std::rand::rngs::StdRng::seed_from_u64(7);
        // Signed digits of a 254-bit scalar need 255 bits of windows.
        assert_eq!(Fr::MODULUS.num_bits(), 254);
        for (n, window) in [(1, 4), (5, 8), (300, 8), (1000, 13), (64, 16)] {
            let bases: Vec<G1Affine> = (0..n)
                .map(|_| G1Projective::rand(&mut rng).into_affine())
                .collect();
            let s = scalars(n, &mut rng);
            let fixed = FixedBaseMsm::<G1Projective>::new(&bases, window);
            assert_eq!(
                fixed.msm(&s),
                G1Projective::msm(&bases, &s).unwrap(),
                "n {n}"
            );
            // Fewer scalars than bases: the rest count as zero.
            assert_eq!(
                fixed.msm(&s[..n / 2]),
                G1Projective::msm(&bases[..n / 2], &s[..n / 2]).unwrap()
            );
        }
        let bases: Vec<G2Affine> = (0..50)
            .map(|_| G2Projective::rand(&mut rng).into_affine())
            .collect();
        let s = scalars(50, &mut rng);
        let fixed = FixedBaseMsm::<G2Projective>::new(&bases, best_window(50));
        assert_eq!(fixed.msm(&s), G2Projective::msm(&bases, &s).unwrap());
        assert!(FixedBaseMsm::<G2Projective>::new(&[], 8).msm(&s).is_zero());
    }

    #[test]
    fn window_choice_grows_with_the_base_count() {
        assert!(best_window(500) < best_window(8192));
        assert!((12..=14).contains(&best_window(8192)));
    }
}
