//! Poseidon over BN254 with the circomlib parameters, for 1 to 3 inputs.
//!
//! The hash follows circomlibjs's optimised evaluation (`poseidon_opt.js`, after Neptune):
//! the partial rounds multiply by sparse matrices (`2t − 1` products instead of `t²`), which
//! gives exactly the same function as the textbook rounds. Its constants (`C`, `S`, `M`, `P`)
//! are generated from circomlibjs by `tools/gen-poseidon-opt.mjs` into `constants.rs` and
//! parsed once. The tests check the results against `light-poseidon` (the textbook rounds) on
//! random inputs.
//!
//! With an [`Adx`] token (x86-64 CPUs with BMI2 and ADX) the rounds run on assembly
//! arithmetic ([`crate::scalar`]), with the partial rounds rearranged so that only an
//! addition separates one S-box from the next (`fast.rs`); with an [`Ifma`] token too, the
//! partial rounds of two inputs run their linear layer on the vector unit (`lanes.rs`).
//! Without tokens they run on arkworks ([`portable`], also callable directly). All paths
//! give the same function, and the tests compare them.

use std::sync::OnceLock;

use ark_bn254::Fr;

#[cfg(doc)]
use crate::cpu::{Adx, Ifma};

#[rustfmt::skip]
mod constants;
#[cfg(target_arch = "x86_64")]
mod fast;
#[cfg(target_arch = "x86_64")]
mod lanes;

use constants as k;

/// Largest input count offered here (the RLN circuit needs 1, 2 and 3).
pub const MAX_INPUTS: usize = 3;

const FULL_ROUNDS: usize = 8;
const PARTIAL_ROUNDS: [usize; MAX_INPUTS] = [56, 57, 56];

/// The optimised constants of one width `t`.
struct Params {
    t: usize,
    partial: usize,
    c: Vec<Fr>,
    s: Vec<Fr>,
    /// `t × t`, row-major as circomlibjs indexes it: `m[j * t + i]` is `M[j][i]`.
    m: Vec<Fr>,
    p: Vec<Fr>,
    /// The assembly path, where detection handed out its token.
    #[cfg(target_arch = "x86_64")]
    fast: Option<(crate::cpu::Adx, fast::Fast)>,
}

fn parse(list: &[&str]) -> Vec<Fr> {
    list.iter()
        .map(|d| match d.parse::<Fr>() {
            Ok(v) => v,
            // The generated tables are decimal numbers below the modulus.
            Err(_) => unreachable!("the generated constants hold a non-decimal number"),
        })
        .collect()
}

fn params() -> &'static [Params; MAX_INPUTS] {
    static PARAMS: OnceLock<[Params; MAX_INPUTS]> = OnceLock::new();
    PARAMS.get_or_init(|| {
        let make = |t: usize, c: &[&str], s: &[&str], m: &[&str], p: &[&str]| {
            #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
            let mut params = Params {
                t,
                partial: PARTIAL_ROUNDS[t - 2],
                c: parse(c),
                s: parse(s),
                m: parse(m),
                p: parse(p),
                #[cfg(target_arch = "x86_64")]
                fast: None,
            };
            #[cfg(target_arch = "x86_64")]
            {
                params.fast = crate::cpu::Adx::detect().and_then(|cpu| {
                    Some((cpu, fast::Fast::new(&params, crate::cpu::Ifma::detect())?))
                });
            }
            params
        };
        [
            make(2, k::C_T2, k::S_T2, k::M_T2, k::P_T2),
            make(3, k::C_T3, k::S_T3, k::M_T3, k::P_T3),
            make(4, k::C_T4, k::S_T4, k::M_T4, k::P_T4),
        ]
    })
}

#[inline(always)]
fn pow5(a: Fr) -> Fr {
    let a2 = a * a;
    a2 * a2 * a
}

/// `state ← state · matrix` (circomlibjs: `new[i] = Σ_j matrix[j][i] · state[j]`).
#[inline(always)]
fn mix<const T: usize>(state: &mut [Fr; T], matrix: &[Fr]) {
    let old = *state;
    for (i, out) in state.iter_mut().enumerate() {
        let mut acc = Fr::from(0u64);
        for (j, v) in old.iter().enumerate() {
            acc += matrix[j * T + i] * v;
        }
        *out = acc;
    }
}

fn hash_t<const T: usize>(inputs: &[Fr]) -> Fr {
    let p = &params()[T - 2];
    debug_assert_eq!(p.t, T);
    #[cfg(target_arch = "x86_64")]
    if let Some((cpu, fast)) = &p.fast {
        return fast.hash::<T>(*cpu, inputs);
    }
    portable_rounds::<T>(p, inputs)
}

/// The rounds on arkworks' arithmetic, as circomlibjs writes them.
fn portable_rounds<const T: usize>(p: &Params, inputs: &[Fr]) -> Fr {
    let (c, half) = (&p.c, FULL_ROUNDS / 2);
    let mut state = [Fr::from(0u64); T];
    state[1..].copy_from_slice(inputs);
    for (i, s) in state.iter_mut().enumerate() {
        *s += c[i];
    }
    for r in 0..half - 1 {
        for (i, s) in state.iter_mut().enumerate() {
            *s = pow5(*s) + c[(r + 1) * T + i];
        }
        mix(&mut state, &p.m);
    }
    for (i, s) in state.iter_mut().enumerate() {
        *s = pow5(*s) + c[half * T + i];
    }
    mix(&mut state, &p.p);
    for r in 0..p.partial {
        state[0] = pow5(state[0]) + c[(half + 1) * T + r];
        let row = &p.s[(2 * T - 1) * r..(2 * T - 1) * (r + 1)];
        let mut s0 = Fr::from(0u64);
        for (j, v) in state.iter().enumerate() {
            s0 += row[j] * v;
        }
        let first = state[0];
        for k in 1..T {
            state[k] += first * row[T + k - 1];
        }
        state[0] = s0;
    }
    for r in 0..half - 1 {
        for (i, s) in state.iter_mut().enumerate() {
            *s = pow5(*s) + c[(half + 1) * T + p.partial + r * T + i];
        }
        mix(&mut state, &p.m);
    }
    for s in state.iter_mut() {
        *s = pow5(*s);
    }
    mix(&mut state, &p.m);
    state[0]
}

