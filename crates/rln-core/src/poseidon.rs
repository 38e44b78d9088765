//! Poseidon over BN254 with the circomlib parameters, for 1 to 3 inputs.
//!
//! The rounds, their constants and their fast paths (x86-64 assembly, AVX-512 IFMA) live in
//! `rln-bn254`, the only crate of the workspace with assembly or intrinsics; this module keeps
//! the names the rest of the node uses. Known answers against circomlibjs are in the
//! integration tests.

pub use rln_bn254::poseidon::{poseidon1, poseidon2, poseidon3, MAX_INPUTS};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::fr_from_u64;

    #[test]
    fn the_names_reach_circomlibs_poseidon() {
        // circomlibjs's Poseidon([1, 2]), also checked in rln-bn254 and the integration tests.
        use ark_ff::{BigInteger, PrimeField};
        let expected = "115cc0f5e7d690413df64c6b9662e9cf2a3617f2743245519e19607a4417189a";
        let got = poseidon2(fr_from_u64(1), fr_from_u64(2));
        assert_eq!(hex::encode(got.into_bigint().to_bytes_be()), expected);
        assert_ne!(
            poseidon1(fr_from_u64(1)),
            poseidon3(fr_from_u64(1), 0.into(), 0.into())
        );
        assert_eq!(MAX_INPUTS, 3);
    }
}
