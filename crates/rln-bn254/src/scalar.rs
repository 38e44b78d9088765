//! BN254 scalar-field arithmetic in x86-64 assembly (BMI2 and ADX), for Poseidon.
//!
//! A Poseidon hash is some 500 field multiplications and nothing else of weight, so it runs
//! as fast as its multiplications. Here they are written with `mulx` (a 64×64-bit product
//! that leaves the flags alone) and `adcx`/`adox` (two independent carry chains), which is
//! what these instructions exist for; the compiler does not emit them from Rust.
//!
//! ## The representation
//! - [`Limbs`] are arkworks' own Montgomery limbs (`x·2^256 mod p`, least significant first),
//!   so conversion from an [`Fr`] is free.
//! - Values are kept below `2p` instead of `p`. Since `4p < 2^256`, a Montgomery product of
//!   two values below `2p` comes out below `2p` with no final subtraction
//!   (`(a·b + m·p) / 2^256 < 4p²/2^256 + p < 2p`); this is the "no-carry" form of CIOS.
//! - [`Adx::add`] brings a sum back below `2p` with one branch-free subtraction, and
//!   [`to_fr`] brings a value below `p` when it leaves.
//! - [`Adx::dot2`] computes `a·b + c·d` with one reduction instead of two, for matrix rows.
//!   Its accumulator stays below `a + c + p < 5p < 2^256` at every step.
//!
//! The arithmetic is reached through an [`Adx`] token, which only [`Adx::detect`] hands out,
//! on a CPU that has both instruction-set extensions (and when the portable path is not
//! forced).

use std::arch::asm;

use ark_bn254::Fr;
use ark_ff::BigInt;

use crate::cpu::Adx;

/// A field element's four 64-bit Montgomery limbs, least significant first, below `2p`.
pub(crate) type Limbs = [u64; 4];

/// `p` (the order of BN254's groups), then `−p⁻¹ mod 2^64`.
static MODULUS: [u64; 5] = [
    0x43e1f593f0000001,
    0x2833e84879b97091,
    0xb85045b68181585d,
    0x30644e72e131a029,
    neg_inverse(0x43e1f593f0000001),
];

/// `2p`.
static MODULUS_2: [u64; 4] = [
    0x87c3eb27e0000002,
    0x5067d090f372e122,
    0x70a08b6d0302b0ba,
    0x60c89ce5c2634053,
];

/// `−x⁻¹ mod 2^64` for odd `x`: Newton's iteration doubles the correct low bits each step.
const fn neg_inverse(x: u64) -> u64 {
    let mut inverse: u64 = 1;
    let mut i = 0;
    while i < 6 {
        inverse = inverse.wrapping_mul(2u64.wrapping_sub(x.wrapping_mul(inverse)));
        i += 1;
    }
    inverse.wrapping_neg()
}

/// Nothing for a top word that already holds a value, `mov $a, 0` for a fresh one.
macro_rules! top_word {
    (more, $a:literal) => {
        ""
    };
    (fresh, $a:literal) => {
        concat!("mov ", $a, ", 0\n")
    };
}

/// `t += x · y[i]` (`$off` is `8·i`). Low halves go through the OF chain, high halves
/// through the CF chain, and both end in the top word `$a` (see [`top_word!`] for `$init`). The top word
/// cannot overflow: the accumulator is bounded well below `2^320` (see the module's bounds).
macro_rules! accumulate_with {
    ($init:ident, $x:literal, $y:literal, $off:literal, $t0:literal, $t1:literal, $t2:literal, $t3:literal, $a:literal) => {
        concat!(
            "mov rdx, qword ptr [",
            $y,
            " + ",
            $off,
            "]\n",
            "xor {lo:e}, {lo:e}\n",
            "mulx {h0}, {lo}, qword ptr [",
            $x,
            "]\n",
            "adox ",
            $t0,
            ", {lo}\n",
            "mulx {h1}, {lo}, qword ptr [",
            $x,
            " + 8]\n",
            "adox ",
            $t1,
            ", {lo}\n",
            "adcx ",
            $t1,
            ", {h0}\n",
            "mulx {h0}, {lo}, qword ptr [",
            $x,
            " + 16]\n",
            "adox ",
            $t2,
            ", {lo}\n",
            "adcx ",
            $t2,
            ", {h1}\n",
            "mulx {h1}, {lo}, qword ptr [",
            $x,
            " + 24]\n",
            "adox ",
            $t3,
            ", {lo}\n",
            "adcx ",
            $t3,
            ", {h0}\n",
            top_word!($init, $a),
            "adox ",
            $a,
            ", {h1}\n",
            "adc ",
            $a,
            ", 0\n",
        )
    };
}

