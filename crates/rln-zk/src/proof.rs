//! `RateLimitProof`, the proof a Waku message carries, and its protobuf encoding.
//!
//! Fields (all bytes): `proof = 1` (128-byte compressed Groth16 proof), `merkle_root = 2`,
//! `epoch = 3`, `share_x = 4`, `share_y = 5`, `nullifier = 6`, `rln_identifier = 7`, each a
//! 32-byte little-endian field element. Decoding validates everything: canonical field
//! elements and proof points on the curve and in the right subgroups.

use ark_bn254::Bn254;
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use rln_core::{
    epoch_from_bytes, external_nullifier, fr_from_le_slice, fr_to_le_bytes, Epoch, Fr,
    RlnIdentifier, Share,
};

use crate::error::DecodeError;
use crate::protobuf::{put_bytes, Reader, Value};

/// Bytes of a compressed Groth16 proof over BN254: A (G1, 32) | B (G2, 64) | C (G1, 32).
pub const PROOF_BYTES: usize = 128;

/// A Groth16 proof over BN254.
pub type Groth16Proof = ark_groth16::Proof<Bn254>;

/// The RLN proof of one message and the public values it commits to.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitProof {
    /// The Groth16 proof.
    pub proof: Groth16Proof,
    /// The membership tree root the proof is against.
    pub merkle_root: Fr,
    /// The epoch as a field element (a u64 for Waku, see [`Self::epoch_number`]).
    pub epoch: Fr,
    /// `x`, the hash of the signal.
    pub share_x: Fr,
    /// `y = secret + a1·x`.
    pub share_y: Fr,
    /// `Poseidon(a1)`.
    pub nullifier: Fr,
    /// The application tag.
    pub rln_identifier: RlnIdentifier,
}

impl RateLimitProof {
    /// `Poseidon(epoch, rln_identifier)`.
    pub fn external_nullifier(&self) -> Fr {
        external_nullifier(self.epoch, self.rln_identifier.to_fr())
    }

    /// The public inputs in the verifier's order: `[y, root, nullifier, x, external_nullifier]`.
    pub fn public_inputs(&self) -> [Fr; 5] {
        [
            self.share_y,
            self.merkle_root,
            self.nullifier,
            self.share_x,
            self.external_nullifier(),
        ]
    }

    /// The share this proof reveals.
    pub fn share(&self) -> Share {
        Share {
            x: self.share_x,
            y: self.share_y,
        }
    }

    /// The Waku epoch number, if the epoch field holds one (a u64 in the low 8 bytes).
    pub fn epoch_number(&self) -> Option<Epoch> {
        epoch_from_bytes(&fr_to_le_bytes(&self.epoch))
    }

    /// The proof's 128 compressed bytes.
    pub fn proof_bytes(&self) -> [u8; PROOF_BYTES] {
        proof_to_bytes(&self.proof)
    }

    /// Encodes as a `RateLimitProof` protobuf message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + PROOF_BYTES + 6 * 34);
        put_bytes(&mut out, 1, &self.proof_bytes());
        put_bytes(&mut out, 2, &fr_to_le_bytes(&self.merkle_root));
        put_bytes(&mut out, 3, &fr_to_le_bytes(&self.epoch));
        put_bytes(&mut out, 4, &fr_to_le_bytes(&self.share_x));
        put_bytes(&mut out, 5, &fr_to_le_bytes(&self.share_y));
        put_bytes(&mut out, 6, &fr_to_le_bytes(&self.nullifier));
        put_bytes(&mut out, 7, self.rln_identifier.as_bytes());
        out
    }

    /// Decodes and validates a `RateLimitProof` protobuf message. Unknown fields are skipped,
    /// as protobuf requires; a repeated field keeps its last value.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut fields: [Option<&[u8]>; 7] = [None; 7];
        let mut reader = Reader::new(bytes);
        while let Some((number, value)) = reader.next_field()? {
            if let (1..=7, Value::Bytes(value)) = (number, value) {
                fields[(number - 1) as usize] = Some(value);
            }
        }
        const NAMES: [&str; 7] = [
            "proof",
            "merkle_root",
            "epoch",
            "share_x",
            "share_y",
            "nullifier",
            "rln_identifier",
        ];
        let get = |i: usize| fields[i].ok_or(DecodeError::MissingField(NAMES[i]));
        let fr = |i: usize| {
            fr_from_le_slice(get(i)?).map_err(|source| DecodeError::Field {
                field: NAMES[i],
                source,
            })
        };
        let proof = proof_from_bytes(get(0)?)?;
        let (merkle_root, epoch, share_x, share_y, nullifier) =
            (fr(1)?, fr(2)?, fr(3)?, fr(4)?, fr(5)?);
        let rln_identifier = {
            let bytes: [u8; 32] = get(6)?.try_into().map_err(|_| DecodeError::Field {
                field: NAMES[6],
                source: rln_core::FieldError::WrongLength(fields[6].map_or(0, <[u8]>::len)),
            })?;
            RlnIdentifier::from_bytes(bytes).map_err(|source| DecodeError::Field {
                field: NAMES[6],
                source,
            })?
        };
        Ok(Self {
            proof,
            merkle_root,
            epoch,
            share_x,
            share_y,
            nullifier,
            rln_identifier,
        })
    }
}

