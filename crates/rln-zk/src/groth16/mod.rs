//! Groth16 over the RLN circuit: proving, single and batch verification.
//!
//! - [`prover`]: [`Prover`](prover::Prover) turns a request into a proof; with a
//!   [`PreparedMembership`](prover::PreparedMembership) only the per-message part is computed.
//! - [`quotient`]: the quotient polynomial's evaluations that the `H` query multiplies.
//! - [`verifier`]: [`Verifier`](verifier::Verifier) checks a proof with a key prepared once
//!   and returns a [`ProofVerdict`](verifier::ProofVerdict).
//! - [`input_table`]: the verifier's public-input term from precomputed multiples.
//! - [`batch`]: verification of many proofs with one final exponentiation.

pub mod batch;
pub mod input_table;
pub mod prover;
pub mod quotient;
pub mod verifier;
