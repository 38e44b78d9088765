//! Eight BN254 field elements at a time (base field `Fq` or scalar field `Fr`), with AVX-512
//! IFMA.
//!
//! The multi-scalar multiplications spend nearly all their time in independent field
//! multiplications (the affine additions of a batch, in `Fq`; G2's `Fq2` arithmetic is built on
//! this in [`ext`]), and so do the quotient's FFTs (butterflies, in `Fr`, see [`crate::fft`]).
//! On CPUs with AVX-512 IFMA, `vpmadd52{lo,hi}uq` multiply eight pairs of 52-bit limbs at
//! once, and eight Montgomery multiplications cost about as much as one or two with 64-bit
//! scalar limbs. Both moduli are below `2^254`, so one set of bounds serves both; a
//! [`Modulus`] supplies the constants (see [`crate::limb52`]).
//!
//! ## The representation
//! - An element is five 52-bit limbs in radix 2^52, in Montgomery form with `R = 2^260`: the
//!   limbs hold `x·2^260 mod p` (`p` is the modulus at hand). arkworks uses `2^256`, so
//!   conversions multiply by a constant.
//! - Values are kept below `2p` (not `p`). Multiplication accepts inputs below `8p`, because
//!   `64p² < p·2^260`, and its result is below `2p`. Subtractions add a multiple of `p`
//!   instead of borrowing, and `reduce` brings a sum back under a bound when it is stored.
//! - A [`Field8`] holds limb `l` of eight elements in one 512-bit register.
//!
//! Every function with intrinsics carries `#[target_feature(enable = "avx512f,avx512ifma")]`,
//! which makes it `unsafe` to call from code compiled without those features. The users hold
//! an [`Ifma`](crate::cpu::Ifma) token, which only detection creates, and enter through one
//! `unsafe` call that cites it.

pub(crate) mod ext;

use std::arch::x86_64::{
    __m512i, __mmask8, _mm512_add_epi64, _mm512_cmplt_epi64_mask, _mm512_loadu_si512,
    _mm512_madd52hi_epu64, _mm512_madd52lo_epu64, _mm512_mask_blend_epi64,
    _mm512_permutexvar_epi64, _mm512_set1_epi64, _mm512_setr_epi64, _mm512_setzero_si512,
    _mm512_srli_epi64, _mm512_storeu_si512, _mm512_sub_epi64,
};
use std::marker::PhantomData;

use crate::limb52::{join, normalise, split, MASK};
pub(crate) use crate::limb52::{FqModulus, FrModulus, Limbs, Modulus, LIMBS};

/// Elements per vector.
pub(crate) const LANES: usize = 8;

/// Limb `l` of eight elements of the field of `M` in register `l`.
pub(crate) struct Field8<M>([__m512i; LIMBS], PhantomData<M>);

impl<M> Clone for Field8<M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M> Copy for Field8<M> {}

/// Eight elements of the base field.
pub(crate) type Fq8 = Field8<FqModulus>;
/// Eight elements of the scalar field.
pub(crate) type Fr8 = Field8<FrModulus>;

/// Column storage: limb `l` of element `k` at `data[l * stride + k]`, which lets a vector load
/// eight consecutive elements' limb with one instruction.
pub(crate) struct Columns {
    data: Vec<u64>,
    stride: usize,
}

impl Columns {
    /// Room for `len` elements, rounded up to whole vectors, all zero.
    pub(crate) fn new(len: usize) -> Self {
        let stride = len.div_ceil(LANES).max(1) * LANES;
        Self {
            data: vec![0; stride * LIMBS],
            stride,
        }
    }

    #[inline(always)]
    pub(crate) fn set(&mut self, k: usize, value: &Limbs) {
        for (l, limb) in value.iter().enumerate() {
            self.data[l * self.stride + k] = *limb;
        }
    }

    #[inline(always)]
    pub(crate) fn get(&self, k: usize) -> Limbs {
        std::array::from_fn(|l| self.data[l * self.stride + k])
    }