/// [`accumulate_with!`] into a top word that already holds a value.
macro_rules! accumulate {
    ($x:literal, $y:literal, $off:literal, $t0:literal, $t1:literal, $t2:literal, $t3:literal, $a:literal) => {
        accumulate_with!(more, $x, $y, $off, $t0, $t1, $t2, $t3, $a)
    };
}

/// [`accumulate_with!`] into a fresh top word `$a`.
macro_rules! accumulate_fresh {
    ($x:literal, $y:literal, $off:literal, $t0:literal, $t1:literal, $t2:literal, $t3:literal, $a:literal) => {
        accumulate_with!(fresh, $x, $y, $off, $t0, $t1, $t2, $t3, $a)
    };
}

/// `t = x · y[0]` into fresh words `{r0}`..`{r4}`.
macro_rules! first_product {
    ($x:literal, $y:literal) => {
        concat!(
            "mov rdx, qword ptr [",
            $y,
            "]\n",
            "mulx {r1}, {r0}, qword ptr [",
            $x,
            "]\n",
            "mulx {r2}, {lo}, qword ptr [",
            $x,
            " + 8]\n",
            "add {r1}, {lo}\n",
            "mulx {r3}, {lo}, qword ptr [",
            $x,
            " + 16]\n",
            "adc {r2}, {lo}\n",
            "mulx {r4}, {lo}, qword ptr [",
            $x,
            " + 24]\n",
            "adc {r3}, {lo}\n",
            "adc {r4}, 0\n",
        )
    };
}

/// One Montgomery step of CIOS: `t = (t + m·p) / 2^64` with `m = t0·(−p⁻¹)`. The result is
/// left in `$t1, $t2, $t3, $a`; `$t0` is free afterwards.
macro_rules! cios_reduce {
    ($t0:literal, $t1:literal, $t2:literal, $t3:literal, $a:literal) => {
        concat!(
            "mov rdx, ",
            $t0,
            "\n",
            "imul rdx, qword ptr [rip + {p} + 32]\n",
            "xor {lo:e}, {lo:e}\n",
            "mulx {h0}, {lo}, qword ptr [rip + {p}]\n",
            "adcx {lo}, ",
            $t0,
            "\n",
            "mulx {h1}, {lo}, qword ptr [rip + {p} + 8]\n",
            "adcx ",
            $t1,
            ", {lo}\n",
            "adox ",
            $t1,
            ", {h0}\n",
            "mulx {h0}, {lo}, qword ptr [rip + {p} + 16]\n",
            "adcx ",
            $t2,
            ", {lo}\n",
            "adox ",
            $t2,
            ", {h1}\n",
            "mulx {h1}, {lo}, qword ptr [rip + {p} + 24]\n",
            "adcx ",
            $t3,
            ", {lo}\n",
            "adox ",
            $t3,
            ", {h0}\n",
            "adox ",
            $a,
            ", {h1}\n",
            "adc ",
            $a,
            ", 0\n",
        )
    };
}

