#![forbid(unsafe_code)]
//! Zero-knowledge proving and verification for RLN v2 over the circom circuit in `circuits/`.
//!
//! - [`keys`]: snarkjs `.zkey` proving keys, verifying keys (snarkjs JSON or arkworks bytes)
//!   and the INSECURE development keys compiled in.
//! - [`solver`]: the native witness, solved from the circuit's constraint system ([`r1cs`]).
//! - [`circuit`]: the circom witness generator (WebAssembly, via `ark-circom`), kept as the
//!   oracle the native witness is tested against.
//! - [`prover`]: [`Prover`] turns a [`ProofRequest`] into a [`RateLimitProof`]; with a
//!   [`PreparedMembership`] only the per-message part is computed.
//! - [`quotient`]: the quotient polynomial's evaluations that the `H` query multiplies.
//! - [`input_table`]: the verifier's public-input term from precomputed multiples.
//! - [`verifier`]: [`Verifier`] checks a proof with a key prepared once and returns a
//!   [`Verdict`].
//! - [`batch`]: verification of many proofs with one final exponentiation.
//! - [`proof`]: the Waku `RateLimitProof` and its protobuf encoding.
//! - [`protobuf`]: the protobuf primitives of the Waku wire types.
//! - [`snarkjs`]: JSON forms of keys and proofs for interop with the circom tool chain.
//!
//! The heavy arithmetic (fixed-base MSMs in G1 and G2, the quotient's FFTs) is `rln-bn254`'s,
//! which picks its fast or portable path at run time.
//!
//! Load keys once at start-up: preparing a verifying key costs a pairing, and a prover parses
//! its key and precomputes its bases (one to two seconds, about 80 MB).

pub mod batch;
pub mod circuit;
pub mod error;
pub mod input_table;
pub mod keys;
pub mod proof;
pub mod protobuf;
pub mod prover;
pub mod quotient;
pub mod r1cs;
pub mod snarkjs;
pub mod solver;
pub mod verifier;
pub mod zkey_format;

pub use batch::BatchItem;
pub use error::{DecodeError, ZkError};
pub use keys::ZkeyData;
pub use proof::{Groth16Proof, RateLimitProof, PROOF_BYTES};
pub use prover::{MessageRequest, PreparedMembership, ProofRequest, Prover};
pub use verifier::{Verdict, Verifier};