    /// Elements `8·row .. 8·row + 8`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn load<M>(&self, row: usize) -> Field8<M> {
        Field8(
            std::array::from_fn(|l| {
                let start = l * self.stride + row * LANES;
                let lanes: &[u64] = &self.data[start..start + LANES];
                // SAFETY: `lanes` is eight initialised u64 (64 bytes); the load is unaligned.
                unsafe { _mm512_loadu_si512(lanes.as_ptr().cast()) }
            }),
            PhantomData,
        )
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn store<M>(&mut self, row: usize, value: Field8<M>) {
        for (l, limb) in value.0.iter().enumerate() {
            let start = l * self.stride + row * LANES;
            let lanes: &mut [u64] = &mut self.data[start..start + LANES];
            // SAFETY: `lanes` is eight u64 (64 bytes) borrowed mutably; the store is unaligned.
            unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().cast(), *limb) }
        }
    }
}

#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn splat<M>(limbs: &Limbs) -> Field8<M> {
    Field8(
        std::array::from_fn(|l| _mm512_set1_epi64(limbs[l] as i64)),
        PhantomData,
    )
}

impl<M: Modulus> Field8<M> {
    /// `a·b·2^-260 mod p`, below `2p`, for `a` and `b` below `8p`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn mul(self, other: Self) -> Self {
        let zero = _mm512_setzero_si512();
        let p_inv = _mm512_set1_epi64(M::P_INV as i64);
        let p = splat::<M>(&M::P).0;
        let (a, b) = (self.0, other.0);
        let mut t = [zero; LIMBS + 1];
        for b_i in b {
            for j in 0..LIMBS {
                t[j] = _mm512_madd52lo_epu64(t[j], a[j], b_i);
                t[j + 1] = _mm512_madd52hi_epu64(t[j + 1], a[j], b_i);
            }
            // The multiplier only reads the low 52 bits of t[0], which is all m needs.
            let m = _mm512_madd52lo_epu64(zero, t[0], p_inv);
            for j in 0..LIMBS {
                t[j] = _mm512_madd52lo_epu64(t[j], m, p[j]);
                t[j + 1] = _mm512_madd52hi_epu64(t[j + 1], m, p[j]);
            }
            // t[0] is now a multiple of 2^52: shift one limb down, keeping its carry.
            let carry = _mm512_srli_epi64::<52>(t[0]);
            t = [_mm512_add_epi64(t[1], carry), t[2], t[3], t[4], t[5], zero];
        }
        Self(normalise([t[0], t[1], t[2], t[3], t[4]]), PhantomData)
    }

    /// `a + b`, for a sum below `2^260`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn add(self, other: Self) -> Self {
        Self(
            normalise(std::array::from_fn(|l| {
                _mm512_add_epi64(self.0[l], other.0[l])
            })),
            PhantomData,
        )
    }

    /// `a + k·p − b` for `b ≤ k·p`, with `k·p` given as limbs (`P2` or `P4`).
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn sub_with(self, other: Self, multiple: &Limbs) -> Self {
        let offset = splat::<M>(multiple).0;
        Self(
            normalise(std::array::from_fn(|l| {
                _mm512_sub_epi64(_mm512_add_epi64(self.0[l], offset[l]), other.0[l])
            })),
            PhantomData,
        )
    }

    /// `a + 2p − b`, for `b ≤ 2p`: below `2p` more than `a`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn sub(self, other: Self) -> Self {
        self.sub_with(other, &M::P2)
    }

    /// `a + 4p − b`, for `b ≤ 4p`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn sub_4p(self, other: Self) -> Self {
        self.sub_with(other, &M::P4)
    }

    /// `a − m` in the lanes where `a ≥ m`, `a` elsewhere.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn reduce_by(self, multiple: &Limbs) -> Self {
        let m = splat::<M>(multiple).0;
        let d = normalise(std::array::from_fn(|l| _mm512_sub_epi64(self.0[l], m[l])));
        let negative = _mm512_cmplt_epi64_mask(d[LIMBS - 1], _mm512_setzero_si512());
        Self(
            std::array::from_fn(|l| _mm512_mask_blend_epi64(negative, d[l], self.0[l])),
            PhantomData,
        )
    }

    /// Below `2p`, for an input below `6p`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn reduce_6p(self) -> Self {
        self.reduce_by(&M::P4).reduce_by(&M::P2)
    }

    /// Below `2p`, for an input below `4p`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn reduce_4p(self) -> Self {
        self.reduce_by(&M::P2)
    }

    /// Lane `k` of the result is lane `k ^ distance` of `self` (`distance` is 1, 2 or 4):
    /// the partner of each lane in a butterfly across lanes.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn swap_lanes(self, distance: usize) -> Self {
        let d = distance as i64;
        let index = _mm512_setr_epi64(d, 1 ^ d, 2 ^ d, 3 ^ d, 4 ^ d, 5 ^ d, 6 ^ d, 7 ^ d);
        Self(
            self.0.map(|limb| _mm512_permutexvar_epi64(index, limb)),
            PhantomData,
        )
    }

    /// Lane `k` from `other` where bit `k` of `mask` is set, from `self` elsewhere.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn blend(self, mask: __mmask8, other: Self) -> Self {
        Self(
            std::array::from_fn(|l| _mm512_mask_blend_epi64(mask, self.0[l], other.0[l])),
            PhantomData,
        )
    }
}

