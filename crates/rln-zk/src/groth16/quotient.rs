//! The quotient `h = (A·B − C) / Z` of a Groth16 proof, in the form circom's proving keys
//! expect: evaluations on the odd coset of the domain of twice the size (snarkjs's `H`
//! query is in that Lagrange basis, so no final interpolation is needed).
//!
//! Same result as `ark_circom::CircomReduction::witness_map_from_matrices`; the difference is
//! that the three interpolate-then-evaluate chains (for A·z, B·z and their product) run side
//! by side (in `rln_bn254::fft`, eight lanes wide where the CPU allows), and the domain is
//! built once.

use ark_ff::Zero;
use ark_relations::utils::matrix::Matrix;
use rayon::prelude::*;
use rln_bn254::fft::CosetFft;
use rln_core::Fr;

use crate::error::ZkError;

/// The domain of one circuit's quotient.
#[derive(Debug, Clone)]
pub struct QuotientDomain {
    fft: CosetFft,
    num_inputs: usize,
    num_constraints: usize,
}

impl QuotientDomain {
    /// The domain for `num_constraints` constraints and `num_inputs` public variables
    /// (the constant one included).
    pub fn new(num_constraints: usize, num_inputs: usize) -> Result<Self, ZkError> {
        let fft = CosetFft::new(num_constraints + num_inputs).ok_or_else(|| {
            ZkError::Proving("the circuit is too large for the field's FFT".into())
        })?;
        Ok(Self {
            fft,
            num_inputs,
            num_constraints,
        })
    }

    /// Number of evaluations of `h` (the size of the proving key's `H` query).
    pub fn size(&self) -> usize {
        self.fft.size()
    }

    /// `h` for the witness `z` of the circuit whose `A` and `B` matrices are given.
    pub fn evaluate(&self, a_matrix: &Matrix<Fr>, b_matrix: &Matrix<Fr>, z: &[Fr]) -> Vec<Fr> {
        let n = self.fft.size();
        let rows = self.num_constraints.min(a_matrix.len()).min(b_matrix.len());
        let row_value = |row: &[(Fr, usize)]| -> Fr {
            row.iter()
                .map(|(coefficient, wire)| z.get(*wire).map_or(Fr::zero(), |v| *coefficient * v))
                .sum()
        };
        let mut a = vec![Fr::zero(); n];
        let mut b = vec![Fr::zero(); n];
        a[..rows]
            .par_iter_mut()
            .zip(&mut b[..rows])
            .zip(&a_matrix[..rows])
            .zip(&b_matrix[..rows])
            .for_each(|(((a, b), a_row), b_row)| {
                *a = row_value(a_row);
                *b = row_value(b_row);
            });
        // The public inputs' rows (x_i · 1 = x_i) follow the constraints, as snarkjs lays
        // them out; they contribute to A only.
        let inputs = self.num_inputs.min(z.len()).min(n.saturating_sub(rows));
        a[rows..rows + inputs].copy_from_slice(&z[..inputs]);
        let mut c = vec![Fr::zero(); n];
        c[..rows]
            .par_iter_mut()
            .zip(&a[..rows])
            .zip(&b[..rows])
            .for_each(|((c, a), b)| *c = *a * b);

        self.fft.product_on_coset(a, b, c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::UniformRand;
    use ark_groth16::r1cs_to_qap::R1CSToQAP;
    use ark_poly::GeneralEvaluationDomain;
    use ark_std::rand::SeedableRng;

    #[test]
    fn equals_ark_circoms_witness_map() {
        let zkey = crate::keys::ZkeyData::dev().unwrap();
        let mut rng = ark_std::rand::rngs::StdRng::seed_from_u64(3);
        let z: Vec<Fr> = (0..zkey.num_wires).map(|_| Fr::rand(&mut rng)).collect();
        let domain =
            QuotientDomain::new(zkey.num_constraints, zkey.num_instance_variables).unwrap();
        let ours = domain.evaluate(&zkey.matrices[0], &zkey.matrices[1], &z);
        let theirs = ark_circom::CircomReduction::witness_map_from_matrices::<
            Fr,
            GeneralEvaluationDomain<Fr>,
        >(
            &zkey.matrices,
            zkey.num_instance_variables,
            zkey.num_constraints,
            &z,
        )
        .unwrap();
        assert_eq!(ours, theirs);
        // The portable FFTs too, where the 8-lane ones took the call above.
        let portable = QuotientDomain {
            fft: CosetFft::portable(zkey.num_constraints + zkey.num_instance_variables).unwrap(),
            ..domain.clone()
        };
        assert!(!portable.fft.is_wide());
        assert_eq!(
            portable.evaluate(&zkey.matrices[0], &zkey.matrices[1], &z),
            theirs
        );
    }
}
