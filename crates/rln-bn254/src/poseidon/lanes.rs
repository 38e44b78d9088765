//! The partial rounds of Poseidon with two inputs, with their linear layer on AVX-512 IFMA.
//!
//! In the rearranged partial rounds (see `fast.rs`) each round is an S-box (three dependent
//! products) plus a linear layer (five products) that only needs to be ready one round
//! later. With 64-bit scalar limbs both compete for the same multiplier and the round costs
//! about as much as its eight products. Here the S-box chain stays on the scalar unit and the
//! linear layer runs beside it on the vector unit, where `vpmadd52{lo,hi}uq` multiply eight
//! pairs of 52-bit limbs at once.
//!
//! ## One vector step per round
//! Round `r` (S-box output `zᵣ`, linear state `σᵣ = (σ₁, σ₂)`) needs
//! `σᵣ₊₁ = σᵣ + v'ᵣ·zᵣ` and `Wᵣ₊₁ = wᵣ₊₁·σᵣ₊₁ = wᵣ₊₁·σᵣ + uᵣ·zᵣ` with `uᵣ = wᵣ₊₁·v'ᵣ`. One
//! 8-lane product gives all of it:
//!
//! ```text
//! lane:      0        1         2         3            4
//! A      =   z        z         z         σ₁           σ₂
//! B      =   u        v'₁       v'₂       w₁(r+1)      w₂(r+1)
//! ```
//!
//! Before the reduction, lanes 3 and 4 are added into lane 0, and `σ₁, σ₂` (times `2^260`)
//! into lanes 1 and 2, so one Montgomery reduction returns `(W, σ'₁, σ'₂)` in lanes 0–2.
//!
//! ## Representations
//! - The vector lanes hold five 52-bit limbs of the *same integers* as the scalar limbs
//!   (arkworks' `x·2^256`), and the constants `B` hold `b·2^260 mod p`. Montgomery's product
//!   with `R = 2^260` then gives `x·b·2^256`, the scalar form, so values cross between the
//!   units by regrouping bits, with no multiplication.
//! - `σ` is never reduced inside the loop: each round adds less than `1.02p`, so after the
//!   57 rounds it is below `60p < 2^260`, and it is brought below `2p` once at the end.
//!   `W` stays below `2.5p` (`(z·u + σ₁·w₁ + σ₂·w₂)/2^260 + p`), which the scalar addition
//!   that follows accepts.
//!
//! ## Scheduling
//! The loop is software-pipelined: the vector step of round `r` runs while round `r + 1`'s
//! S-box does. For the processor to overlap them, both chains must be in its window at the
//! same time, so the vector step is cut into three parts placed before the S-box's three
//! products. The compiler would move all vector work after the scalar products (which cost
//! about a quarter of the speed: 6.1 µs per hash instead of 4.7 in one side-by-side run), so
//! empty assembly blocks ([`pin`]) fix the order.

use std::arch::asm;
use std::arch::x86_64::{
    __m512i, _mm512_add_epi64, _mm512_castsi512_si128, _mm512_loadu_si512, _mm512_madd52hi_epu64,
    _mm512_madd52lo_epu64, _mm512_mask_add_epi64, _mm512_mask_blend_epi64, _mm512_maskz_mov_epi64,
    _mm512_permutexvar_epi64, _mm512_set1_epi64, _mm512_setr_epi64, _mm512_setzero_si512,
    _mm512_srli_epi64, _mm512_storeu_si512, _mm_cvtsi128_si64,
};

use ark_bn254::Fr;
use ark_ff::{AdditiveGroup, Field, PrimeField};

use super::fast::Partial;
use crate::cpu::{Adx, Ifma};
use crate::limb52::{self, join_wide, split, FrModulus, Modulus, LIMBS};
use crate::scalar::{to_fr, Limbs};

const LANES: usize = 8;

/// Five 52-bit limbs of eight lanes, limb-major.
type Vector = [__m512i; LIMBS];
/// A [`Vector`] in memory: `lanes[l][k]` is limb `l` of lane `k`.
type Stored = [[u64; LANES]; LIMBS];
/// The unreduced product: ten columns of 52-bit weight.
type Columns = [__m512i; 2 * LIMBS];

/// The modulus in 52-bit limbs.
const P: [u64; LIMBS] = FrModulus::P;
/// `−p⁻¹ mod 2^52`.
const P_INV: u64 = FrModulus::P_INV;

