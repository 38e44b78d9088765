//! The `RateLimitProof` protobuf a Waku message carries in its field 21.
//!
//! Fields (all bytes): `proof = 1` (128-byte compressed Groth16 proof), `merkle_root = 2`,
//! `epoch = 3`, `share_x = 4`, `share_y = 5`, `nullifier = 6`, `rln_identifier = 7`, each a
//! 32-byte little-endian field element. Decoding validates everything: every field present,
//! canonical field elements, proof points on the curve and in the right subgroups.

use prost::Message as _;
use rln_core::{fr_from_le_slice, fr_to_le_bytes, FieldError, Fr, RlnIdentifier};
use rln_zk::proof::proof_from_bytes;
use rln_zk::RateLimitProof;
use thiserror::Error;

use super::proto::RateLimitProofProto;

/// Why bytes are not a valid `RateLimitProof`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProofDecodeError {
    /// The protobuf framing is broken (prost's description).
    #[error("malformed protobuf: {0}")]
    Protobuf(String),
    /// A field is absent.
    #[error("field `{0}` is missing")]
    MissingField(&'static str),
    /// A field element is not 32 canonical little-endian bytes.
    #[error("field `{field}`: {source}")]
    Field {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        source: FieldError,
    },
    /// The Groth16 proof is not 128 bytes of valid compressed points.
    #[error("malformed Groth16 proof: {0}")]
    MalformedProof(String),
}

/// Encodes `proof` as a `RateLimitProof` protobuf message.
pub fn encode_proof(proof: &RateLimitProof) -> Vec<u8> {
    let fr = |value: &Fr| Some(fr_to_le_bytes(value).to_vec());
    RateLimitProofProto {
        proof: Some(proof.proof_bytes().to_vec()),
        merkle_root: fr(&proof.merkle_root),
        epoch: fr(&proof.epoch),
        share_x: fr(&proof.share_x),
        share_y: fr(&proof.share_y),
        nullifier: fr(&proof.nullifier),
        rln_identifier: Some(proof.rln_identifier.as_bytes().to_vec()),
    }
    .encode_to_vec()
}

/// A digest of the proof's field values, independent of how they are encoded (field order,
/// unknown fields, non-minimal lengths), computed without any curve arithmetic. `None` when
/// the protobuf does not parse. Two encodings of one proof have the same digest.
pub fn proof_digest(bytes: &[u8]) -> Option<[u8; 32]> {
    use sha2::{Digest, Sha256};
    let raw = RateLimitProofProto::decode(bytes).ok()?;
    let mut h = Sha256::new();
    for field in [
        &raw.proof,
        &raw.merkle_root,
        &raw.epoch,
        &raw.share_x,
        &raw.share_y,
        &raw.nullifier,
        &raw.rln_identifier,
    ] {
        match field {
            Some(v) => {
                h.update((v.len() as u64 + 1).to_le_bytes());
                h.update(v);
            }
            None => h.update(0u64.to_le_bytes()),
        }
    }
    Some(h.finalize().into())
}

