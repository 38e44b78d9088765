//! Zero-knowledge proving and verification for RLN v2 over the circom circuit in `circuits/`.
//!
//! - [`keys`]: snarkjs `.zkey` proving keys, verifying keys (snarkjs JSON or arkworks bytes)
//!   and the INSECURE development keys compiled in.
//! - [`solver`]: the native witness, solved from the circuit's constraint system ([`r1cs`]).
//! - [`circuit`]: the circom witness generator (WebAssembly, via `ark-circom`), kept as the
//!   oracle the native witness is tested against.
//! - [`prover`]: [`Prover`] turns a [`ProofRequest`] into a [`RateLimitProof`]; with a
//!   [`PreparedMembership`] only the per-message part is computed.
//! - [`msm`]: multi-scalar multiplication over the proving key's fixed bases (precomputed
//!   window shifts, affine buckets with batched inversion).
//! - [`wide_msm`]: the same with the field arithmetic of a batch eight lanes wide, in G1 and
//!   G2, on CPUs with AVX-512 IFMA (`field8`, `ext8`).
//! - [`quotient`]: the quotient polynomial's evaluations that the `H` query multiplies (its
//!   FFTs eight lanes wide with IFMA: `fft8`).
//! - [`input_table`]: the verifier's public-input term from precomputed multiples.
//! - [`verifier`]: [`Verifier`] checks a proof with a key prepared once and returns a
//!   [`Verdict`].
//! - [`batch`]: verification of many proofs with one final exponentiation.
//! - [`proof`]: the Waku `RateLimitProof` and its protobuf encoding.
//! - [`protobuf`]: the protobuf primitives of the Waku wire types.
//! - [`snarkjs`]: JSON forms of keys and proofs for interop with the circom tool chain.
//!
//! Load keys once at start-up: preparing a verifying key costs a pairing, and a prover parses
//! its key and precomputes its bases (one to two seconds, about 80 MB).

pub mod batch;
pub mod circuit;
pub mod error;
#[cfg(target_arch = "x86_64")]
mod ext8;
#[cfg(target_arch = "x86_64")]
mod fft8;
#[cfg(target_arch = "x86_64")]
mod field8;
pub mod input_table;
pub mod keys;
pub mod msm;
pub mod proof;
pub mod protobuf;
pub mod prover;
pub mod quotient;
pub mod r1cs;
pub mod snarkjs;
pub mod solver;
pub mod verifier;
pub mod wide_msm;
pub mod zkey_format;

pub use batch::BatchItem;
pub use error::{DecodeError, ZkError};
pub use keys::ZkeyData;
pub use proof::{Groth16Proof, RateLimitProof, PROOF_BYTES};
pub use prover::{MessageRequest, PreparedMembership, ProofRequest, Prover};
pub use verifier::{Verdict, Verifier};