/// The constants of the vector steps.
pub(super) struct Lanes {
    /// Per round, `B` (lanes 5–7 zero).
    b: Vec<Stored>,
    /// Per round, `eᵣ`.
    e: Vec<Limbs>,
    /// `w₀`, for the first round's `W₀ = w₀·σ₀` (on the scalar unit).
    w0: [Limbs; 2],
    /// `2^k·p` for k = 5, 4, 3, 2, 1, as five words: the final reduction of `σ`.
    multiples: [[u64; 5]; 5],
}

impl Lanes {
    /// The vector constants for width 3; only with an `Ifma` token, so that a `Lanes` shows
    /// the CPU runs AVX-512F and AVX-512 IFMA. `None` without rounds.
    pub(super) fn new(_ifma: Ifma, partial: &[Partial]) -> Option<Lanes> {
        if partial.is_empty() {
            return None;
        }
        let r260 = Fr::from(2u64).pow([260u64]);
        // `b·2^260 mod p` in limbs.
        let ours = |x: Fr| split(&(x * r260).into_bigint().0);
        let pair = |limbs: &[Limbs; 3]| [to_fr(&limbs[0]), to_fr(&limbs[1])];
        let n = partial.len();
        let b = (0..n)
            .map(|r| {
                let v = pair(&partial[r].v);
                let w = partial
                    .get(r + 1)
                    .map_or([Fr::ZERO; 2], |next| pair(&next.w));
                let u = w[0] * v[0] + w[1] * v[1];
                let zero = Fr::ZERO;
                let lanes = [u, v[0], v[1], w[0], w[1], zero, zero, zero].map(ours);
                std::array::from_fn(|l| std::array::from_fn(|k| lanes[k][l]))
            })
            .collect();
        let multiples = std::array::from_fn(|i| {
            let mut x = [0u64; 5];
            x[..4].copy_from_slice(&Fr::MODULUS.0);
            let shift = 5 - i as u32;
            x[4] = x[3] >> (64 - shift);
            for j in (1..4).rev() {
                x[j] = x[j] << shift | x[j - 1] >> (64 - shift);
            }
            x[0] <<= shift;
            x
        });
        Some(Lanes {
            b,
            e: partial.iter().map(|round| round.e).collect(),
            w0: [partial[0].w[0], partial[0].w[1]],
            multiples,
        })
    }