/// `Poseidon([a])`.
pub fn poseidon1(a: Fr) -> Fr {
    hash_t::<2>(&[a])
}

/// `Poseidon([a, b])`.
pub fn poseidon2(a: Fr, b: Fr) -> Fr {
    hash_t::<3>(&[a, b])
}

/// `Poseidon([a, b, c])`.
pub fn poseidon3(a: Fr, b: Fr, c: Fr) -> Fr {
    hash_t::<4>(&[a, b, c])
}

/// The same hashes on arkworks' arithmetic whatever the CPU: the reference the fast paths are
/// tested against, and the baseline of the benchmarks.
pub mod portable {
    use super::{params, portable_rounds, Fr};

    /// `Poseidon([a])`.
    pub fn poseidon1(a: Fr) -> Fr {
        portable_rounds::<2>(&params()[0], &[a])
    }

    /// `Poseidon([a, b])`.
    pub fn poseidon2(a: Fr, b: Fr) -> Fr {
        portable_rounds::<3>(&params()[1], &[a, b])
    }

    /// `Poseidon([a, b, c])`.
    pub fn poseidon3(a: Fr, b: Fr, c: Fr) -> Fr {
        portable_rounds::<4>(&params()[2], &[a, b, c])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::{BigInteger, PrimeField};

    fn fr_from_u64(value: u64) -> Fr {
        Fr::from(value)
    }

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
    fn matches_the_textbook_rounds_of_light_poseidon() {
        use ark_ff::UniformRand;
        use light_poseidon::{Poseidon, PoseidonHasher};
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let mut reference: Vec<Poseidon<Fr>> = (1..=3)
            .map(|n| Poseidon::<Fr>::new_circom(n).unwrap())
            .collect();
        for _ in 0..200 {
            let x: [Fr; 3] = [Fr::rand(&mut rng), Fr::rand(&mut rng), Fr::rand(&mut rng)];
            assert_eq!(poseidon1(x[0]), reference[0].hash(&x[..1]).unwrap());
            assert_eq!(poseidon2(x[0], x[1]), reference[1].hash(&x[..2]).unwrap());
            assert_eq!(poseidon3(x[0], x[1], x[2]), reference[2].hash(&x).unwrap());
            assert_eq!(
                portable::poseidon1(x[0]),
                reference[0].hash(&x[..1]).unwrap()
            );
            assert_eq!(
                portable::poseidon2(x[0], x[1]),
                reference[1].hash(&x[..2]).unwrap()
            );
            assert_eq!(
                portable::poseidon3(x[0], x[1], x[2]),
                reference[2].hash(&x).unwrap()
            );
        }
        // Edge values: zero and −1.
        let m1 = -Fr::from(1u64);
        assert_eq!(
            poseidon2(Fr::from(0u64), m1),
            reference[1].hash(&[Fr::from(0u64), m1]).unwrap()
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_assembly_path_equals_the_portable_one() {
        use ark_ff::UniformRand;
        use rand::SeedableRng;
        let Some(cpu) = crate::cpu::Adx::detect() else {
            eprintln!("skipped: no BMI2+ADX token (CPU or RLN_FORCE_PORTABLE)");
            return;
        };
        let all = params();
        assert!(all.iter().all(|p| p.fast.is_some()));
        // The vector linear layer is taken for two inputs exactly where IFMA has its token.
        let ifma = crate::cpu::Ifma::detect().is_some();
        let lanes = |p: &Params| p.fast.as_ref().is_some_and(|(_, f)| f.lanes.is_some());
        assert_eq!(lanes(&all[1]), ifma);
        assert!(!lanes(&all[0]) && !lanes(&all[2]));
        // The scalar partial rounds of width 3, which IFMA machines skip otherwise.
        let scalar = fast::Fast::new(&all[1], None).unwrap();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(8);
        let m1 = -Fr::from(1u64);
        let mut inputs = vec![[Fr::from(0u64); 3], [m1; 3]];
        inputs.extend((0..300).map(|_| std::array::from_fn(|_| Fr::rand(&mut rng))));
        for x in inputs {
            assert_eq!(poseidon1(x[0]), portable_rounds::<2>(&all[0], &x[..1]));
            assert_eq!(
                poseidon2(x[0], x[1]),
                portable_rounds::<3>(&all[1], &x[..2])
            );
            assert_eq!(
                scalar.hash::<3>(cpu, &x[..2]),
                portable_rounds::<3>(&all[1], &x[..2])
            );
            assert_eq!(
                poseidon3(x[0], x[1], x[2]),
                portable_rounds::<4>(&all[2], &x)
            );
        }
    }

    #[test]
    fn widths_differ() {
        let one = fr_from_u64(1);
        assert_ne!(poseidon2(one, Fr::from(0u64)), poseidon1(one));
        assert_ne!(poseidon3(one, one, one), poseidon2(one, one));
    }
}