/// One step of Montgomery's reduction of a 512-bit square: adds `m·p·2^(64i)` so that word
/// `$ti` becomes zero. The carries into `$t4` (CF) and past it (OF) are left pending.
macro_rules! redc_step {
    ($ti:literal, $t1:literal, $t2:literal, $t3:literal, $t4:literal) => {
        concat!(
            "mov rdx, ",
            $ti,
            "\n",
            "imul rdx, qword ptr [rip + {p} + 32]\n",
            "xor {lo:e}, {lo:e}\n",
            "mulx {hi}, {lo}, qword ptr [rip + {p}]\n",
            "adcx {lo}, ",
            $ti,
            "\n",
            "adox ",
            $t1,
            ", {hi}\n",
            "mulx {hi}, {lo}, qword ptr [rip + {p} + 8]\n",
            "adcx ",
            $t1,
            ", {lo}\n",
            "adox ",
            $t2,
            ", {hi}\n",
            "mulx {hi}, {lo}, qword ptr [rip + {p} + 16]\n",
            "adcx ",
            $t2,
            ", {lo}\n",
            "adox ",
            $t3,
            ", {hi}\n",
            "mulx {hi}, {lo}, qword ptr [rip + {p} + 24]\n",
            "adcx ",
            $t3,
            ", {lo}\n",
            "adox ",
            $t4,
            ", {hi}\n",
        )
    };
}

/// The arithmetic is the methods of the token: holding an [`Adx`] is what makes the
/// assembly sound to run.
impl Adx {
    /// `a·b·2^-256 mod p`, below `2p`, for `a` and `b` below `2p`.
    #[inline(always)]
    pub(crate) fn mul(self, a: &Limbs, b: &Limbs) -> Limbs {
        let (r0, r1, r2, r4): (u64, u64, u64, u64);
        // SAFETY: `self`, an `Adx` token, shows the CPU runs mulx, adcx and adox. The block reads 32 bytes
        // through each of `a` and `b` (references to four limbs) and the static MODULUS,
        // writes only its declared registers, and does not touch the stack.
        unsafe {
            asm!(
                first_product!("{a}", "{b}"),
                cios_reduce!("{r0}", "{r1}", "{r2}", "{r3}", "{r4}"),
                accumulate_fresh!("{a}", "{b}", "8", "{r1}", "{r2}", "{r3}", "{r4}", "{r0}"),
                cios_reduce!("{r1}", "{r2}", "{r3}", "{r4}", "{r0}"),
                accumulate_fresh!("{a}", "{b}", "16", "{r2}", "{r3}", "{r4}", "{r0}", "{r1}"),
                cios_reduce!("{r2}", "{r3}", "{r4}", "{r0}", "{r1}"),
                accumulate_fresh!("{a}", "{b}", "24", "{r3}", "{r4}", "{r0}", "{r1}", "{r2}"),
                cios_reduce!("{r3}", "{r4}", "{r0}", "{r1}", "{r2}"),
                a = in(reg) a.as_ptr(),
                b = in(reg) b.as_ptr(),
                p = sym MODULUS,
                r0 = out(reg) r0, r1 = out(reg) r1, r2 = out(reg) r2, r3 = out(reg) _,
                r4 = out(reg) r4,
                lo = out(reg) _, h0 = out(reg) _, h1 = out(reg) _,
                out("rdx") _,
                options(pure, readonly, nostack),
            );
        }
        [r4, r0, r1, r2]
    }

