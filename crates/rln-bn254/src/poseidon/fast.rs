//! Poseidon's rounds on the assembly arithmetic of [`crate::scalar`], with the partial
//! rounds rearranged so that fewer products sit between one S-box and the next.
//!
//! ## The partial rounds
//! circomlibjs's partial round `r` (on state `s`, with sparse row `[m₀, m₁…, v₁…]` and
//! constant `Cᵣ`) is
//!
//! ```text
//! x = s₀⁵ + Cᵣ;   s₀ ← m₀·x + Σₖ mₖ·sₖ;   sₖ ← sₖ + vₖ·x   (k ≥ 1)
//! ```
//!
//! Here `s₀` is carried scaled, `s₀ = λᵣ·a`, with `λ₀ = 1` and `λᵣ₊₁ = m₀·λᵣ⁵`, and the
//! other words without their accumulated constants, `sₖ = σₖ + Fₖ`. A round becomes
//!
//! ```text
//! z = a⁵;   a ← z + eᵣ + Σₖ wₖ·σₖ;   σₖ ← σₖ + vₖ'·z
//! ```
//!
//! with `wₖ = mₖ/λᵣ₊₁`, `vₖ' = vₖ·λᵣ⁵`, `eᵣ = Cᵣ/λᵣ⁵ + Σₖ wₖ·Fₖ` and `Fₖ += vₖ·Cᵣ`. So
//! nothing but an addition lies between one S-box and the next: the products with `σ` use
//! the previous round's values and run beside the S-box. After the last round,
//! `s₀ = λ·a` and `sₖ = σₖ + Fₖ`.

use ark_ff::{AdditiveGroup, Field};

use ark_bn254::Fr;

use super::lanes::Lanes;
use super::{Params, FULL_ROUNDS, MAX_INPUTS};
use crate::cpu::{Adx, Ifma};
use crate::scalar::{limbs, to_fr, Limbs};

/// The constants of one rearranged partial round (entries past `t − 1` unused).
pub(super) struct Partial {
    pub(super) w: [Limbs; MAX_INPUTS],
    pub(super) v: [Limbs; MAX_INPUTS],
    pub(super) e: Limbs,
}

impl Partial {
    pub(super) fn zero() -> Partial {
        Partial {
            w: [[0; 4]; MAX_INPUTS],
            v: [[0; 4]; MAX_INPUTS],
            e: [0; 4],
        }
    }
}

/// One width's constants for the assembly path.
pub(super) struct Fast {
    c: Vec<Limbs>,
    m: Vec<Limbs>,
    p: Vec<Limbs>,
    partial: Vec<Partial>,
    /// `Fₖ` after the last partial round.
    offsets: [Limbs; MAX_INPUTS],
    /// `λ` after the last partial round.
    scale: Limbs,
    /// The partial rounds' linear layer on the vector unit (width 3, with an IFMA token).
    pub(super) lanes: Option<Lanes>,
}

impl Fast {
    /// The rearranged constants, or `None` if a scale would be zero (it is not, for the
    /// circomlib parameters; the tests check that this path exists for every width). With an
    /// `ifma` token, width 3 gets the vector linear layer too.
    pub(super) fn new(params: &Params, ifma: Option<Ifma>) -> Option<Fast> {
        let t = params.t;
        let half = FULL_ROUNDS / 2;
        let mut partial = Vec::with_capacity(params.partial);
        let mut scale = Fr::ONE;
        let mut offsets = [Fr::ZERO; MAX_INPUTS];
        for r in 0..params.partial {
            let row = &params.s[(2 * t - 1) * r..(2 * t - 1) * (r + 1)];
            let constant = params.c[(half + 1) * t + r];
            let scale5 = scale.pow([5u64]);
            let next = row[0] * scale5;
            let (next_inv, scale5_inv) = (next.inverse()?, scale5.inverse()?);
            let mut round = Partial::zero();
            let mut e = constant * scale5_inv;
            for k in 1..t {
                let w = row[k] * next_inv;
                e += w * offsets[k - 1];
                round.w[k - 1] = limbs(&w);
                round.v[k - 1] = limbs(&(row[t + k - 1] * scale5));
                offsets[k - 1] += row[t + k - 1] * constant;
            }
            round.e = limbs(&e);
            partial.push(round);
            scale = next;
        }
        let lanes = match ifma {
            Some(ifma) if t == 3 => Lanes::new(ifma, &partial),
            _ => None,
        };
        Some(Fast {
            lanes,
            c: params.c.iter().map(limbs).collect(),
            m: params.m.iter().map(limbs).collect(),
            p: params.p.iter().map(limbs).collect(),
            partial,
            offsets: offsets.map(|f| limbs(&f)),
            scale: limbs(&scale),
        })
    }

