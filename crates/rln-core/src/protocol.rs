//! The per-message RLN v2 arithmetic: epochs, external nullifiers, signals, shares and
//! secret recovery.
//!
//! For a message with signal `m` in epoch `e` the member computes
//! `a1 = Poseidon(secret, Poseidon(e, rln_identifier), message_id)` and publishes the point
//! `(x, y) = (H(m), secret + a1·x)` with `nullifier = Poseidon(a1)`. Two points under one
//! nullifier lie on the same line and give away its intercept, the secret.

use ark_ff::{Field, Zero};
use tiny_keccak::{Hasher, Keccak};

use crate::error::{FieldError, RlnError};
use crate::field::{fr_from_le_bytes, fr_from_le_bytes_mod_order, Fr, FR_BYTES};
use crate::poseidon::{poseidon1, poseidon2, poseidon3};

/// The application tag Waku's relay uses, as bytes (zero-padded to 32 on encoding).
pub const WAKU_RLN_IDENTIFIER: &[u8] = b"rln/waku-rln-relay/v2.0.0";

/// Epoch number: `floor(unix_seconds / epoch_length)`.
pub type Epoch = u64;

/// The epoch containing `unix_seconds` for epochs of `epoch_secs` seconds.
///
/// An epoch length of zero is treated as one second.
pub fn epoch_at(unix_seconds: u64, epoch_secs: u64) -> Epoch {
    unix_seconds / epoch_secs.max(1)
}

/// The 32-byte wire form of an epoch: the number as u64 little-endian, zero-padded.
pub fn epoch_bytes(epoch: Epoch) -> [u8; FR_BYTES] {
    let mut out = [0u8; FR_BYTES];
    out[..8].copy_from_slice(&epoch.to_le_bytes());
    out
}

/// The field element of an epoch (its 32-byte form read as a little-endian integer).
pub fn epoch_to_fr(epoch: Epoch) -> Fr {
    Fr::from(epoch)
}

/// Reads an epoch back from its 32-byte wire form. Only the Waku form (a u64 in the low eight
/// bytes) is an epoch; anything else is refused.
pub fn epoch_from_bytes(bytes: &[u8; FR_BYTES]) -> Option<Epoch> {
    if bytes[8..].iter().any(|b| *b != 0) {
        return None;
    }
    let mut low = [0u8; 8];
    low.copy_from_slice(&bytes[..8]);
    Some(u64::from_le_bytes(low))
}

/// An application tag zero-padded to 32 bytes, as carried in `RateLimitProof.rln_identifier`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RlnIdentifier([u8; FR_BYTES]);

impl RlnIdentifier {
    /// Zero-pads a tag of at most 31 bytes (so that it is always a canonical field element).
    pub fn from_tag(tag: &[u8]) -> Option<Self> {
        if tag.len() >= FR_BYTES {
            return None;
        }
        let mut out = [0u8; FR_BYTES];
        out[..tag.len()].copy_from_slice(tag);
        Some(Self(out))
    }

    /// Waku's relay identifier, `rln/waku-rln-relay/v2.0.0`.
    pub fn waku() -> Self {
        let mut out = [0u8; FR_BYTES];
        out[..WAKU_RLN_IDENTIFIER.len()].copy_from_slice(WAKU_RLN_IDENTIFIER);
        Self(out)
    }

    /// Accepts 32 wire bytes if they are a canonical field element.
    pub fn from_bytes(bytes: [u8; FR_BYTES]) -> Result<Self, FieldError> {
        fr_from_le_bytes(&bytes)?;
        Ok(Self(bytes))
    }

    /// The 32 wire bytes.
    pub fn as_bytes(&self) -> &[u8; FR_BYTES] {
        &self.0
    }

    /// The field element the circuit uses.
    pub fn to_fr(&self) -> Fr {
        fr_from_le_bytes_mod_order(&self.0)
    }
}

/// `Poseidon(epoch, rln_identifier)`: the scope within which each message id may be used once.
pub fn external_nullifier(epoch: Fr, rln_identifier: Fr) -> Fr {
    poseidon2(epoch, rln_identifier)
}

