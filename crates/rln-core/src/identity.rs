//! Member identities: a secret, its commitment, and the rate commitment stored as a leaf.

use ark_ff::UniformRand;
use rand::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tiny_keccak::{Hasher, Keccak};

use crate::error::RlnError;
use crate::field::Fr;
use crate::poseidon::{poseidon1, poseidon2};

/// Largest message limit the circuit's 16-bit range check admits.
pub const MAX_USER_MESSAGE_LIMIT: u64 = (1 << 16) - 1;

/// A member's secret and the public commitment derived from it.
///
/// `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    secret: Fr,
    commitment: Fr,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("commitment", &self.commitment)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Builds the identity of a known secret.
    pub fn from_secret(secret: Fr) -> Self {
        Self {
            secret,
            commitment: poseidon1(secret),
        }
    }

    /// A fresh identity from a cryptographic RNG.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self::from_secret(Fr::rand(rng))
    }

    /// A fresh identity derived the way Waku's tools derive one: random trapdoor and
    /// nullifier, `secret = Poseidon(trapdoor, nullifier)`. Returns `(identity, trapdoor,
    /// nullifier)`; keystores record all three.
    pub fn random_derived<R: RngCore + CryptoRng>(rng: &mut R) -> (Self, Fr, Fr) {
        let (trapdoor, nullifier) = (Fr::rand(rng), Fr::rand(rng));
        (
            Self::from_secret(poseidon2(trapdoor, nullifier)),
            trapdoor,
            nullifier,
        )
    }

    /// A deterministic identity from a seed: keccak256(seed) seeds ChaCha20, which samples the
    /// secret. This is the derivation of the reference implementation's seeded key generation,
    /// so the same seed gives the same member in both.
    pub fn from_seed(seed: &[u8]) -> Self {
        let mut digest = [0u8; 32];
        let mut keccak = Keccak::v256();
        keccak.update(seed);
        keccak.finalize(&mut digest);
        let mut rng = ChaCha20Rng::from_seed(digest);
        Self::from_secret(Fr::rand(&mut rng))
    }

    /// The identity secret. Whoever holds it can publish as this member.
    pub fn secret(&self) -> Fr {
        self.secret
    }

    /// `Poseidon(secret)`, the value registered on the contract.
    pub fn commitment(&self) -> Fr {
        self.commitment
    }

    /// The leaf of this member with the given limit.
    pub fn rate_commitment(&self, user_message_limit: u64) -> Result<Fr, RlnError> {
        rate_commitment(self.commitment, user_message_limit)
    }
}

/// Checks that a limit is one the circuit can prove against (1..=65535).
pub fn check_limit(user_message_limit: u64) -> Result<(), RlnError> {
    if user_message_limit == 0 || user_message_limit > MAX_USER_MESSAGE_LIMIT {
        return Err(RlnError::LimitOutOfRange(user_message_limit));
    }
    Ok(())
}

/// The membership leaf: `Poseidon(id_commitment, user_message_limit)`.
pub fn rate_commitment(id_commitment: Fr, user_message_limit: u64) -> Result<Fr, RlnError> {
    check_limit(user_message_limit)?;
    Ok(poseidon2(id_commitment, Fr::from(user_message_limit)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_identities_are_stable_and_distinct() {
        assert_eq!(Identity::from_seed(b"a"), Identity::from_seed(b"a"));
        assert_ne!(Identity::from_seed(b"a"), Identity::from_seed(b"b"));
    }

    #[test]
    fn debug_hides_the_secret() {
        let id = Identity::from_secret(Fr::from(123456789u64));
        assert!(!format!("{id:?}").contains("123456789"));
    }

    #[test]
    fn limits_outside_sixteen_bits_are_refused() {
        let id = Identity::from_seed(b"x");
        assert_eq!(id.rate_commitment(0), Err(RlnError::LimitOutOfRange(0)));
        assert_eq!(
            id.rate_commitment(65536),
            Err(RlnError::LimitOutOfRange(65536))
        );
        assert!(id.rate_commitment(65535).is_ok());
    }
}