    /// The partial rounds on the scalar unit: the final `a` and `σ` (`σ₀` unused).
    fn partial_rounds<const T: usize>(&self, cpu: Adx, state: &[Limbs; T]) -> (Limbs, [Limbs; T]) {
        let mut a = state[0];
        let mut sigma = *state;
        for round in &self.partial {
            let z = pow5(cpu, &a);
            let sum = cpu.add(&round.e, &dot(cpu, &sigma[1..], |k| &round.w[k]));
            a = cpu.add(&z, &sum);
            for (k, s) in sigma.iter_mut().enumerate().skip(1) {
                *s = cpu.add(s, &cpu.mul(&z, &round.v[k - 1]));
            }
        }
        (a, sigma)
    }

    /// The hash of `inputs` (`T − 1` of them).
    pub(super) fn hash<const T: usize>(&self, cpu: Adx, inputs: &[Fr]) -> Fr {
        match &self.lanes {
            // SAFETY: a `Lanes` is built only with an `Ifma` token (`Lanes::new` takes one),
            // so the CPU has AVX-512F and AVX-512 IFMA.
            Some(lanes) => unsafe { self.hash_with_lanes::<T>(cpu, lanes, inputs) },
            None => self.rounds::<T>(cpu, None, inputs),
        }
    }

    /// [`Fast::hash`] compiled for AVX-512, so that the whole hash is one function.
    ///
    /// # Safety
    /// The CPU must have AVX-512F and AVX-512 IFMA.
    #[target_feature(enable = "avx512f,avx512ifma")]
    unsafe fn hash_with_lanes<const T: usize>(&self, cpu: Adx, lanes: &Lanes, inputs: &[Fr]) -> Fr {
        self.rounds::<T>(cpu, Some(lanes), inputs)
    }

    /// The rounds; with `lanes` (width 3), the partial rounds' linear layer on the vector unit.
    #[inline(always)]
    fn rounds<const T: usize>(&self, cpu: Adx, lanes: Option<&Lanes>, inputs: &[Fr]) -> Fr {
        let (c, half) = (&self.c, FULL_ROUNDS / 2);
        let mut state = [c[0]; T];
        for (i, x) in inputs.iter().enumerate() {
            state[i + 1] = cpu.add(&limbs(x), &c[i + 1]);
        }
        for r in 0..half - 1 {
            full_round(cpu, &mut state, &c[(r + 1) * T..], &self.m);
        }
        full_round(cpu, &mut state, &c[half * T..], &self.p);

        let (a, sigma) = match (lanes, state.as_slice()) {
            (Some(lanes), &[a, s1, s2]) => {
                // SAFETY: `lanes` is only passed by `hash_with_lanes`, which runs where the
                // CPU has AVX-512F and AVX-512 IFMA.
                let (a, s1, s2) = unsafe { lanes.partial_rounds(cpu, a, s1, s2) };
                let mut sigma = [[0u64; 4]; T];
                sigma[1..].copy_from_slice(&[s1, s2]);
                (a, sigma)
            }
            _ => self.partial_rounds(cpu, &state),
        };
        state[0] = cpu.mul(&a, &self.scale);
        for k in 1..T {
            state[k] = cpu.add(&sigma[k], &self.offsets[k - 1]);
        }

        let after = (half + 1) * T + self.partial.len();
        for r in 0..half - 1 {
            full_round(cpu, &mut state, &c[after + r * T..], &self.m);
        }
        let state = state.map(|s| pow5(cpu, &s));
        to_fr(&column(cpu, &state, &self.m, 0))
    }
}

#[inline(always)]
fn pow5(cpu: Adx, a: &Limbs) -> Limbs {
    let a2 = cpu.square(a);
    cpu.mul(&cpu.square(&a2), a)
}

/// S-boxes, the next round's constants (`c[..T]`), then `state ← state · matrix`.
#[inline(always)]
fn full_round<const T: usize>(cpu: Adx, state: &mut [Limbs; T], c: &[Limbs], matrix: &[Limbs]) {
    for (s, c) in state.iter_mut().zip(c) {
        *s = cpu.add(&pow5(cpu, s), c);
    }
    let old = *state;
    for (i, s) in state.iter_mut().enumerate() {
        *s = column(cpu, &old, matrix, i);
    }
}

/// `Σ_j matrix[j][i] · state[j]` (row-major `matrix`, as circomlibjs indexes it).
#[inline(always)]
fn column<const T: usize>(cpu: Adx, state: &[Limbs; T], matrix: &[Limbs], i: usize) -> Limbs {
    dot(cpu, state, |j| &matrix[j * T + i])
}

/// `Σ_j values[j] · weight(j)` for at least one value, pairs sharing one reduction. The
/// weights are constants below `p`.
#[inline(always)]
fn dot<'w>(cpu: Adx, values: &[Limbs], weight: impl Fn(usize) -> &'w Limbs) -> Limbs {
    let term = |j: usize| match values.get(j + 1) {
        Some(next) => cpu.dot2(&values[j], weight(j), next, weight(j + 1)),
        None => cpu.mul(&values[j], weight(j)),
    };
    (2..values.len())
        .step_by(2)
        .fold(term(0), |sum, j| cpu.add(&sum, &term(j)))
}