/// keccak256 of `bytes` read as a little-endian integer, reduced mod r. Gives `x` from a signal.
pub fn hash_to_field(bytes: &[u8]) -> Fr {
    let mut digest = [0u8; 32];
    let mut keccak = Keccak::v256();
    keccak.update(bytes);
    keccak.finalize(&mut digest);
    fr_from_le_bytes_mod_order(&digest)
}

/// A point `(x, y)` on a member's line for one (epoch, message id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// Hash of the signal.
    pub x: Fr,
    /// `secret + a1·x`.
    pub y: Fr,
}

/// What a message reveals: its share and the nullifier that links shares of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareAndNullifier {
    /// The share.
    pub share: Share,
    /// `Poseidon(a1)`.
    pub nullifier: Fr,
}

/// Computes the share and nullifier a member reveals for signal hash `x`.
pub fn compute_share(
    secret: Fr,
    external_nullifier: Fr,
    message_id: u64,
    user_message_limit: u64,
    x: Fr,
) -> Result<ShareAndNullifier, RlnError> {
    crate::identity::check_limit(user_message_limit)?;
    if message_id >= user_message_limit {
        return Err(RlnError::MessageIdOutOfRange {
            message_id,
            limit: user_message_limit,
        });
    }
    let a1 = poseidon3(secret, external_nullifier, Fr::from(message_id));
    Ok(ShareAndNullifier {
        share: Share {
            x,
            y: secret + a1 * x,
        },
        nullifier: poseidon1(a1),
    })
}

/// Recovers the secret from two shares of one line: `a1 = (y1 − y2)/(x1 − x2)`,
/// `secret = y1 − x1·a1`.
pub fn recover_secret(first: Share, second: Share) -> Result<Fr, RlnError> {
    let dx = first.x - second.x;
    if dx.is_zero() {
        return Err(RlnError::SameX);
    }
    let inverse = dx.inverse().ok_or(RlnError::SameX)?;
    let a1 = (first.y - second.y) * inverse;
    Ok(first.y - first.x * a1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    #[test]
    fn epoch_bytes_roundtrip_and_refuse_high_bytes() {
        let bytes = epoch_bytes(170_000_000);
        assert_eq!(epoch_from_bytes(&bytes), Some(170_000_000));
        assert_eq!(fr_from_le_bytes(&bytes), Ok(epoch_to_fr(170_000_000)));
        let mut high = bytes;
        high[8] = 1;
        assert_eq!(epoch_from_bytes(&high), None);
        assert_eq!(epoch_at(1_199, 600), 1);
        assert_eq!(epoch_at(1_200, 600), 2);
    }

    #[test]
    fn two_signals_reveal_the_secret() {
        let id = Identity::from_seed(b"spammer");
        let en = external_nullifier(epoch_to_fr(7), RlnIdentifier::waku().to_fr());
        let a = compute_share(id.secret(), en, 0, 1, hash_to_field(b"one")).unwrap();
        let b = compute_share(id.secret(), en, 0, 1, hash_to_field(b"two")).unwrap();
        assert_eq!(a.nullifier, b.nullifier);
        assert_eq!(recover_secret(a.share, b.share), Ok(id.secret()));
        assert_eq!(recover_secret(a.share, a.share), Err(RlnError::SameX));
    }

    #[test]
    fn other_message_ids_give_other_nullifiers() {
        let id = Identity::from_seed(b"honest");
        let en = external_nullifier(epoch_to_fr(7), RlnIdentifier::waku().to_fr());
        let x = hash_to_field(b"m");
        let a = compute_share(id.secret(), en, 0, 2, x).unwrap();
        let b = compute_share(id.secret(), en, 1, 2, x).unwrap();
        assert_ne!(a.nullifier, b.nullifier);
        assert_eq!(
            compute_share(id.secret(), en, 2, 2, x),
            Err(RlnError::MessageIdOutOfRange {
                message_id: 2,
                limit: 2
            })
        );
    }

    #[test]
    fn identifiers_must_fit_below_the_modulus() {
        assert!(RlnIdentifier::from_tag(&[1u8; 31]).is_some());
        assert!(RlnIdentifier::from_tag(&[1u8; 32]).is_none());
        assert!(RlnIdentifier::from_bytes([0xff; 32]).is_err());
        assert_eq!(&RlnIdentifier::waku().as_bytes()[..4], b"rln/");
    }
}
