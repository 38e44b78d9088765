//! Field elements as five 52-bit limbs: the form of the AVX-512 IFMA paths.
//!
//! `vpmadd52{lo,hi}uq` multiply the low 52 bits of eight pairs of 64-bit lanes and add the
//! low or high half of each 104-bit product into a third vector. An element of either BN254
//! field (both moduli are below `2^254`) then fits five such limbs, least significant first,
//! with twelve spare bits per lane to absorb carries between normalisations.
//!
//! Two users share this module: the 8-lane fields of [`crate::lanes`] (MSMs and FFTs) and
//! the vector half of Poseidon's partial rounds. Here are the moduli's constants, the
//! regrouping between 64-bit words and 52-bit limbs (free of multiplications, so values move
//! between the scalar and the vector units cheaply), and the carry propagation.

use ark_bn254::{Fq, Fr};
use ark_ff::{BigInt, PrimeField};

/// Limbs per element.
pub(crate) const LIMBS: usize = 5;
/// The bits of one limb.
pub(crate) const MASK: u64 = (1 << 52) - 1;

/// An element's 52-bit limbs, least significant first.
pub(crate) type Limbs = [u64; LIMBS];

/// 256 bits in four 64-bit words as five 52-bit limbs.
#[inline]
pub(crate) const fn split(x: &[u64; 4]) -> Limbs {
    [
        x[0] & MASK,
        ((x[0] >> 52) | (x[1] << 12)) & MASK,
        ((x[1] >> 40) | (x[2] << 24)) & MASK,
        ((x[2] >> 28) | (x[3] << 36)) & MASK,
        x[3] >> 16,
    ]
}

/// Normalised limbs of a value below `2^256` as four 64-bit words.
#[inline]
pub(crate) fn join(x: &Limbs) -> [u64; 4] {
    let [w0, w1, w2, w3, _] = join_wide(x);
    [w0, w1, w2, w3]
}

/// Limbs whose lower four are normalised, the top one of any size, as five 64-bit words:
/// the four low words and what lies above `2^256`.
#[inline]
pub(crate) fn join_wide(x: &Limbs) -> [u64; 5] {
    [
        x[0] | (x[1] << 52),
        (x[1] >> 12) | (x[2] << 40),
        (x[2] >> 24) | (x[3] << 28),
        (x[3] >> 36) | (x[4] << 16),
        x[4] >> 48,
    ]
}

/// A field's modulus `p` and the constants of its lanes, all in 52-bit limbs.
pub(crate) trait Modulus: Copy + 'static {
    /// The arkworks field.
    type Field: PrimeField<BigInt = BigInt<4>>;
    /// `p`, `2p` and `4p`.
    const P: Limbs;
    const P2: Limbs;
    const P4: Limbs;
    /// `−p⁻¹ mod 2^52`.
    const P_INV: u64;
    /// `2^264 mod p`: multiplying an arkworks representation (`x·2^256`) by it gives `x·2^260`.
    const TO_OURS: Limbs;
    /// `2^256 mod p`: multiplying `x·2^260` by it gives arkworks' `x·2^256`.
    const TO_ARKWORKS: Limbs;
    /// One, `2^260 mod p`.
    const ONE: Limbs;
    /// arkworks' Montgomery representation of `value` (`value·2^256 mod p`).
    fn raw(value: &Self::Field) -> [u64; 4];
    /// The element with Montgomery representation `raw` (below `p`).
    fn from_raw(raw: [u64; 4]) -> Self::Field;
}

/// The base field's modulus (coordinates of G1 and G2).
#[derive(Clone, Copy)]
pub(crate) enum FqModulus {}

/// The scalar field's modulus (witnesses, the quotient).
#[derive(Clone, Copy)]
pub(crate) enum FrModulus {}

impl Modulus for FqModulus {
    type Field = Fq;
    fn raw(value: &Fq) -> [u64; 4] {
        value.0 .0
    }
    fn from_raw(raw: [u64; 4]) -> Fq {
        Fq::new_unchecked(BigInt(raw))
    }
    const P: Limbs = [
        0x8c16d87cfd47,
        0x916871ca8d3c2,
        0x181585d97816a,
        0xa029b85045b68,
        0x30644e72e131,
    ];
    const P2: Limbs = [
        0x1182db0f9fa8e,
        0x22d0e3951a784,
        0x302b0bb2f02d5,
        0x405370a08b6d0,
        0x60c89ce5c263,
    ];
    const P4: Limbs = [
        0x2305b61f3f51c,
        0x45a1c72a34f08,
        0x60561765e05aa,
        0x80a6e14116da0,
        0xc19139cb84c6,
    ];
    const P_INV: u64 = 0x20782e4866389;
    const TO_OURS: Limbs = [
        0xb0f2afaec667a,
        0xed9626b0fffbd,
        0x9e2a0fcad825a,
        0xe357276f48b70,
        0xd791464ef86,
    ];
    const TO_ARKWORKS: Limbs = [
        0xd438dc58f0d9d,
        0x28f5c70b3dd35,
        0x879462c0a78eb,
        0xdf2f666ea36f7,
        0xe0a77c19a07,
    ];
    const ONE: Limbs = [
        0x20880f6fce4b4,
        0x49baa989a8455,
        0x18f014a498908,
        0x724f85a9201d8,
        0x1f16424e1bb7,
    ];
}

