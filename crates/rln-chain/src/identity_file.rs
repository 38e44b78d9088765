//! The identity file `rln-node keygen` writes and `rln-node register --identity` reads: the
//! secret, its commitment and the trapdoor and nullifier it was derived from (as Waku's tools
//! derive identities), each a field element in the one text form (`0x`, big-endian). Files
//! written before that form (64 hex digits, little-endian, no `0x`) are still read.

use rln_core::{fr_from_hex, fr_from_le_slice, fr_to_hex, Fr, Identity};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why an identity file was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdentityFileError {
    /// The text is not the JSON object of an identity file.
    #[error("not an rln-node identity file: {0}")]
    Format(String),
    /// A member is not a field element in either text form.
    #[error("the {field} is not a field element: {reason}")]
    Field {
        /// The member (`secret`, `commitment`, `trapdoor`, `nullifier`).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The commitment is not the one of the secret.
    #[error("the commitment does not match the secret")]
    CommitmentMismatch,
}

/// An identity file's members, as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityFile {
    /// The trapdoor the secret was derived from.
    pub trapdoor: String,
    /// The nullifier the secret was derived from.
    pub nullifier: String,
    /// The identity secret.
    pub secret: String,
    /// `Poseidon(secret)`, the identity commitment.
    pub commitment: String,
}

/// An identity read from a file, with the derivation it records.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredIdentity {
    /// The identity.
    pub identity: Identity,
    /// The trapdoor.
    pub trapdoor: Fr,
    /// The nullifier.
    pub nullifier: Fr,
}

/// Shows the commitment only: the secret, trapdoor and nullifier never reach a log.
impl std::fmt::Debug for StoredIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredIdentity")
            .field("commitment", &fr_to_hex(&self.identity.commitment()))
            .finish_non_exhaustive()
    }
}

impl IdentityFile {
    /// The file of an identity and its derivation.
    pub fn new(identity: &Identity, trapdoor: Fr, nullifier: Fr) -> Self {
        Self {
            trapdoor: fr_to_hex(&trapdoor),
            nullifier: fr_to_hex(&nullifier),
            secret: fr_to_hex(&identity.secret()),
            commitment: fr_to_hex(&identity.commitment()),
        }
    }

    /// The file as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // A struct of four strings always serialises.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses a file and checks that the commitment is the secret's.
    pub fn parse(text: &str) -> Result<StoredIdentity, IdentityFileError> {
        let file: Self =
            serde_json::from_str(text).map_err(|e| IdentityFileError::Format(e.to_string()))?;
        file.open()
    }

    /// Decodes the members and checks that the commitment is the secret's.
    pub fn open(&self) -> Result<StoredIdentity, IdentityFileError> {
        let identity = Identity::from_secret(field(&self.secret, "secret")?);
        if identity.commitment() != field(&self.commitment, "commitment")? {
            return Err(IdentityFileError::CommitmentMismatch);
        }
        Ok(StoredIdentity {
            identity,
            trapdoor: field(&self.trapdoor, "trapdoor")?,
            nullifier: field(&self.nullifier, "nullifier")?,
        })
    }
}

/// A field element in the one text form, or the little-endian hex of older files (told apart
/// by the `0x`).
fn field(text: &str, name: &'static str) -> Result<Fr, IdentityFileError> {
    let refuse = |reason: String| IdentityFileError::Field {
        field: name,
        reason,
    };
    if text.starts_with("0x") {
        return fr_from_hex(text).map_err(|e| refuse(e.to_string()));
    }
    let bytes = crate::keystore::unhex(text).map_err(refuse)?;
    fr_from_le_slice(&bytes).map_err(|e| refuse(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rln_core::fr_to_le_bytes;

    fn sample() -> (Identity, Fr, Fr) {
        let trapdoor = Fr::from(12345u64);
        let nullifier = Fr::from(678u64);
        (Identity::from_secret(Fr::from(99u64)), trapdoor, nullifier)
    }

    #[test]
    fn a_written_file_reads_back() {
        let (identity, trapdoor, nullifier) = sample();
        let text = IdentityFile::new(&identity, trapdoor, nullifier).to_json();
        let stored = IdentityFile::parse(&text).unwrap();
        assert!(stored.identity == identity);
        assert_eq!((stored.trapdoor, stored.nullifier), (trapdoor, nullifier));
    }

    #[test]
    fn the_older_little_endian_form_is_read() {
        let (identity, trapdoor, nullifier) = sample();
        let le = |x: &Fr| crate::keystore::hex(&fr_to_le_bytes(x));
        let text = serde_json::json!({
            "trapdoor": le(&trapdoor),
            "nullifier": le(&nullifier),
            "secret": le(&identity.secret()),
            "commitment": le(&identity.commitment()),
        })
        .to_string();
        assert!(IdentityFile::parse(&text).unwrap().identity == identity);
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let (identity, trapdoor, nullifier) = sample();
        let good = IdentityFile::new(&identity, trapdoor, nullifier);
        let mut wrong = good.clone();
        wrong.commitment = fr_to_hex(&Fr::from(1u64));
        assert_eq!(wrong.open(), Err(IdentityFileError::CommitmentMismatch));
        for bad in ["0x12", "zz", "é€", "0xé", &"f".repeat(64)] {
            let mut file = good.clone();
            file.trapdoor = bad.to_string();
            match file.open() {
                Err(IdentityFileError::Field { field, .. }) => assert_eq!(field, "trapdoor"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        for text in ["", "[]", "{}", "{\"secret\": 1}", "\u{0}"] {
            assert!(matches!(
                IdentityFile::parse(text),
                Err(IdentityFileError::Format(_))
            ));
        }
    }
}