/// Decodes and validates a `RateLimitProof` protobuf message. Unknown fields are skipped, as
/// protobuf requires; a repeated field keeps its last value.
pub fn decode_proof(bytes: &[u8]) -> Result<RateLimitProof, ProofDecodeError> {
    let raw = RateLimitProofProto::decode(bytes)
        .map_err(|e| ProofDecodeError::Protobuf(e.to_string()))?;
    let present =
        |value: Option<Vec<u8>>, field| value.ok_or(ProofDecodeError::MissingField(field));
    let fr = |value: Option<Vec<u8>>, field| {
        fr_from_le_slice(&present(value, field)?)
            .map_err(|source| ProofDecodeError::Field { field, source })
    };
    let proof = proof_from_bytes(&present(raw.proof, "proof")?)
        .map_err(|e| ProofDecodeError::MalformedProof(e.to_string()))?;
    let merkle_root = fr(raw.merkle_root, "merkle_root")?;
    let epoch = fr(raw.epoch, "epoch")?;
    let share_x = fr(raw.share_x, "share_x")?;
    let share_y = fr(raw.share_y, "share_y")?;
    let nullifier = fr(raw.nullifier, "nullifier")?;
    let tag = present(raw.rln_identifier, "rln_identifier")?;
    let field = "rln_identifier";
    let tag: [u8; 32] = tag
        .as_slice()
        .try_into()
        .map_err(|_| ProofDecodeError::Field {
            field,
            source: FieldError::WrongLength(tag.len()),
        })?;
    let rln_identifier = RlnIdentifier::from_bytes(tag)
        .map_err(|source| ProofDecodeError::Field { field, source })?;
    Ok(RateLimitProof {
        proof,
        merkle_root,
        epoch,
        share_x,
        share_y,
        nullifier,
        rln_identifier,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ec::AffineRepr;
    use proptest::prelude::*;
    use rln_zk::{Groth16Proof, PROOF_BYTES};

    /// Appends field `number` with bytes `value` (wire type 2), whatever came before: a
    /// later occurrence of a field overrides an earlier one.
    fn put_bytes(out: &mut Vec<u8>, number: u8, value: &[u8]) {
        out.push(number << 3 | 2);
        out.push(u8::try_from(value.len()).unwrap());
        out.extend_from_slice(value);
    }

    fn sample() -> RateLimitProof {
        RateLimitProof {
            proof: Groth16Proof {
                a: ark_bn254::G1Affine::generator(),
                b: ark_bn254::G2Affine::generator(),
                c: ark_bn254::G1Affine::generator(),
            },
            merkle_root: Fr::from(1u64),
            epoch: Fr::from(2u64),
            share_x: Fr::from(3u64),
            share_y: Fr::from(4u64),
            nullifier: Fr::from(5u64),
            rln_identifier: RlnIdentifier::waku(),
        }
    }

    #[test]
    fn roundtrip_and_the_exact_bytes() {
        let p = sample();
        let bytes = encode_proof(&p);
        assert_eq!(decode_proof(&bytes), Ok(p.clone()));
        // Field 1, 128 bytes (length as a two-byte varint), then six 32-byte fields.
        assert_eq!(&bytes[..3], &[0x0a, 0x80, 0x01]);
        assert_eq!(&bytes[3..3 + PROOF_BYTES], &p.proof_bytes());
        assert_eq!(bytes.len(), 3 + PROOF_BYTES + 6 * 34);
        for (k, number) in (2u8..=7).enumerate() {
            let at = 3 + PROOF_BYTES + 34 * k;
            assert_eq!(&bytes[at..at + 2], &[number << 3 | 2, 32]);
        }
        assert_eq!(
            &bytes[3 + PROOF_BYTES + 2..3 + PROOF_BYTES + 34],
            &fr_to_le_bytes(&Fr::from(1u64))
        );
    }

    #[test]
    fn missing_fields_and_bad_lengths_are_named() {
        let p = sample();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&[0x0a, 0x80, 0x01]);
        bytes.extend_from_slice(&p.proof_bytes());
        assert_eq!(
            decode_proof(&bytes),
            Err(ProofDecodeError::MissingField("merkle_root"))
        );
        let mut short = encode_proof(&p);
        put_bytes(&mut short, 4, &[1u8; 31]);
        assert_eq!(
            decode_proof(&short),
            Err(ProofDecodeError::Field {
                field: "share_x",
                source: FieldError::WrongLength(31)
            })
        );
    }

    #[test]
    fn non_canonical_field_is_refused() {
        let mut bytes = encode_proof(&sample());
        put_bytes(&mut bytes, 6, &[0xff; 32]);
        assert_eq!(
            decode_proof(&bytes),
            Err(ProofDecodeError::Field {
                field: "nullifier",
                source: FieldError::NonCanonical
            })
        );
    }

    #[test]
    fn malformed_proof_points_are_refused() {
        let mut bytes = encode_proof(&sample());
        bytes.extend_from_slice(&[0x0a, 0x80, 0x01]);
        bytes.extend_from_slice(&[0x42; PROOF_BYTES]);
        assert!(matches!(
            decode_proof(&bytes),
            Err(ProofDecodeError::MalformedProof(_))
        ));
        let mut bytes = encode_proof(&sample());
        put_bytes(&mut bytes, 1, &[0u8; 127]);
        assert!(matches!(
            decode_proof(&bytes),
            Err(ProofDecodeError::MalformedProof(_))
        ));
    }

    /// Found by the `rate_limit_proof` fuzz target (its input is in
    /// `fuzz/seeds/rate_limit_proof/`): B written as the point at infinity over non-zero
    /// coordinate bytes decoded, and its digest differed from the re-encoded proof's, so the
    /// relay took the two encodings for two messages.
    #[test]
    fn a_proof_has_one_encoding() {
        let mut at_infinity = sample();
        at_infinity.proof.b = ark_bn254::G2Affine::zero();
        let canonical = encode_proof(&at_infinity);
        assert_eq!(decode_proof(&canonical), Ok(at_infinity.clone()));
        let mut bytes = at_infinity.proof_bytes();
        bytes[40] = 0xed;
        let mut other = encode_proof(&at_infinity);
        put_bytes_long(&mut other, 1, &bytes);
        assert!(matches!(
            decode_proof(&other),
            Err(ProofDecodeError::MalformedProof(e)) if e.contains("non-canonical")
        ));
    }

    /// `put_bytes` for a value of 128 to 16,383 bytes (a two-byte length).
    fn put_bytes_long(out: &mut Vec<u8>, number: u8, value: &[u8]) {
        out.push(number << 3 | 2);
        out.push(u8::try_from(value.len() & 0x7f).unwrap() | 0x80);
        out.push(u8::try_from(value.len() >> 7).unwrap());
        out.extend_from_slice(value);
    }

    #[test]
    fn framing_errors_are_typed() {
        for bad in [&[0x0a, 0x05, 0x00][..], &[0x0b], &[0xff; 11]] {
            assert!(
                matches!(decode_proof(bad), Err(ProofDecodeError::Protobuf(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let p = sample();
        let mut bytes = encode_proof(&p);
        // Field 99 as a varint (300), then field 42 as 9 bytes.
        bytes.extend_from_slice(&[0x98, 0x06, 0xac, 0x02]);
        bytes.extend_from_slice(&[0xd2, 0x02, 9]);
        bytes.extend_from_slice(b"extension");
        assert_eq!(decode_proof(&bytes), Ok(p));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode_proof(&bytes);
        }

        #[test]
        fn mutated_encodings_never_panic(pos in 0usize..350, byte in any::<u8>()) {
            let mut bytes = encode_proof(&sample());
            let at = pos % bytes.len();
            bytes[at] = byte;
            if let Ok(decoded) = decode_proof(&bytes) {
                // Whatever decodes re-encodes to a message that decodes the same way, with
                // the same digest.
                let encoded = encode_proof(&decoded);
                prop_assert_eq!(proof_digest(&encoded), proof_digest(&bytes));
                prop_assert_eq!(decode_proof(&encoded), Ok(decoded));
            }
        }
    }
}