/// Serializes a proof in arkworks' compressed form (128 bytes).
pub fn proof_to_bytes(proof: &Groth16Proof) -> [u8; PROOF_BYTES] {
    let mut out = [0u8; PROOF_BYTES];
    let mut cursor = &mut out[..];
    // A compressed BN254 proof is exactly 128 bytes, which is the buffer's size.
    if let Err(err) = proof.serialize_compressed(&mut cursor) {
        unreachable!("a Groth16 proof serializes into 128 bytes: {err}");
    }
    out
}

/// Reads a compressed proof, checking that the points are on the curve and in the prime-order
/// subgroups.
pub fn proof_from_bytes(bytes: &[u8]) -> Result<Groth16Proof, DecodeError> {
    if bytes.len() != PROOF_BYTES {
        return Err(DecodeError::MalformedProof(format!(
            "expected {PROOF_BYTES} bytes, got {}",
            bytes.len()
        )));
    }
    Groth16Proof::deserialize_compressed(bytes)
        .map_err(|err| DecodeError::MalformedProof(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protobuf::put_varint;
    use ark_ec::AffineRepr;
    use proptest::prelude::*;

    fn sample() -> RateLimitProof {
        let proof = Groth16Proof {
            a: ark_bn254::G1Affine::generator(),
            b: ark_bn254::G2Affine::generator(),
            c: ark_bn254::G1Affine::generator(),
        };
        RateLimitProof {
            proof,
            merkle_root: Fr::from(1u64),
            epoch: Fr::from(2u64),
            share_x: Fr::from(3u64),
            share_y: Fr::from(4u64),
            nullifier: Fr::from(5u64),
            rln_identifier: RlnIdentifier::waku(),
        }
    }

    #[test]
    fn roundtrip() {
        let p = sample();
        let bytes = p.encode();
        assert_eq!(RateLimitProof::decode(&bytes), Ok(p.clone()));
        assert_eq!(p.epoch_number(), Some(2));
    }

    #[test]
    fn missing_fields_and_bad_lengths_are_named() {
        let p = sample();
        let mut bytes = Vec::new();
        put_bytes(&mut bytes, 1, &p.proof_bytes());
        assert_eq!(
            RateLimitProof::decode(&bytes),
            Err(DecodeError::MissingField("merkle_root"))
        );
        let mut short = p.encode();
        put_bytes(&mut short, 4, &[1u8; 31]);
        assert_eq!(
            RateLimitProof::decode(&short),
            Err(DecodeError::Field {
                field: "share_x",
                source: rln_core::FieldError::WrongLength(31)
            })
        );
    }

    #[test]
    fn non_canonical_field_is_refused() {
        let mut bytes = sample().encode();
        put_bytes(&mut bytes, 6, &[0xff; 32]);
        assert_eq!(
            RateLimitProof::decode(&bytes),
            Err(DecodeError::Field {
                field: "nullifier",
                source: rln_core::FieldError::NonCanonical
            })
        );
    }

    #[test]
    fn malformed_proof_points_are_refused() {
        let mut bytes = sample().encode();
        put_bytes(&mut bytes, 1, &[0x42; PROOF_BYTES]);
        assert!(matches!(
            RateLimitProof::decode(&bytes),
            Err(DecodeError::MalformedProof(_))
        ));
        let mut bytes = sample().encode();
        put_bytes(&mut bytes, 1, &[0u8; 127]);
        assert!(matches!(
            RateLimitProof::decode(&bytes),
            Err(DecodeError::MalformedProof(_))
        ));
    }

    #[test]
    fn framing_errors() {
        assert_eq!(
            RateLimitProof::decode(&[0x0a, 0x05, 0x00]),
            Err(DecodeError::Protobuf("truncated length-delimited field"))
        );
        assert_eq!(
            RateLimitProof::decode(&[0x0b]),
            Err(DecodeError::Protobuf("unsupported wire type"))
        );
        assert_eq!(
            RateLimitProof::decode(&[0xff; 11]),
            Err(DecodeError::Protobuf("varint overflows 64 bits"))
        );
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let p = sample();
        let mut bytes = p.encode();
        put_varint(&mut bytes, 99 << 3);
        put_varint(&mut bytes, 300);
        put_bytes(&mut bytes, 42, b"extension");
        assert_eq!(RateLimitProof::decode(&bytes), Ok(p));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = RateLimitProof::decode(&bytes);
        }

        #[test]
        fn mutated_encodings_never_panic(pos in 0usize..350, byte in any::<u8>()) {
            let mut bytes = sample().encode();
            let at = pos % bytes.len();
            bytes[at] = byte;
            if let Ok(decoded) = RateLimitProof::decode(&bytes) {
                // Whatever decodes re-encodes to a message that decodes the same way.
                prop_assert_eq!(RateLimitProof::decode(&decoded.encode()), Ok(decoded));
            }
        }
    }
}