    /// The partial rounds from `(a, σ₁, σ₂)` (all below `2p`): the final `a` and `σ`, below
    /// `2p`.
    ///
    /// # Safety
    /// The CPU must have AVX-512F and AVX-512 IFMA, which the `Ifma` token given to
    /// [`Lanes::new`] showed.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) unsafe fn partial_rounds(
        &self,
        cpu: Adx,
        a: Limbs,
        s1: Limbs,
        s2: Limbs,
    ) -> (Limbs, Limbs, Limbs) {
        let n = self.b.len();
        let (l1, l2) = (split(&s1), split(&s2));
        let mut r: Vector = std::array::from_fn(|l| {
            _mm512_setr_epi64(0, l1[l] as i64, l2[l] as i64, 0, 0, 0, 0, 0)
        });
        let first_w = cpu.dot2(&s1, &self.w0[0], &s2, &self.w0[1]);
        let mut z_prev = pow5(cpu, &a);
        let mut a = cpu.add(&z_prev, &cpu.add(&first_w, &self.e[0]));
        for round in 0..n - 1 {
            // S-box of round + 1, interleaved with the vector step of round.
            let b = self.load(round);
            let mut t = self.product(&z_prev, &r, &b);
            pin(&mut a, &mut t);
            let mut a2 = cpu.square(&a);
            t = self.reduce(t, 0, 3);
            pin(&mut a2, &mut t);
            let mut a4 = cpu.square(&a2);
            t = normalise(self.reduce(t, 3, LIMBS));
            pin(&mut a4, &mut t);
            let z = cpu.mul(&a4, &a);
            r = upper(&t);
            let w: [u64; LIMBS] =
                std::array::from_fn(|l| _mm_cvtsi128_si64(_mm512_castsi512_si128(r[l])) as u64);
            let w = join_wide(&w);
            let k = cpu.add(&[w[0], w[1], w[2], w[3]], &self.e[round + 1]);
            a = cpu.add(&z, &k);
            z_prev = z;
        }
        let last = self.load(n - 1);
        r = upper(&normalise(self.reduce(
            self.product(&z_prev, &r, &last),
            0,
            LIMBS,
        )));
        let mut stored: Stored = [[0; LANES]; LIMBS];
        for (row, limb) in stored.iter_mut().zip(r) {
            // SAFETY: `row` is 64 writable bytes; the store is unaligned.
            unsafe { _mm512_storeu_si512(row.as_mut_ptr().cast(), limb) };
        }
        let sigma = |lane: usize| self.below_2p(&std::array::from_fn(|l| stored[l][lane]));
        (a, sigma(1), sigma(2))
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn load(&self, round: usize) -> Vector {
        let b = &self.b[round];
        // SAFETY: each row of `b` is 64 readable bytes; the load is unaligned.
        std::array::from_fn(|l| unsafe { _mm512_loadu_si512(b[l].as_ptr().cast()) })
    }

    /// `A·B` with `A = (z, z, z, σ₁, σ₂)` from `z` and the previous step's lanes `r`; lanes
    /// 3 and 4 are then added into lane 0, and `σ·2^260` into lanes 1 and 2.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn product(&self, z: &Limbs, r: &Vector, b: &Vector) -> Columns {
        let zero = _mm512_setzero_si512();
        let z = split(z);
        let to_3_4 = _mm512_setr_epi64(0, 0, 0, 1, 2, 0, 0, 0);
        let a: Vector = std::array::from_fn(|l| {
            let sigma = _mm512_permutexvar_epi64(to_3_4, r[l]);
            _mm512_mask_blend_epi64(0b11000, _mm512_set1_epi64(z[l] as i64), sigma)
        });
        // Low and high halves in separate columns keep the dependency chains at five.
        let mut lo = [zero; 2 * LIMBS];
        let mut hi = [zero; 2 * LIMBS];
        for (i, b_i) in b.iter().enumerate() {
            for (j, a_j) in a.iter().enumerate() {
                lo[i + j] = _mm512_madd52lo_epu64(lo[i + j], *a_j, *b_i);
                hi[i + j + 1] = _mm512_madd52hi_epu64(hi[i + j + 1], *a_j, *b_i);
            }
        }
        let (lane3, lane4) = (_mm512_set1_epi64(3), _mm512_set1_epi64(4));
        let mut t: Columns = std::array::from_fn(|k| {
            let column = _mm512_add_epi64(lo[k], hi[k]);
            let folded = _mm512_add_epi64(
                _mm512_permutexvar_epi64(lane3, column),
                _mm512_permutexvar_epi64(lane4, column),
            );
            _mm512_mask_add_epi64(column, 0b1, column, folded)
        });
        for l in 0..LIMBS {
            t[LIMBS + l] = _mm512_add_epi64(t[LIMBS + l], _mm512_maskz_mov_epi64(0b110, r[l]));
        }
        t
    }

    /// Montgomery reduction steps `from..to` (of five): each adds `m·p·2^(52i)` to clear
    /// column `i` and carries it into column `i + 1`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn reduce(&self, mut t: Columns, from: usize, to: usize) -> Columns {
        let zero = _mm512_setzero_si512();
        let p_inv = _mm512_set1_epi64(P_INV as i64);
        let p: Vector = std::array::from_fn(|l| _mm512_set1_epi64(P[l] as i64));
        for i in from..to {
            // The multiplier reads only the low 52 bits of t[i], which is all m needs.
            let m = _mm512_madd52lo_epu64(zero, t[i], p_inv);
            let carry = _mm512_srli_epi64::<52>(_mm512_madd52lo_epu64(t[i], m, p[0]));
            let high = _mm512_madd52hi_epu64(zero, m, p[0]);
            for j in 1..LIMBS {
                t[i + j] = _mm512_madd52lo_epu64(t[i + j], m, p[j]);
                if i + j + 1 < 2 * LIMBS {
                    t[i + j + 1] = _mm512_madd52hi_epu64(t[i + j + 1], m, p[j]);
                }
            }
            t[i + 1] = _mm512_add_epi64(t[i + 1], _mm512_add_epi64(high, carry));
        }
        t
    }

    /// A value below `2^260` (five words of 64 bits) brought below `2p`.
    fn below_2p(&self, limbs: &[u64; LIMBS]) -> Limbs {
        let mut x = join_wide(limbs);
        for multiple in &self.multiples {
            let mut difference = [0u64; 5];
            let mut borrow = false;
            for ((d, &x), &m) in difference.iter_mut().zip(&x).zip(multiple) {
                let (v, b1) = x.overflowing_sub(m);
                let (v, b2) = v.overflowing_sub(u64::from(borrow));
                *d = v;
                borrow = b1 | b2;
            }
            if !borrow {
                x = difference;
            }
        }
        [x[0], x[1], x[2], x[3]]
    }
}