impl Modulus for FrModulus {
    type Field = Fr;
    fn raw(value: &Fr) -> [u64; 4] {
        value.0 .0
    }
    fn from_raw(raw: [u64; 4]) -> Fr {
        Fr::new_unchecked(BigInt(raw))
    }
    const P: Limbs = [
        0x1f593f0000001,
        0x4879b9709143e,
        0x181585d2833e8,
        0xa029b85045b68,
        0x30644e72e131,
    ];
    const P2: Limbs = [
        0x3eb27e0000002,
        0x90f372e12287c,
        0x302b0ba5067d0,
        0x405370a08b6d0,
        0x60c89ce5c263,
    ];
    const P4: Limbs = [
        0x7d64fc0000004,
        0x21e6e5c2450f8,
        0x6056174a0cfa1,
        0x80a6e14116da0,
        0xc19139cb84c6,
    ];
    const P_INV: u64 = 0x1f593efffffff;
    const TO_OURS: Limbs = [
        0x31f8c9ffffab6,
        0xac31329faef6e,
        0x9e2a3495d7570,
        0xe357276f48b70,
        0xd791464ef86,
    ];
    const TO_ARKWORKS: Limbs = [
        0x6341c4ffffffb,
        0x959f60cd29ac9,
        0x879462e36fc76,
        0xdf2f666ea36f7,
        0xe0a77c19a07,
    ];
    const ONE: Limbs = [
        0xb6b753fffffac,
        0x380f271055b9d,
        0x18f016ecef7c8,
        0x724f85a9201d8,
        0x1f16424e1bb7,
    ];
}

/// Carries from each limb into the next, so that limbs 0–3 hold 52 bits and the top limb the
/// rest. Limbs may be negative (the shifts are arithmetic): for a value in `0..2^260` every
/// limb ends in `0..2^52`, and for a negative value the top limb ends negative.
///
/// `#[inline]`: it is called from generic code that other crates instantiate (the MSMs'
/// lanes), where a call across the crate boundary per field operation costs a fifth of a
/// proof.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512ifma")]
#[inline]
pub(crate) fn normalise(
    mut t: [std::arch::x86_64::__m512i; LIMBS],
) -> [std::arch::x86_64::__m512i; LIMBS] {
    use std::arch::x86_64::{
        _mm512_add_epi64, _mm512_and_si512, _mm512_set1_epi64, _mm512_srai_epi64,
    };
    let mask = _mm512_set1_epi64(MASK as i64);
    for l in 0..LIMBS - 1 {
        let carry = _mm512_srai_epi64::<52>(t[l]);
        t[l] = _mm512_and_si512(t[l], mask);
        t[l + 1] = _mm512_add_epi64(t[l + 1], carry);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::UniformRand;
    use ark_std::rand::SeedableRng;
    use num_bigint::BigUint;

    fn value_of(x: &Limbs) -> BigUint {
        x.iter().rev().fold(BigUint::from(0u32), |acc, l| {
            (acc << 52) + BigUint::from(*l)
        })
    }

    fn check_constants<M: Modulus>() {
        let p: BigUint = M::Field::MODULUS.into();
        assert_eq!(value_of(&M::P), p);
        assert_eq!(M::P, split(&M::Field::MODULUS.0));
        assert_eq!(value_of(&M::P2), &p * 2u32);
        assert_eq!(value_of(&M::P4), &p * 4u32);
        let two = BigUint::from(2u32);
        assert_eq!(
            value_of(&M::TO_OURS),
            two.modpow(&BigUint::from(264u32), &p)
        );
        assert_eq!(
            value_of(&M::TO_ARKWORKS),
            two.modpow(&BigUint::from(256u32), &p)
        );
        assert_eq!(value_of(&M::ONE), two.modpow(&BigUint::from(260u32), &p));
        assert_eq!(
            M::P[0].wrapping_mul(M::P_INV) & MASK,
            MASK,
            "P_INV is −p⁻¹ mod 2^52"
        );
        // The bound that lets multiplication take inputs below 8p.
        assert!(&p * 64u32 < BigUint::from(1u32) << 260);
    }

    #[test]
    fn constants_follow_from_the_modulus() {
        check_constants::<FqModulus>();
        check_constants::<FrModulus>();
    }

    #[test]
    fn regrouping_is_inverse_and_keeps_the_top() {
        let mut rng = ark_std::rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let x = Fq::rand(&mut rng).0 .0;
            assert_eq!(join(&split(&x)), x);
        }
        let x = [u64::MAX, 0x0123_4567_89ab_cdef, 1 << 63, u64::MAX];
        assert_eq!(join(&split(&x)), x);
        // A top limb past 2^48 spills into the fifth word.
        let mut limbs = split(&x);
        limbs[4] += 5 << 48;
        assert_eq!(join_wide(&limbs), [x[0], x[1], x[2], x[3], 5]);
    }
}