/// Eight elements' limbs in one vector each (lane `k` is `values[k]`); on the stack.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn gather<M>(values: &[Limbs; LANES]) -> Field8<M> {
    let rows: [[u64; LANES]; LIMBS] = std::array::from_fn(|l| values.map(|v| v[l]));
    Field8(
        // SAFETY: each row is eight initialised u64 (64 bytes); the load is unaligned.
        rows.map(|row| unsafe { _mm512_loadu_si512(row.as_ptr().cast()) }),
        PhantomData,
    )
}

impl<M> Field8<M> {
    /// The eight elements' limbs, lane by lane: the inverse of [`gather`].
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn scatter(self) -> [Limbs; LANES] {
        let mut rows = [[0u64; LANES]; LIMBS];
        for (row, limb) in rows.iter_mut().zip(self.0) {
            // SAFETY: `row` is eight u64 (64 bytes) borrowed mutably; the store is unaligned.
            unsafe { _mm512_storeu_si512(row.as_mut_ptr().cast(), limb) }
        }
        std::array::from_fn(|k| rows.map(|row| row[k]))
    }
}

/// Up to eight arkworks elements in our form (missing ones are zero).
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn from_arkworks<M: Modulus>(values: &[M::Field]) -> [Limbs; LANES] {
    let mut limbs = [[0; LIMBS]; LANES];
    for (out, value) in limbs.iter_mut().zip(values) {
        // The Montgomery representation, x·2^256 mod p, below p.
        *out = split(&M::raw(value));
    }
    gather::<M>(&limbs).mul(splat(&M::TO_OURS)).scatter()
}

/// Up to eight of our elements (below `2p`) as arkworks elements (missing ones are zero).
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn to_arkworks<M: Modulus>(values: &[Limbs]) -> [M::Field; LANES] {
    let mut limbs = [[0; LIMBS]; LANES];
    for (out, value) in limbs.iter_mut().zip(values) {
        *out = *value;
    }
    arkworks_of(gather::<M>(&limbs))
}

/// Eight of our elements (below `8p`) as arkworks elements.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn arkworks_of<M: Modulus>(value: Field8<M>) -> [M::Field; LANES] {
    // x·2^260 · 2^256 · 2^-260 = x·2^256, below 2p; then below p.
    value
        .mul(splat(&M::TO_ARKWORKS))
        .reduce_by(&M::P)
        .scatter()
        .map(|limbs| M::from_raw(join(&limbs)))
}

