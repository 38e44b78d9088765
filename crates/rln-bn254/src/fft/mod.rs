//! The FFTs of a Groth16 quotient: evaluations on a domain moved to its odd coset, and the
//! product `A·B − C` taken there.
//!
//! circom's proving keys hold the `H` query in the Lagrange basis of the odd coset of the
//! domain of twice the size, so the prover needs `A·B − C` evaluated on that coset: for each
//! of the three vectors an inverse FFT, a multiplication of coefficient `i` by `g^i`, and a
//! forward FFT. [`CosetFft`] runs the three chains side by side, eight lanes wide with an
//! [`Ifma`] token (`lanes.rs`), with arkworks' FFTs otherwise. Both give the same values, and
//! the tests compare them.

#[cfg(target_arch = "x86_64")]
use std::sync::Arc;

use ark_bn254::Fr;
use ark_ff::One;
use ark_poly::{EvaluationDomain, GeneralEvaluationDomain};
use rayon::prelude::*;

use crate::cpu::Ifma;

#[cfg(target_arch = "x86_64")]
mod lanes;

/// The transforms of one domain to its odd coset.
#[derive(Clone)]
pub struct CosetFft {
    domain: GeneralEvaluationDomain<Fr>,
    /// Generator of the domain of twice the size: multiplying coefficient `i` by its `i`-th
    /// power moves evaluation onto the odd coset.
    coset_shift: Fr,
    /// The same transforms eight lanes wide, with an IFMA token.
    #[cfg(target_arch = "x86_64")]
    wide: Option<Arc<lanes::Fft8>>,
}

impl std::fmt::Debug for CosetFft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CosetFft")
            .field("size", &self.size())
            .field("wide", &self.is_wide())
            .finish_non_exhaustive()
    }
}

impl CosetFft {
    /// The smallest power-of-two domain of at least `min_size` points, eight lanes wide where
    /// detection hands out an [`Ifma`] token; `None` if the field has no such domain.
    pub fn new(min_size: usize) -> Option<Self> {
        Self::with_lanes(min_size, Ifma::detect())
    }

    /// The portable transforms (arkworks) whatever the CPU: the reference the 8-lane ones are
    /// tested against.
    pub fn portable(min_size: usize) -> Option<Self> {
        Self::with_lanes(min_size, None)
    }

    /// As [`CosetFft::new`], eight lanes wide exactly when `ifma` is given (and the domain
    /// has at least eight points).
    pub fn with_lanes(min_size: usize, ifma: Option<Ifma>) -> Option<Self> {
        let domain = GeneralEvaluationDomain::<Fr>::new(min_size)?;
        let coset_shift = GeneralEvaluationDomain::<Fr>::new(2 * domain.size())?.element(1);
        #[cfg(target_arch = "x86_64")]
        let wide = ifma
            .and_then(|ifma| lanes::Fft8::new(ifma, domain.size(), domain.element(1), coset_shift))
            .map(Arc::new);
        #[cfg(not(target_arch = "x86_64"))]
        let _ = ifma;
        Some(Self {
            domain,
            coset_shift,
            #[cfg(target_arch = "x86_64")]
            wide,
        })
    }

    /// Number of points of the domain (and of the coset).
    pub fn size(&self) -> usize {
        self.domain.size()
    }

    /// Whether the 8-lane transforms are in use.
    pub fn is_wide(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        return self.wide.is_some();
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// `A·B − C` on the odd coset, from the evaluations of `A`, `B` and `C` on the domain
    /// (natural order; shorter vectors are padded with zeros, longer ones cut to the size).
    pub fn product_on_coset(&self, mut a: Vec<Fr>, mut b: Vec<Fr>, mut c: Vec<Fr>) -> Vec<Fr> {
        let n = self.size();
        for values in [&mut a, &mut b, &mut c] {
            values.resize(n, Fr::from(0u64));
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(fft) = &self.wide {
            let to_coset = |values: &[Fr]| {
                let mut columns = fft.load(values);
                fft.to_coset(&mut columns);
                columns
            };
            let (a, (b, c)) = rayon::join(
                || to_coset(&a),
                || rayon::join(|| to_coset(&b), || to_coset(&c)),
            );
            return fft.combine(&a, &b, &c);
        }
        let to_coset = |values: &mut Vec<Fr>| {
            self.domain.ifft_in_place(values);
            GeneralEvaluationDomain::<Fr>::distribute_powers_and_mul_by_const(
                values,
                self.coset_shift,
                Fr::one(),
            );
            self.domain.fft_in_place(values);
        };
        rayon::join(
            || to_coset(&mut a),
            || rayon::join(|| to_coset(&mut b), || to_coset(&mut c)),
        );
        a.par_iter_mut()
            .zip(&b)
            .zip(&c)
            .for_each(|((a, b), c)| *a = *a * b - c);
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::UniformRand;
    use ark_std::rand::SeedableRng;

    #[test]
    fn the_wide_and_portable_transforms_agree() {
        let mut rng = ark_std::rand::rngs::StdRng::seed_from_u64(32);
        for min_size in [1, 5, 8, 100, 4096] {
            let fast = CosetFft::new(min_size).unwrap();
            let portable = CosetFft::portable(min_size).unwrap();
            assert!(!portable.is_wide());
            assert_eq!(fast.size(), portable.size());
            assert_eq!(
                fast.is_wide(),
                Ifma::detect().is_some() && fast.size() >= 8,
                "size {min_size}"
            );
            let n = fast.size();
            let vectors: Vec<Vec<Fr>> = (0..3)
                .map(|_| (0..n).map(|_| Fr::rand(&mut rng)).collect())
                .collect();
            let run = |fft: &CosetFft| {
                fft.product_on_coset(vectors[0].clone(), vectors[1].clone(), vectors[2].clone())
            };
            let expected = run(&portable);
            assert_eq!(run(&fast), expected, "size {n}");
            // Short input is padded with zeros.
            let short = fast.product_on_coset(vec![Fr::one()], vec![Fr::one()], Vec::new());
            assert_eq!(
                short,
                portable.product_on_coset(vec![Fr::one()], vec![Fr::one()], Vec::new())
            );
        }
    }
}