    /// `(a·b + c·d)·2^-256 mod p` with one reduction, below `2p`, for `a` and `c` below `2p`
    /// and `b` and `d` below `p` (the matrix's constants).
    #[inline(always)]
    pub(crate) fn dot2(self, a: &Limbs, b: &Limbs, c: &Limbs, d: &Limbs) -> Limbs {
        let (r0, r1, r2, r4): (u64, u64, u64, u64);
        // SAFETY: as in `mul`, with 32 bytes read through each of `a`, `b`, `c` and `d`.
        unsafe {
            asm!(
                first_product!("{a}", "{b}"),
                accumulate!("{c}", "{d}", "0", "{r0}", "{r1}", "{r2}", "{r3}", "{r4}"),
                cios_reduce!("{r0}", "{r1}", "{r2}", "{r3}", "{r4}"),
                accumulate_fresh!("{a}", "{b}", "8", "{r1}", "{r2}", "{r3}", "{r4}", "{r0}"),
                accumulate!("{c}", "{d}", "8", "{r1}", "{r2}", "{r3}", "{r4}", "{r0}"),
                cios_reduce!("{r1}", "{r2}", "{r3}", "{r4}", "{r0}"),
                accumulate_fresh!("{a}", "{b}", "16", "{r2}", "{r3}", "{r4}", "{r0}", "{r1}"),
                accumulate!("{c}", "{d}", "16", "{r2}", "{r3}", "{r4}", "{r0}", "{r1}"),
                cios_reduce!("{r2}", "{r3}", "{r4}", "{r0}", "{r1}"),
                accumulate_fresh!("{a}", "{b}", "24", "{r3}", "{r4}", "{r0}", "{r1}", "{r2}"),
                accumulate!("{c}", "{d}", "24", "{r3}", "{r4}", "{r0}", "{r1}", "{r2}"),
                cios_reduce!("{r3}", "{r4}", "{r0}", "{r1}", "{r2}"),
                a = in(reg) a.as_ptr(),
                b = in(reg) b.as_ptr(),
                c = in(reg) c.as_ptr(),
                d = in(reg) d.as_ptr(),
                p = sym MODULUS,
                r0 = out(reg) r0, r1 = out(reg) r1, r2 = out(reg) r2, r3 = out(reg) _,
                r4 = out(reg) r4,
                lo = out(reg) _, h0 = out(reg) _, h1 = out(reg) _,
                out("rdx") _,
                options(pure, readonly, nostack),
            );
        }
        [r4, r0, r1, r2]
    }

    /// `a²·2^-256 mod p`, below `2p`, for `a` below `2p`: the six cross products once,
    /// doubled, plus the four squares, then four reduction steps.
    #[inline(always)]
    pub(crate) fn square(self, a: &Limbs) -> Limbs {
        let (t4, t5, t6, t7): (u64, u64, u64, u64);
        // SAFETY: as in `mul`, with 32 bytes read through `a`. The 512-bit square is below
        // 16p² and adding m·p·2^(64i) keeps it below 2^512, so no carry leaves t7.
        unsafe {
            asm!(
                // Cross products a_i·a_j (i < j) into t1..t6.
                "mov rdx, qword ptr [{a}]",
                "mulx {t2}, {t1}, qword ptr [{a} + 8]",
                "mulx {t3}, {lo}, qword ptr [{a} + 16]",
                "add {t2}, {lo}",
                "mulx {t4}, {lo}, qword ptr [{a} + 24]",
                "adc {t3}, {lo}",
                "adc {t4}, 0",
                "mov rdx, qword ptr [{a} + 8]",
                "xor {zero:e}, {zero:e}",
                "mulx {hi}, {lo}, qword ptr [{a} + 16]",
                "adcx {t3}, {lo}",
                "adox {t4}, {hi}",
                "mulx {t5}, {lo}, qword ptr [{a} + 24]",
                "adcx {t4}, {lo}",
                "adox {t5}, {zero}",
                "adcx {t5}, {zero}",
                "mov rdx, qword ptr [{a} + 16]",
                "mulx {t6}, {lo}, qword ptr [{a} + 24]",
                "add {t5}, {lo}",
                "adc {t6}, 0",
                // Doubled into t1..t7.
                "mov {t7}, 0",
                "add {t1}, {t1}",
                "adc {t2}, {t2}",
                "adc {t3}, {t3}",
                "adc {t4}, {t4}",
                "adc {t5}, {t5}",
                "adc {t6}, {t6}",
                "adc {t7}, 0",
                // Plus the squares a_i² at word 2i.
                "mov rdx, qword ptr [{a}]",
                "mulx {hi}, {t0}, rdx",
                "add {t1}, {hi}",
                "mov rdx, qword ptr [{a} + 8]",
                "mulx {hi}, {lo}, rdx",
                "adc {t2}, {lo}",
                "adc {t3}, {hi}",
                "mov rdx, qword ptr [{a} + 16]",
                "mulx {hi}, {lo}, rdx",
                "adc {t4}, {lo}",
                "adc {t5}, {hi}",
                "mov rdx, qword ptr [{a} + 24]",
                "mulx {hi}, {lo}, rdx",
                "adc {t6}, {lo}",
                "adc {t7}, {hi}",
                // Reduction, carrying both chains to the top after each step.
                redc_step!("{t0}", "{t1}", "{t2}", "{t3}", "{t4}"),
                "adcx {t4}, {zero}",
                "adcx {t5}, {zero}",
                "adox {t5}, {zero}",
                "adcx {t6}, {zero}",
                "adox {t6}, {zero}",
                "adcx {t7}, {zero}",
                "adox {t7}, {zero}",
                redc_step!("{t1}", "{t2}", "{t3}", "{t4}", "{t5}"),
                "adcx {t5}, {zero}",
                "adcx {t6}, {zero}",
                "adox {t6}, {zero}",
                "adcx {t7}, {zero}",
                "adox {t7}, {zero}",
                redc_step!("{t2}", "{t3}", "{t4}", "{t5}", "{t6}"),
                "adcx {t6}, {zero}",
                "adcx {t7}, {zero}",
                "adox {t7}, {zero}",
                redc_step!("{t3}", "{t4}", "{t5}", "{t6}", "{t7}"),
                "adcx {t7}, {zero}",
                a = in(reg) a.as_ptr(),
                p = sym MODULUS,
                t0 = out(reg) _, t1 = out(reg) _, t2 = out(reg) _, t3 = out(reg) _,
                t4 = out(reg) t4, t5 = out(reg) t5, t6 = out(reg) t6, t7 = out(reg) t7,
                lo = out(reg) _, hi = out(reg) _, zero = out(reg) _,
                out("rdx") _,
                options(pure, readonly, nostack),
            );
        }
        [t4, t5, t6, t7]
    }