/// `2p − y`: the negation, at most `2p` for `y ≤ 2p`.
#[inline(always)]
pub(crate) fn negate<M: Modulus>(y: &Limbs) -> Limbs {
    let mut out = [0u64; LIMBS];
    let mut borrow = 0u64;
    for l in 0..LIMBS {
        let d = M::P2[l].wrapping_sub(y[l]).wrapping_sub(borrow);
        // A borrow shows as the sign bit of the 64-bit difference (both terms are < 2^53).
        borrow = d >> 63;
        out[l] = d & MASK;
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cpu::Ifma;
    use ark_bn254::{Fq, Fr};
    use ark_ff::{Field, One, PrimeField, UniformRand, Zero};
    use ark_std::rand::SeedableRng;
    use num_bigint::BigUint;

    fn limbs_of(x: &BigUint) -> Limbs {
        std::array::from_fn(|l| {
            let limb: BigUint = (x >> (52 * l)) & BigUint::from(MASK);
            limb.iter_u64_digits().next().unwrap_or(0)
        })
    }

    fn value_of(x: &Limbs) -> BigUint {
        x.iter().rev().fold(BigUint::from(0u32), |acc, l| {
            (acc << 52) + BigUint::from(*l)
        })
    }

    /// The token, or `None` with a note: without it the 8-lane tests have nothing to run
    /// (the portable paths are tested against them elsewhere).
    pub(crate) fn ifma_or_note() -> Option<Ifma> {
        let token = Ifma::detect();
        if token.is_none() {
            eprintln!("no AVX-512 IFMA token: the 8-lane arithmetic is not exercised");
        }
        token
    }

    /// Runs `f` only with the token.
    fn with_ifma(f: impl FnOnce()) {
        if ifma_or_note().is_some() {
            f();
        }
    }

    #[test]
    fn arithmetic_matches_arkworks_up_to_the_bounds() {
        with_ifma(|| {
            check_arithmetic::<FqModulus>();
            check_arithmetic::<FrModulus>();
        });
    }

    fn check_arithmetic<M: Modulus>() {
        {
            let mut rng = ark_std::rand::rngs::StdRng::seed_from_u64(2);
            let p: BigUint = M::Field::MODULUS.into();
            let r_inv = BigUint::from(2u32)
                .modpow(&(&p - 2u32), &p)
                .modpow(&BigUint::from(260u32), &p);
            // Raw limb values below 8p, with the extremes.
            let big = |rng: &mut ark_std::rand::rngs::StdRng, bound: u32| {
                let x: BigUint = M::Field::rand(rng).into();
                let y: BigUint = M::Field::rand(rng).into();
                (x * &p + y) % (&p * bound)
            };
            for round in 0..200 {
                let bound = [2u32, 4, 8][round % 3];
                let a: Vec<BigUint> = (0..LANES)
                    .map(|k| match (round, k) {
                        (0, 0) => &p * bound - 1u32,
                        (0, 1) => BigUint::from(0u32),
                        (1, _) => &p * bound - 1u32,
                        _ => big(&mut rng, bound),
                    })
                    .collect();
                let b: Vec<BigUint> = (0..LANES)
                    .map(|k| match (round, k) {
                        (0, 0) | (1, _) => &p * bound - 1u32,
                        (0, 2) => p.clone(),
                        _ => big(&mut rng, bound),
                    })
                    .collect();
                let mut ca = Columns::new(LANES);
                let mut cb = Columns::new(LANES);
                for k in 0..LANES {
                    ca.set(k, &limbs_of(&a[k]));
                    cb.set(k, &limbs_of(&b[k]));
                }
                // SAFETY: `with_ifma` runs this only with an `Ifma` token.
                let (va, vb): (Field8<M>, Field8<M>) = unsafe { (ca.load(0), cb.load(0)) };
                let mut out = Columns::new(LANES);
                let check =
                    |out: &Columns, what: &str, bound: u32, f: &dyn Fn(usize) -> BigUint| {
                        for k in 0..LANES {
                            let got = out.get(k);
                            assert!(got.iter().all(|l| *l <= MASK), "{what}: limbs normalised");
                            let value = value_of(&got);
                            assert!(value < &p * bound, "{what}: lane {k} below {bound}p");
                            assert_eq!(value % &p, f(k) % &p, "{what}: lane {k}, round {round}");
                        }
                    };
                unsafe { out.store(0, va.mul(vb)) };
                check(&out, "mul", 2, &|k| &a[k] * &b[k] * &r_inv);
                if bound <= 4 {
                    unsafe { out.store(0, va.sub_4p(vb)) };
                    check(&out, "sub_4p", 8, &|k| &a[k] + &p * 4u32 - &b[k]);
                    unsafe { out.store(0, va.add(vb).reduce_by(&M::P4).reduce_by(&M::P4)) };
                    check(&out, "add, reduce", 4, &|k| &a[k] + &b[k]);
                }
                if bound == 2 {
                    unsafe { out.store(0, va.sub(vb).reduce_4p()) };
                    check(&out, "sub, reduce_4p", 2, &|k| &a[k] + &p * 2u32 - &b[k]);
                    unsafe { out.store(0, va.add(va).add(vb).reduce_6p()) };
                    check(&out, "add, reduce_6p", 2, &|k| &a[k] * 2u32 + &b[k]);
                }
                // Lane moves: partner lanes and blends.
                for distance in [1, 4] {
                    unsafe { out.store(0, va.swap_lanes(distance).blend(0b1010_0101, vb)) };
                    check(&out, "swap, blend", bound, &|k| {
                        if 0b1010_0101 & (1 << k) != 0 {
                            b[k].clone()
                        } else {
                            a[k ^ distance].clone()
                        }
                    });
                }
            }
        }
    }

    #[test]
    fn conversions_round_trip_and_respect_the_field() {
        with_ifma(|| {
            let mut rng = ark_std::rand::rngs::StdRng::seed_from_u64(3);
            let values: Vec<Fq> = (0..LANES)
                .map(|k| match k {
                    0 => Fq::zero(),
                    1 => Fq::one(),
                    2 => -Fq::one(),
                    _ => Fq::rand(&mut rng),
                })
                .collect();
            // SAFETY: `with_ifma` runs this only with an `Ifma` token.
            unsafe {
                let ours = from_arkworks::<FqModulus>(&values);
                assert_eq!(ours[1], FqModulus::ONE);
                assert!(ours[0] == [0; LIMBS] || ours[0] == FqModulus::P);
                assert_eq!(to_arkworks::<FqModulus>(&ours).to_vec(), values);
                let scalars: Vec<Fr> = (0..LANES).map(|_| Fr::rand(&mut rng)).collect();
                let scalar_limbs = from_arkworks::<FrModulus>(&scalars);
                assert_eq!(to_arkworks::<FrModulus>(&scalar_limbs).to_vec(), scalars);
                // Products agree with arkworks'.
                let mut ca = Columns::new(LANES);
                let mut cb = Columns::new(LANES);
                let others: Vec<Fq> = (0..LANES).map(|_| Fq::rand(&mut rng)).collect();
                let theirs = from_arkworks::<FqModulus>(&others);
                for k in 0..LANES {
                    ca.set(k, &ours[k]);
                    cb.set(k, &theirs[k]);
                }
                let mut out = Columns::new(LANES);
                out.store(0, ca.load::<FqModulus>(0).mul(cb.load(0)).mul(cb.load(0)));
                let got: Vec<Limbs> = (0..LANES).map(|k| out.get(k)).collect();
                let expected: Vec<Fq> =
                    (0..LANES).map(|k| values[k] * others[k].square()).collect();
                assert_eq!(to_arkworks::<FqModulus>(&got).to_vec(), expected);
                // Negation.
                for k in 0..LANES {
                    let negated = to_arkworks::<FqModulus>(&[negate::<FqModulus>(&ours[k])])[0];
                    if !values[k].is_zero() {
                        assert_eq!(negated, -values[k]);
                    }
                }
            }
        });
    }
}
