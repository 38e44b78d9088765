//! `decode_proof`, the `RateLimitProof` decoder the validation workers run on field 21 of
//! every relayed message, and `proof_digest`, which the swarm task computes on the same bytes
//! to recognise re-encoded copies of a message.
//!
//! Checks: no panic on any input; a decoded proof re-encodes to bytes that decode to the same
//! proof; and, as the re-encoding filter relies on, the digest of the original bytes equals the
//! digest of the re-encoded proof (two encodings of one proof must not look like two proofs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rln_relay::wire::{decode_proof, encode_proof, proof_digest};

fuzz_target!(|data: &[u8]| {
    let digest = proof_digest(data);
    let Ok(proof) = decode_proof(data) else {
        return;
    };
    assert!(digest.is_some(), "a decodable proof has a digest");
    let encoded = encode_proof(&proof);
    assert_eq!(
        decode_proof(&encoded).as_ref(),
        Ok(&proof),
        "decode → encode → decode changed the proof"
    );
    assert_eq!(
        proof_digest(&encoded),
        digest,
        "two encodings of one proof have different digests"
    );
});