    /// `a + b` brought below `2p`, for a sum below `4p`.
    #[inline(always)]
    pub(crate) fn add(self, a: &Limbs, b: &Limbs) -> Limbs {
        let [mut s0, mut s1, mut s2, mut s3] = *a;
        // SAFETY: reads 32 bytes through `b` and the static MODULUS_2, and only registers
        // otherwise; add, adc, sub, sbb and cmov are baseline x86-64.
        unsafe {
            asm!(
                "add {s0}, qword ptr [{b}]",
                "adc {s1}, qword ptr [{b} + 8]",
                "adc {s2}, qword ptr [{b} + 16]",
                "adc {s3}, qword ptr [{b} + 24]",
                "mov {d0}, {s0}",
                "mov {d1}, {s1}",
                "mov {d2}, {s2}",
                "mov {d3}, {s3}",
                "sub {d0}, qword ptr [rip + {p2}]",
                "sbb {d1}, qword ptr [rip + {p2} + 8]",
                "sbb {d2}, qword ptr [rip + {p2} + 16]",
                "sbb {d3}, qword ptr [rip + {p2} + 24]",
                "cmovnc {s0}, {d0}",
                "cmovnc {s1}, {d1}",
                "cmovnc {s2}, {d2}",
                "cmovnc {s3}, {d3}",
                b = in(reg) b.as_ptr(),
                p2 = sym MODULUS_2,
                s0 = inout(reg) s0, s1 = inout(reg) s1, s2 = inout(reg) s2, s3 = inout(reg) s3,
                d0 = out(reg) _, d1 = out(reg) _, d2 = out(reg) _, d3 = out(reg) _,
                options(pure, readonly, nostack),
            );
        }
        [s0, s1, s2, s3]
    }
}

/// The limbs of `x` (already below `p`).
pub(crate) fn limbs(x: &Fr) -> Limbs {
    x.0 .0
}

