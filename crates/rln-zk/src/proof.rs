//! `RateLimitProof`, the proof a Waku message carries, and the 128-byte form of its Groth16
//! proof. Its protobuf encoding is the relay's (`rln_relay::wire`).

use ark_bn254::{Bn254, G1Affine, G2Affine};
use ark_serialize::{
    CanonicalDeserialize, CanonicalSerialize, Compress, SerializationError, Validate,
};
use rln_bn254::subgroup::g2_in_subgroup;
use rln_core::{
    epoch_from_bytes, external_nullifier, fr_to_le_bytes, Epoch, Fr, RlnIdentifier, Share,
};

use crate::error::DecodeError;

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
/// subgroups, and that the bytes are the proof's one encoding (what [`proof_to_bytes`] writes).
///
/// arkworks reads a point whose infinity flag is set as the point at infinity whatever its
/// coordinate bytes hold; such an encoding is refused, so that one proof has one encoding (the
/// relay recognises re-encoded copies of a message by its proof's bytes).
pub fn proof_from_bytes(bytes: &[u8]) -> Result<Groth16Proof, DecodeError> {
    if bytes.len() != PROOF_BYTES {
        return Err(DecodeError::MalformedProof(format!(
            "expected {PROOF_BYTES} bytes, got {}",
            bytes.len()
        )));
    }
    let malformed = |err: SerializationError| DecodeError::MalformedProof(err.to_string());
    // A and C: G1 is the whole curve, so arkworks' checks are the on-curve test alone. B is
    // on the twist by construction (its y is solved from x); its membership in G2 is tested
    // with rln_bn254's check, half the work of arkworks' (the most expensive step of a
    // relayed message before verification).
    let a = G1Affine::deserialize_compressed(&bytes[..32]).map_err(malformed)?;
    let b = G2Affine::deserialize_with_mode(&bytes[32..96], Compress::Yes, Validate::No)
        .map_err(malformed)?;
    if !b.is_on_curve() || !g2_in_subgroup(&b) {
        return Err(DecodeError::MalformedProof(
            "B is not in the prime-order subgroup of G2".into(),
        ));
    }
    let c = G1Affine::deserialize_compressed(&bytes[96..]).map_err(malformed)?;
    let proof = Groth16Proof { a, b, c };
    if proof_to_bytes(&proof)[..] != *bytes {
        return Err(DecodeError::MalformedProof(
            "non-canonical encoding: a point at infinity with non-zero coordinate bytes".into(),
        ));
    }
    Ok(proof)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ec::AffineRepr;

    fn proof() -> Groth16Proof {
        Groth16Proof {
            a: ark_bn254::G1Affine::generator(),
            b: ark_bn254::G2Affine::generator(),
            c: (ark_bn254::G1Affine::generator() * Fr::from(3u64)).into(),
        }
    }

    #[test]
    fn a_proof_reads_back_from_its_bytes() {
        let bytes = proof_to_bytes(&proof());
        assert_eq!(proof_from_bytes(&bytes), Ok(proof()));
        assert!(proof_from_bytes(&bytes[..127]).is_err());
    }

    /// Found by the `rate_limit_proof` fuzz target: B's infinity flag (bit 6 of its last byte)
    /// set over non-zero coordinates decoded to the point at infinity, so that many byte
    /// strings were one proof.
    #[test]
    fn a_point_at_infinity_has_one_encoding() {
        let infinity = Groth16Proof {
            b: ark_bn254::G2Affine::zero(),
            ..proof()
        };
        let canonical = proof_to_bytes(&infinity);
        assert_eq!(proof_from_bytes(&canonical), Ok(infinity));
        // B is bytes 32..96; its flags are the top bits of byte 95.
        assert_eq!(canonical[95], 0x40);
        assert!(canonical[32..95].iter().all(|b| *b == 0));
        for at in [32, 60, 94] {
            let mut other = canonical;
            other[at] = 1;
            assert!(
                matches!(proof_from_bytes(&other), Err(DecodeError::MalformedProof(e)) if e.contains("non-canonical")),
                "byte {at}"
            );
        }
        let mut a_at_infinity = proof_to_bytes(&proof());
        a_at_infinity[31] |= 0x40;
        assert!(proof_from_bytes(&a_at_infinity).is_err());
    }

    /// A B on the twist curve but outside G2 (most of the twist's points) is refused; its
    /// multiple by the cofactor, which is in G2, is read.
    #[test]
    fn b_outside_g2_is_refused() {
        use ark_ec::CurveGroup;
        use ark_ff::{AdditiveGroup, One};
        let mut x = ark_bn254::Fq2::one();
        let twist_point = loop {
            if let Some(p) = G2Affine::get_point_from_x_unchecked(x, false) {
                break p;
            }
            x.double_in_place();
            x += ark_bn254::Fq2::one();
        };
        assert!(!twist_point.is_in_correct_subgroup_assuming_on_curve());
        let mut bytes = proof_to_bytes(&Groth16Proof {
            b: twist_point,
            ..proof()
        });
        assert!(matches!(
            proof_from_bytes(&bytes),
            Err(DecodeError::MalformedProof(e)) if e.contains("subgroup")
        ));
        let in_g2 = twist_point.clear_cofactor();
        assert!(in_g2.is_in_correct_subgroup_assuming_on_curve());
        let good = Groth16Proof {
            b: in_g2.into_group().into_affine(),
            ..proof()
        };
        bytes = proof_to_bytes(&good);
        assert_eq!(proof_from_bytes(&bytes), Ok(good));
    }
}
