//! Zero-knowledge proving and verification for RLN v2 over the circom circuit in `circuits/`.
//!
//! - [`keys`]: snarkjs `.zkey` proving keys, verifying keys (snarkjs JSON or arkworks bytes)
//!   and the INSECURE development keys compiled in.
//! - [`circuit`]: the circom witness generator (WebAssembly, via `ark-circom`).
//! - [`prover`]: [`Prover`] turns a [`ProofRequest`] into a [`RateLimitProof`].
//! - [`verifier`]: [`Verifier`] checks a proof with a key prepared once and returns a
//!   [`Verdict`].
//! - [`batch`]: verification of many proofs with one final exponentiation.
//! - [`proof`]: the Waku `RateLimitProof` and its protobuf encoding.
//! - [`protobuf`]: the protobuf primitives of the Waku wire types.
//! - [`snarkjs`]: JSON forms of keys and proofs for interop with the circom tool chain.
//!
//! Load keys once at start-up: preparing a verifying key costs a pairing, and compiling the
//! witness generator costs seconds.

pub mod batch;
pub mod circuit;
pub mod error;
pub mod keys;
pub mod proof;
pub mod protobuf;
pub mod prover;
pub mod snarkjs;
pub mod verifier;
pub mod zkey_format;

pub use batch::BatchItem;
pub use error::{DecodeError, ZkError};
pub use keys::ZkeyData;
pub use proof::{Groth16Proof, RateLimitProof, PROOF_BYTES};
pub use prover::{ProofRequest, Prover};
pub use verifier::{Verdict, Verifier};
