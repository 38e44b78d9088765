//! Zero-knowledge proving and verification for RLN v2 over the circom circuit in `circuits/`.
//!
//! - [`circuit`]: the circuit's inputs, its constraint system ([`circuit::r1cs`]) and the
//!   native witness solved from it ([`circuit::solver`]); circom's WebAssembly witness
//!   generator, the oracle of the native one, with the `wasm-witness` feature.
//! - [`keys`]: snarkjs `.zkey` proving keys ([`keys::zkey_format`]), verifying keys (snarkjs
//!   JSON, [`keys::snarkjs`], or arkworks bytes) and the INSECURE development keys compiled in.
//! - [`groth16`]: [`Prover`] turns a [`ProofRequest`] into a [`RateLimitProof`] (with a
//!   [`PreparedMembership`] only the per-message part is computed); [`Verifier`] checks a
//!   proof with a key prepared once and returns a [`ProofVerdict`]; batches of proofs share
//!   one final exponentiation.
//! - [`key_set`]: the compiled-in key sets (Waku's circuit and key; the INSECURE dev key) and
//!   key files, loaded and checked to belong together.
//! - [`proof`]: the Waku `RateLimitProof` and the compressed form of its Groth16 proof.
//!
//! The heavy arithmetic (fixed-base MSMs in G1 and G2, the quotient's FFTs) is `rln-bn254`'s,
//! which picks its fast or portable path at run time.
//!
//! Load keys once at start-up: preparing a verifying key costs a pairing, and a prover parses
//! its key and precomputes its bases (one to two seconds, about 80 MB).

pub mod circuit;
pub mod error;
pub mod groth16;
pub mod key_set;
pub mod keys;
pub mod proof;

pub use error::{DecodeError, ZkError};
pub use groth16::batch::BatchItem;
pub use groth16::prover::{MessageRequest, PreparedMembership, ProofRequest, Prover};
pub use groth16::verifier::{ProofVerdict, Verifier};
pub use key_set::{KeyFiles, KeySet, LoadedKeys};
pub use keys::{snarkjs, ZkeyData};
pub use proof::{Groth16Proof, RateLimitProof, PROOF_BYTES};
