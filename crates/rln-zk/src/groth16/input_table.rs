//! The public-input term of Groth16 verification, `L(x) = IC₀ + Σ xⱼ·ICⱼ`, from multiples of
//! the verifying key's `IC` points precomputed once.
//!
//! arkworks computes each `xⱼ·ICⱼ` by double-and-add: for five full-size inputs that is about
//! 1,900 group operations, a quarter of a single verification. The points never change for a
//! key, so every multiple `d·2^(6k)·ICⱼ` with `1 ≤ d ≤ 32` is stored (about 90 KB per point),
//! and a scalar costs one mixed addition per non-zero signed 6-bit digit: at most 43.

use ark_bn254::{Fr, G1Affine, G1Projective};
use ark_ec::{AdditiveGroup, AffineRepr, CurveGroup};
use ark_ff::{PrimeField, Zero};

use rln_bn254::msm::for_each_digit;

/// Bits per digit.
const WINDOW: usize = 6;
/// Digits per scalar: 254 bits plus the carry of signed digits.
const WINDOWS: usize = 255usize.div_ceil(WINDOW);
/// Stored multiples per digit position: `1..=2^(WINDOW-1)`.
const MULTIPLES: usize = 1 << (WINDOW - 1);

/// Precomputed multiples of a few fixed G1 points.
#[derive(Clone)]
pub struct InputTable {
    points: usize,
    /// `table[((i * WINDOWS) + k) * MULTIPLES + d - 1] = d · 2^(WINDOW·k) · point_i`.
    table: Vec<G1Affine>,
}

impl std::fmt::Debug for InputTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputTable")
            .field("points", &self.points)
            .finish_non_exhaustive()
    }
}

impl InputTable {
    /// Precomputes the multiples of `points` (for a verifying key, its `gamma_abc_g1`).
    pub fn new(points: &[G1Affine]) -> Self {
        let mut projective = Vec::with_capacity(points.len() * WINDOWS * MULTIPLES);
        for point in points {
            let mut shifted: G1Projective = point.into_group();
            for _ in 0..WINDOWS {
                let mut multiple = shifted;
                for _ in 0..MULTIPLES {
                    projective.push(multiple);
                    multiple += shifted;
                }
                for _ in 0..WINDOW {
                    shifted.double_in_place();
                }
            }
        }
        Self {
            points: points.len(),
            table: G1Projective::normalize_batch(&projective),
        }
    }

    /// `Σ scalars[i] · point_i`; scalars past the table's points are ignored and missing ones
    /// count as zero.
    pub fn combine(&self, scalars: &[Fr]) -> G1Projective {
        self.combine_from(0, scalars)
    }

    /// `IC₀ + Σ inputs[j] · IC_(j+1)`: the input term of one proof's pairing check.
    pub fn public_input_term(&self, inputs: &[Fr]) -> G1Projective {
        match self.table.first() {
            Some(first) => first.into_group() + self.combine_from(1, inputs),
            None => G1Projective::zero(),
        }
    }

    /// `Σ scalars[i] · point_(first+i)`.
    fn combine_from(&self, first: usize, scalars: &[Fr]) -> G1Projective {
        let width = WINDOWS * MULTIPLES;
        let mut sum = G1Projective::zero();
        for (i, scalar) in (first..self.points).zip(scalars) {
            let row = &self.table[i * width..(i + 1) * width];
            for_each_digit(&scalar.into_bigint(), WINDOW, |k, digit| {
                let entry = row[k * MULTIPLES + digit.unsigned_abs() as usize - 1];
                if digit > 0 {
                    sum += entry;
                } else {
                    sum -= entry;
                }
            });
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ec::VariableBaseMSM;
    use ark_ff::{One, UniformRand};
    use ark_std::rand::SeedableRng;

    #[test]
    fn equals_double_and_add_on_edge_and_random_scalars() {
        let mut rng = ark_std::rand::rngs::StdRng::seed_from_u64(3);
        let points: Vec<G1Affine> = (0..6)
            .map(|_| G1Projective::rand(&mut rng).into_affine())
            .collect();
        let table = InputTable::new(&points);
        let edges = [
            Fr::zero(),
            Fr::one(),
            -Fr::one(),
            Fr::from(32u64),
            Fr::from(33u64),
            -Fr::from(32u64),
            Fr::from(u64::MAX),
            Fr::from(1u64 << 63),
        ];
        for round in 0..40 {
            let scalars: Vec<Fr> = (0..6)
                .map(|i| {
                    if round < 8 {
                        edges[(round + i) % edges.len()]
                    } else {
                        Fr::rand(&mut rng)
                    }
                })
                .collect();
            let expected = G1Projective::msm(&points, &scalars).unwrap();
            assert_eq!(table.combine(&scalars), expected, "round {round}");
            let term =
                points[0].into_group() + G1Projective::msm(&points[1..], &scalars[..5]).unwrap();
            assert_eq!(table.public_input_term(&scalars[..5]), term);
        }
        // Short and long scalar lists.
        assert_eq!(
            table.combine(&[Fr::one()]),
            points[0].into_group(),
            "missing scalars count as zero"
        );
        let long = vec![Fr::one(); 9];
        let all: G1Projective = points.iter().map(|p| p.into_group()).sum();
        assert_eq!(table.combine(&long), all, "extra scalars are ignored");
        assert!(InputTable::new(&[]).combine(&long).is_zero());
    }
}