/// Passes one limb of a scalar value and the columns through registers at this point of the
/// program. The compiler would otherwise gather the vector work of a round after its scalar
/// products, so that the processor's window sees one chain at a time; with the pins, each
/// product of the S-box is followed by its share of the vector step.
#[target_feature(enable = "avx512f,avx512ifma")]
#[inline]
fn pin(x: &mut Limbs, t: &mut Columns) {
    // SAFETY: the block is empty: no instruction, memory access or flag change.
    unsafe {
        asm!(
            "/* {x} {t0} {t1} {t2} {t3} {t4} {t5} {t6} {t7} {t8} {t9} */",
            x = inout(reg) x[0],
            t0 = inout(zmm_reg) t[0],
            t1 = inout(zmm_reg) t[1],
            t2 = inout(zmm_reg) t[2],
            t3 = inout(zmm_reg) t[3],
            t4 = inout(zmm_reg) t[4],
            t5 = inout(zmm_reg) t[5],
            t6 = inout(zmm_reg) t[6],
            t7 = inout(zmm_reg) t[7],
            t8 = inout(zmm_reg) t[8],
            t9 = inout(zmm_reg) t[9],
            options(pure, nomem, nostack, preserves_flags),
        );
    }
}

/// The upper five columns (the reduced value) with their carries propagated: limbs of 52
/// bits. The lower five are left as they are.
#[target_feature(enable = "avx512f,avx512ifma")]
#[inline]
fn normalise(mut t: Columns) -> Columns {
    let upper = limb52::normalise(upper(&t));
    t[LIMBS..].copy_from_slice(&upper);
    t
}

/// The upper five columns.
fn upper(t: &Columns) -> Vector {
    std::array::from_fn(|l| t[LIMBS + l])
}

#[inline(always)]
fn pow5(cpu: Adx, a: &Limbs) -> Limbs {
    cpu.mul(&cpu.square(&cpu.square(a)), a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limb52::MASK;
    use crate::scalar::limbs;

    /// `k·p` as five 64-bit words.
    fn times_p(k: u64) -> [u64; 5] {
        let mut x = [0u64; 5];
        let mut carry = 0u128;
        for (word, &p) in x.iter_mut().zip(&Fr::MODULUS.0) {
            let v = u128::from(p) * u128::from(k) + carry;
            *word = v as u64;
            carry = v >> 64;
        }
        x[4] = carry as u64;
        x
    }

    /// The constants for one all-zero round, or `None` with a note without the token.
    fn one_round() -> Option<Lanes> {
        let Some(ifma) = Ifma::detect() else {
            eprintln!("skipped: no AVX-512 IFMA token (CPU or RLN_FORCE_PORTABLE)");
            return None;
        };
        assert!(Lanes::new(ifma, &[]).is_none());
        Lanes::new(ifma, &[Partial::zero()])
    }

    #[test]
    fn multiples_of_p_for_the_final_reduction() {
        if let Some(lanes) = one_round() {
            for (i, multiple) in lanes.multiples.iter().enumerate() {
                assert_eq!(*multiple, times_p(32 >> i));
            }
        }
    }

    #[test]
    fn large_sigma_comes_back_below_2p() {
        let Some(lanes) = one_round() else {
            return;
        };
        // 63p + 5, in 52-bit limbs, reduces to 5 + p (below 2p, equal to 5 mod p).
        let mut x = times_p(63);
        x[0] += 5;
        let limbs52 = [
            x[0] & MASK,
            (x[0] >> 52 | x[1] << 12) & MASK,
            (x[1] >> 40 | x[2] << 24) & MASK,
            (x[2] >> 28 | x[3] << 36) & MASK,
            x[3] >> 16 | x[4] << 48,
        ];
        let reduced = lanes.below_2p(&limbs52);
        assert!(reduced.iter().rev().cmp([0u64, 0, 0, 5].iter()).is_gt());
        assert_eq!(limbs(&to_fr(&reduced)), [5, 0, 0, 0]);
    }
}
