//! Poseidon over BN254 with the circomlib parameters, for 1 to 3 inputs.
//!
//! Built on `light-poseidon`, whose circom parameter sets match circomlib's `Poseidon(n)`
//! template (t = n + 1, 8 full rounds). The parameter tables are built once per thread:
//! constructing them costs far more than a hash.

use std::cell::RefCell;

use light_poseidon::{Poseidon, PoseidonHasher};

use crate::field::Fr;

/// Largest input count offered here (the RLN circuit needs 1, 2 and 3).
pub const MAX_INPUTS: usize = 3;

thread_local! {
    static HASHERS: RefCell<Option<[Poseidon<Fr>; MAX_INPUTS]>> = const { RefCell::new(None) };
}

fn new_hashers() -> [Poseidon<Fr>; MAX_INPUTS] {
    // The circom parameter sets for widths 2..=4 are compiled into light-poseidon; building
    // them only fails for widths it does not carry.
    let build = |n: usize| match Poseidon::<Fr>::new_circom(n) {
        Ok(hasher) => hasher,
        Err(err) => unreachable!(
            "light-poseidon carries circom parameters for width {}: {err}",
            n + 1
        ),
    };
    [build(1), build(2), build(3)]
}

fn hash_n<const N: usize>(inputs: [Fr; N]) -> Fr {
    const { assert!(N >= 1 && N <= MAX_INPUTS) };
    HASHERS.with(|cell| {
        let mut slot = cell.borrow_mut();
        let hashers = slot.get_or_insert_with(new_hashers);
        match hashers[N - 1].hash(&inputs) {
            Ok(out) => out,
            // The input count is fixed by the type and matches the hasher's width.
            Err(err) => unreachable!("poseidon({N}) with {N} inputs: {err}"),
        }
    })
}

/// `Poseidon([a])`.
pub fn poseidon1(a: Fr) -> Fr {
    hash_n([a])
}

/// `Poseidon([a, b])`.
pub fn poseidon2(a: Fr, b: Fr) -> Fr {
    hash_n([a, b])
}

/// `Poseidon([a, b, c])`.
pub fn poseidon3(a: Fr, b: Fr, c: Fr) -> Fr {
    hash_n([a, b, c])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::fr_from_u64;
    use ark_ff::{BigInteger, PrimeField};

    fn dec(value: Fr) -> String {
        let bytes = value.into_bigint().to_bytes_be();
        // Decimal via repeated division is overkill here; compare through hex instead.
        hex::encode(bytes)
    }

    // Known answers of circomlibjs for Poseidon([1]) and Poseidon([1, 2]), the classic
    // published values of circomlib's test suite (also checked against the npm package by the
    // integration tests).
    #[test]
    fn circomlib_published_values() {
        assert_eq!(
            dec(poseidon2(fr_from_u64(1), fr_from_u64(2))),
            "115cc0f5e7d690413df64c6b9662e9cf2a3617f2743245519e19607a4417189a"
        );
        assert_eq!(
            dec(poseidon1(fr_from_u64(1))),
            "29176100eaa962bdc1fe6c654d6a3c130e96a4d1168b33848b897dc502820133"
        );
    }

    #[test]
    fn widths_differ() {
        let one = fr_from_u64(1);
        assert_ne!(poseidon2(one, Fr::from(0u64)), poseidon1(one));
        assert_ne!(poseidon3(one, one, one), poseidon2(one, one));
    }
}
