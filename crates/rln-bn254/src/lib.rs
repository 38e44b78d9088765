//! Fast BN254 arithmetic for rln-node, beside the portable arkworks path it must equal.
//!
//! This is the only crate of the workspace with `unsafe` code: x86-64 assembly and AVX-512
//! intrinsics. Every fast path sits behind a capability token ([`cpu`]) that only run-time
//! detection creates, and every `unsafe` block states the bound it relies on. The portable
//! path stays, is tested against the fast one, and can be forced (the `portable` feature or
//! `RLN_FORCE_PORTABLE=1`); [`backend_report`] says which path this process runs.
//!
//! - [`cpu`]: the tokens [`Adx`] (BMI2 + ADX) and [`Ifma`] (AVX-512F + IFMA), their detection,
//!   the portable switch and the [`BackendReport`].
//! - `limb52`: field elements as five 52-bit limbs, shared by every IFMA path.
//! - `scalar`: Montgomery multiplication of `Fr` in assembly (`mulx`, `adcx`, `adox`).
//! - `lanes`: eight elements of `Fq` or `Fr` per vector, and `Fq2` on top of them.
//! - [`poseidon`]: circomlib's Poseidon for 1–3 inputs on the scalar assembly, with the
//!   partial rounds' linear layer on IFMA lanes for two inputs.
//! - [`msm`]: multi-scalar multiplication over fixed bases, portable and 8-lane.
//! - [`fft`]: the quotient's transforms to the odd coset, portable and 8-lane.
//! - [`pairing`]: the product of a batch's Miller loops, one chunk of pairs per core.
//! - [`prepare`]: the line coefficients of many G2 points, eight lanes wide.
//! - [`subgroup`]: membership in G2 with one 63-bit multiplication (for decoding proofs).
//! - [`weights`]: batch-verification weights whose G1 multiplications run over 64 bits.

pub mod cpu;
pub mod fft;
#[cfg(target_arch = "x86_64")]
mod lanes;
#[cfg(target_arch = "x86_64")]
mod limb52;
pub mod msm;
pub mod pairing;
pub mod poseidon;
pub mod prepare;
#[cfg(target_arch = "x86_64")]
mod scalar;
pub mod subgroup;
pub mod weights;

pub use cpu::{backend_report, forced_portable, Adx, BackendReport, Ifma};