/// The field element of limbs below `2p`.
pub(crate) fn to_fr(x: &Limbs) -> Fr {
    let mut v = *x;
    let p = &MODULUS[..4];
    // Compare from the top word down; equal values count as "at least p".
    let at_least_p = (0..4)
        .rev()
        .find(|&i| v[i] != p[i])
        .is_none_or(|i| v[i] > p[i]);
    if at_least_p {
        let mut borrow = false;
        for (word, &q) in v.iter_mut().zip(p) {
            let (d, b1) = word.overflowing_sub(q);
            let (d, b2) = d.overflowing_sub(u64::from(borrow));
            *word = d;
            borrow = b1 | b2;
        }
    }
    Fr::new_unchecked(BigInt(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::{BigInteger, Field, PrimeField, UniformRand};
    use rand::SeedableRng;

    /// `x + p` as limbs: the same element, in the upper half of the range.
    fn plus_p(x: &Fr) -> Limbs {
        let mut v = x.0;
        v.add_with_carry(&Fr::MODULUS);
        v.0
    }

    #[test]
    fn constants_follow_from_the_modulus() {
        assert_eq!(&MODULUS[..4], &Fr::MODULUS.0[..]);
        assert_eq!(MODULUS[0].wrapping_mul(MODULUS[4]), u64::MAX);
        let mut twice = Fr::MODULUS;
        twice.mul2();
        assert_eq!(MODULUS_2, twice.0);
    }

    #[test]
    fn arithmetic_matches_arkworks_over_the_whole_range() {
        let Some(cpu) = Adx::detect() else {
            eprintln!("skipped: no BMI2+ADX token (CPU or RLN_FORCE_PORTABLE)");
            return;
        };
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        let mut values: Vec<Fr> = (0..200).map(|_| Fr::rand(&mut rng)).collect();
        values.extend([
            Fr::from(0u64),
            Fr::from(1u64),
            -Fr::from(1u64),
            -Fr::from(2u64),
        ]);
        for (k, x) in values.iter().enumerate() {
            let y = values[(k * 7 + 3) % values.len()];
            // Each operand both below p and pushed up by p (just below 2p for −1).
            for (a, b) in [
                (limbs(x), limbs(&y)),
                (plus_p(x), limbs(&y)),
                (limbs(x), plus_p(&y)),
                (plus_p(x), plus_p(&y)),
            ] {
                assert_eq!(to_fr(&cpu.mul(&a, &b)), *x * y);
                assert_eq!(to_fr(&cpu.square(&a)), *x * x);
                assert_eq!(to_fr(&cpu.add(&a, &b)), *x + y);
                let z = values[(k * 13 + 5) % values.len()];
                let w = values[(k * 5 + 1) % values.len()];
                assert_eq!(
                    to_fr(&cpu.dot2(&a, &limbs(&z), &b, &limbs(&w))),
                    *x * z + y * w
                );
                for out in [cpu.mul(&a, &b), cpu.square(&a), cpu.add(&a, &b)] {
                    assert!(out.iter().rev().cmp(MODULUS_2.iter().rev()).is_lt());
                }
            }
        }
    }

    #[test]
    fn results_stay_below_2p_along_long_chains() {
        let Some(cpu) = Adx::detect() else {
            eprintln!("skipped: no BMI2+ADX token (CPU or RLN_FORCE_PORTABLE)");
            return;
        };
        let (mut a, mut x) = (plus_p(&Fr::from(3u64)), Fr::from(3u64));
        let k = -Fr::from(5u64);
        for _ in 0..10_000 {
            a = cpu.add(&cpu.square(&cpu.mul(&a, &limbs(&k))), &plus_p(&k));
            x = (x * k).square() + k;
            assert!(a.iter().rev().cmp(MODULUS_2.iter().rev()).is_lt());
        }
        assert_eq!(to_fr(&a), x);
        assert!(x.into_bigint().num_bits() > 200);
    }
}
