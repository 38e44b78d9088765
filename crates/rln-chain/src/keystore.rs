//! RLN credentials in a keystore file compatible with the Waku RLN keystore (version 0.2):
//! each credential is a JSON document encrypted with AES-128-CTR under a key derived from a
//! password by PBKDF2-HMAC-SHA256, authenticated by `keccak256(key[16..32] ‖ ciphertext)`,
//! and filed under a membership hash, `SHA-256(chainId ‖ contract ‖ treeIndex)` in upper-case
//! hex, so that one file can hold memberships on several contracts.

use std::collections::BTreeMap;
use std::path::Path;

use aes::cipher::{KeyIvInit, StreamCipher};
use rand::{CryptoRng, RngCore};
use rln_core::{fr_from_le_bytes, fr_to_le_bytes, Fr, Identity};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;
use tiny_keccak::{Hasher, Keccak};

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// `application` of a Waku RLN keystore.
pub const APPLICATION: &str = "waku-rln-relay";
/// `appIdentifier` used by Waku's tools.
pub const APP_IDENTIFIER: &str = "01234567890abcdef";
/// The keystore format version.
pub const VERSION: &str = "0.2";
/// PBKDF2 iterations for new credentials.
pub const PBKDF2_ROUNDS: u32 = 1_000_000;

/// Keystore failures. A wrong password is its own variant so tools can say so plainly.
#[derive(Debug, Error)]
pub enum KeystoreError {
    /// The file could not be read or written.
    #[error("keystore {path}: {source}")]
    Io {
        /// The keystore file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a keystore of this format.
    #[error("keystore {path} is not a Waku RLN keystore: {reason}")]
    Format {
        /// The keystore file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The MAC does not match: the password is wrong (or the file was altered).
    #[error("wrong password for the credential {0} (or the keystore was altered)")]
    WrongPassword(String),
    /// No credential is filed under this membership.
    #[error("the keystore holds no credential for membership {0}")]
    NotFound(String),
    /// The keystore already holds this membership.
    #[error("the keystore already holds a credential for membership {0}")]
    Exists(String),
}

/// The contract a membership belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipContract {
    /// Chain id as `0x` + upper-case hex, as Waku's tools write it.
    #[serde(rename = "chainId")]
    pub chain_id: String,
    /// The contract address, EIP-55 checksummed.
    pub address: String,
}

/// The identity part of a credential, each value 32 little-endian bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityCredential {
    /// Random trapdoor (zero when the identity was not derived from one).
    #[serde(rename = "idTrapdoor")]
    pub id_trapdoor: Vec<u8>,
    /// Random nullifier (zero when the identity was not derived from one).
    #[serde(rename = "idNullifier")]
    pub id_nullifier: Vec<u8>,
    /// The identity secret, `Poseidon(trapdoor, nullifier)` for derived identities.
    #[serde(rename = "idSecretHash")]
    pub id_secret_hash: Vec<u8>,
    /// `Poseidon(secret)`.
    #[serde(rename = "idCommitment")]
    pub id_commitment: Vec<u8>,
}

/// One membership: where it is registered and the identity that owns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeystoreMembership {
    /// The contract.
    #[serde(rename = "membershipContract")]
    pub membership_contract: MembershipContract,
    /// The leaf index.
    #[serde(rename = "treeIndex")]
    pub tree_index: u64,
    /// The identity.
    #[serde(rename = "identityCredential")]
    pub identity_credential: IdentityCredential,
    /// The registered message limit (RLN v2).
    #[serde(
        rename = "userMessageLimit",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub user_message_limit: Option<u64>,
}

impl KeystoreMembership {
    /// Files `identity`'s membership at `tree_index` of `contract` on `chain_id`.
    pub fn new(
        identity: &Identity,
        trapdoor_nullifier: Option<(Fr, Fr)>,
        chain_id: u64,
        contract_checksummed: &str,
        tree_index: u64,
        user_message_limit: u64,
    ) -> Self {
        let (trapdoor, nullifier) = trapdoor_nullifier
            .map(|(t, n)| (fr_to_le_bytes(&t).to_vec(), fr_to_le_bytes(&n).to_vec()))
            .unwrap_or_else(|| (vec![0; 32], vec![0; 32]));
        Self {
            membership_contract: MembershipContract {
                chain_id: format!("0x{chain_id:X}"),
                address: contract_checksummed.to_string(),
            },
            tree_index,
            identity_credential: IdentityCredential {
                id_trapdoor: trapdoor,
                id_nullifier: nullifier,
                id_secret_hash: fr_to_le_bytes(&identity.secret()).to_vec(),
                id_commitment: fr_to_le_bytes(&identity.commitment()).to_vec(),
            },
            user_message_limit: Some(user_message_limit),
        }
    }

    /// The key this membership is filed under.
    pub fn hash(&self) -> String {
        membership_hash(
            &self.membership_contract.chain_id,
            &self.membership_contract.address,
            self.tree_index,
        )
    }

    /// The identity, checked: the stored commitment must be `Poseidon(secret)`.
    pub fn identity(&self) -> Result<Identity, KeystoreError> {
        self.checked_identity()
            .map_err(|reason| KeystoreError::Format {
                path: format!("credential {}", self.hash()),
                reason,
            })
    }

    fn checked_identity(&self) -> Result<Identity, String> {
        let field = |bytes: &[u8], what: &str| -> Result<Fr, String> {
            let array: [u8; 32] = bytes
                .try_into()
                .map_err(|_| format!("{what} is not 32 bytes"))?;
            fr_from_le_bytes(&array).map_err(|e| format!("{what}: {e}"))
        };
        let identity = Identity::from_secret(field(
            &self.identity_credential.id_secret_hash,
            "idSecretHash",
        )?);
        if identity.commitment() != field(&self.identity_credential.id_commitment, "idCommitment")?
        {
            return Err("idCommitment is not Poseidon(idSecretHash)".into());
        }
        Ok(identity)
    }
}

/// `SHA-256(chainId ‖ address ‖ treeIndex)` over their text forms, upper-case hex.
pub fn membership_hash(chain_id: &str, address: &str, tree_index: u64) -> String {
    let digest = Sha256::digest(format!("{chain_id}{address}{tree_index}").as_bytes());
    digest.iter().map(|b| format!("{b:02X}")).collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CipherParams {
    iv: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct KdfParams {
    dklen: u32,
    c: u32,
    prf: String,
    salt: String,
}

/// An encrypted credential (the EIP-2335-style `crypto` object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crypto {
    cipher: String,
    cipherparams: CipherParams,
    ciphertext: String,
    kdf: String,
    kdfparams: KdfParams,
    mac: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    crypto: Crypto,
}

/// A keystore file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keystore {
    application: String,
    #[serde(rename = "appIdentifier")]
    app_identifier: String,
    version: String,
    credentials: BTreeMap<String, Entry>,
}

impl Default for Keystore {
    fn default() -> Self {
        Self {
            application: APPLICATION.into(),
            app_identifier: APP_IDENTIFIER.into(),
            version: VERSION.into(),
            credentials: BTreeMap::new(),
        }
    }
}

fn keccak(parts: &[&[u8]]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut hasher = Keccak::v256();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize(&mut out);
    out
}

fn derive(password: &[u8], salt: &[u8], rounds: u32) -> [u8; 32] {
    let mut key = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, rounds, &mut key);
    key
}

impl Crypto {
    /// Encrypts `plaintext` under `password` with fresh salt and IV.
    pub fn encrypt<R: RngCore + CryptoRng>(
        plaintext: &[u8],
        password: &[u8],
        rounds: u32,
        rng: &mut R,
    ) -> Self {
        let mut salt = [0u8; 16];
        let mut iv = [0u8; 16];
        rng.fill_bytes(&mut salt);
        rng.fill_bytes(&mut iv);
        let key = derive(password, &salt, rounds);
        let mut ciphertext = plaintext.to_vec();
        Aes128Ctr::new((&key[..16]).into(), (&iv).into()).apply_keystream(&mut ciphertext);
        let mac = keccak(&[&key[16..], &ciphertext]);
        Self {
            cipher: "aes-128-ctr".into(),
            cipherparams: CipherParams { iv: hex(&iv) },
            ciphertext: hex(&ciphertext),
            kdf: "pbkdf2".into(),
            kdfparams: KdfParams {
                dklen: 32,
                c: rounds,
                prf: "hmac-sha256".into(),
                salt: hex(&salt),
            },
            mac: hex(&mac),
        }
    }

    /// Checks the MAC and decrypts. `id` names the credential in errors.
    pub fn decrypt(&self, password: &[u8], id: &str) -> Result<Vec<u8>, KeystoreError> {
        let format = |reason: String| KeystoreError::Format {
            path: format!("credential {id}"),
            reason,
        };
        if self.cipher != "aes-128-ctr"
            || self.kdf != "pbkdf2"
            || self.kdfparams.prf != "hmac-sha256"
            || self.kdfparams.dklen != 32
        {
            return Err(format(format!(
                "unsupported scheme {}/{}/{} (expected aes-128-ctr, pbkdf2, hmac-sha256, dklen 32)",
                self.cipher, self.kdf, self.kdfparams.prf
            )));
        }
        let salt = unhex(&self.kdfparams.salt).map_err(format)?;
        let iv: [u8; 16] = unhex(&self.cipherparams.iv)
            .map_err(format)?
            .try_into()
            .map_err(|_| format("the IV is not 16 bytes".into()))?;
        let mut data = unhex(&self.ciphertext).map_err(format)?;
        let key = derive(password, &salt, self.kdfparams.c);
        if hex(&keccak(&[&key[16..], &data])) != self.mac.to_lowercase() {
            return Err(KeystoreError::WrongPassword(id.to_string()));
        }
        Aes128Ctr::new((&key[..16]).into(), (&iv).into()).apply_keystream(&mut data);
        Ok(data)
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes hex (an optional `0x` first). Works on bytes, so that any text, non-ASCII
/// included, is an error and never a slice across a character.
pub(crate) fn unhex(text: &str) -> Result<Vec<u8>, String> {
    let digits = text.strip_prefix("0x").unwrap_or(text).as_bytes();
    if !digits.len().is_multiple_of(2) {
        return Err("odd-length hex".into());
    }
    let nibble = |c: u8| (c as char).to_digit(16).filter(|_| c.is_ascii());
    digits
        .chunks(2)
        .map(|pair| match (nibble(pair[0]), nibble(pair[1])) {
            (Some(hi), Some(lo)) => Ok((hi * 16 + lo) as u8),
            _ => Err(format!("`{}` is not hex", text.escape_debug())),
        })
        .collect()
}

impl Keystore {
    /// Reads a keystore file.
    pub fn load(path: &Path) -> Result<Self, KeystoreError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeystoreError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// Parses a keystore's JSON text (what [`Self::load`] does once the file is read);
    /// `origin` names it in errors, e.g. the file's path.
    pub fn from_json(text: &str, origin: &str) -> Result<Self, KeystoreError> {
        let keystore: Self = serde_json::from_str(text).map_err(|e| KeystoreError::Format {
            path: origin.to_string(),
            reason: e.to_string(),
        })?;
        if keystore.application != APPLICATION {
            return Err(KeystoreError::Format {
                path: origin.to_string(),
                reason: format!(
                    "application is `{}`, not `{APPLICATION}`",
                    keystore.application
                ),
            });
        }
        Ok(keystore)
    }

    /// Reads a keystore file, or starts an empty one if it does not exist.
    pub fn load_or_new(path: &Path) -> Result<Self, KeystoreError> {
        if path.exists() {
            Self::load(path)
        } else {
            Ok(Self::default())
        }
    }

    /// Writes the keystore atomically (synced temporary file, then rename), readable by the
    /// owner only.
    pub fn save(&self, path: &Path) -> Result<(), KeystoreError> {
        let io = |source| KeystoreError::Io {
            path: path.display().to_string(),
            source,
        };
        let text = serde_json::to_string_pretty(self).map_err(|e| io(std::io::Error::other(e)))?;
        rln_db::secret_file::write_private(path, text.as_bytes()).map_err(io)
    }

    /// Adds a membership encrypted under `password`.
    pub fn add<R: RngCore + CryptoRng>(
        &mut self,
        membership: &KeystoreMembership,
        password: &[u8],
        rounds: u32,
        rng: &mut R,
    ) -> Result<String, KeystoreError> {
        let id = membership.hash();
        if self.credentials.contains_key(&id) {
            return Err(KeystoreError::Exists(id));
        }
        let plaintext = serde_json::to_vec(membership).map_err(|e| KeystoreError::Format {
            path: String::new(),
            reason: e.to_string(),
        })?;
        let crypto = Crypto::encrypt(&plaintext, password, rounds, rng);
        self.credentials.insert(id.clone(), Entry { crypto });
        Ok(id)
    }

    /// The membership hashes held.
    pub fn memberships(&self) -> impl Iterator<Item = &str> {
        self.credentials.keys().map(String::as_str)
    }

    /// Decrypts the credential filed under `id`.
    pub fn get(&self, id: &str, password: &[u8]) -> Result<KeystoreMembership, KeystoreError> {
        let entry = self
            .credentials
            .get(id)
            .ok_or_else(|| KeystoreError::NotFound(id.to_string()))?;
        let plaintext = entry.crypto.decrypt(password, id)?;
        serde_json::from_slice(&plaintext).map_err(|e| KeystoreError::Format {
            path: format!("credential {id}"),
            reason: format!("decrypted credential is not JSON: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn hex_of_any_text_is_decoded_or_refused_never_a_panic() {
        assert_eq!(unhex("0x0aFf").unwrap(), vec![0x0a, 0xff]);
        // Multi-byte characters where a digit pair would start or end: errors, not panics.
        for bad in ["é0", "0é", "0xé1", "ab€d", "zz", "abc", "٣٣"] {
            assert!(unhex(bad).is_err(), "{bad:?}");
        }
    }

    /// The encrypted credential of the keystore specification's test vector.
    const SPEC_CIPHERTEXT: &str = "9c72f47ce95de03ed34502d0288e7576b66b51b9e7d5ae882c27bd89f94e6a03c2c44c2ddf0c982e72003d67212105f1b64614f57cabb0ceadab7e07be165eee1121ad6b81951368a9f3be2dd99ea294515f6013d5f2bd4702a40e36cfde2ea298b23b31e5ce719d8040c3331f73d6bf44f88bca39bac0e917d8bf545500e4f40d321c235426a80f315ac70666acbd3bdf803fbc1e7e7103fed466525ed332b25d72b2dbedf6fa383b2305987c1fe276b029570519b3e79930edf08c1029868d05c2c08ab61d7c64f63c054b4f6a5a12d43cdc79751b6fe58d3ed26b69443eb7c9f7efce27912340129c91b6b813ac94efd5776a40b1dda896d61357de208c7c47a14af911cc231355c8093ee6626e89c07e1037f9e0b22c690e3e049014399ca0212c509cb04c71c7860d1b17a0c47711c490c27bad2825926148a1f15a507f36ba2cdaa04897fce2914e53caed0beaf1bebd2a83af76511cc15bff2165ff0860ad6eca1f30022d7739b2a6b6a72f2feeef0f5941183cda015b4631469e1f4cf27003cab9a90920301cb30d95e4554686922dc5a05c13dfb575cdf113c700d607896011970e6ee7d6edb61210ab28ac8f0c84c606c097e3e300f0a5f5341edfd15432bef6225a498726b62a98283829ad51023b2987f30686cfb4ea3951f3957654035ec291f9b0964a3a8665d81b16cec20fb40f944d5f9bf03ac1e444ad45bae3fa85e7465ce620c0966d8148d6e2856f676c4fbbe3ebe470453efb4bbda1866680037917e37765f680e3da96ef3991f3fe5cda80c523996c2234758bf5f7b6d052dc6942f5a92c8b8eec5d2d8940203bbb6b1cba7b7ebc1334334ca69cdb509a5ea58ec6b2ebaea52307589eaae9430eb15ad234c0c39c83accdf3b77e52a616e345209c5bc9b442f9f0fa96836d9342f983a7";

    fn spec_crypto() -> Crypto {
        Crypto {
            cipher: "aes-128-ctr".into(),
            cipherparams: CipherParams {
                iv: "fd6b39eb71d44c59f6bf5ff3d8945c80".into(),
            },
            ciphertext: SPEC_CIPHERTEXT.into(),
            kdf: "pbkdf2".into(),
            kdfparams: KdfParams {
                dklen: 32,
                c: 1_000_000,
                prf: "hmac-sha256".into(),
                salt: "60f0aa92fbf63a8356dfdbed2ab18058".into(),
            },
            mac: "51a227ac6db7f2797c63925880b3db664e034231a4c68daa919ab42d8df38bc6".into(),
        }
    }

    #[test]
    fn membership_hash_of_the_spec_vector() {
        assert_eq!(
            membership_hash("0xAA36A7", "0x8e1F3742B987d8BA376c0CBbD7357fE1F003ED71", 8),
            "9DB2B4718A97485B9F70F68D1CC19F4E10F0B4CE943418838E94956CB8E57548"
        );
    }

    #[test]
    fn the_spec_vector_decrypts_and_its_identity_is_consistent() {
        let plaintext = spec_crypto().decrypt(b"sup3rsecure", "spec").unwrap();
        let membership: KeystoreMembership = serde_json::from_slice(&plaintext).unwrap();
        assert_eq!(membership.tree_index, 8);
        assert_eq!(membership.membership_contract.chain_id, "0xAA36A7");
        assert_eq!(
            membership.hash(),
            "9DB2B4718A97485B9F70F68D1CC19F4E10F0B4CE943418838E94956CB8E57548"
        );
        let identity = membership.identity().unwrap();
        let c = &membership.identity_credential;
        let le = |b: &[u8]| fr_from_le_bytes(&b.try_into().unwrap()).unwrap();
        assert_eq!(
            rln_core::poseidon::poseidon2(le(&c.id_trapdoor), le(&c.id_nullifier)),
            identity.secret()
        );
        assert!(matches!(
            spec_crypto().decrypt(b"wrong", "spec"),
            Err(KeystoreError::WrongPassword(_))
        ));
    }

    #[test]
    fn roundtrip_through_a_file_and_wrong_password() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let identity = Identity::from_seed(b"keystore");
        let membership = KeystoreMembership::new(
            &identity,
            None,
            31337,
            "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            3,
            10,
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keystore.json");
        let mut keystore = Keystore::load_or_new(&path).unwrap();
        let id = keystore.add(&membership, b"pw", 1000, &mut rng).unwrap();
        assert!(matches!(
            keystore.add(&membership, b"pw", 1000, &mut rng),
            Err(KeystoreError::Exists(_))
        ));
        keystore.save(&path).unwrap();
        let loaded = Keystore::load(&path).unwrap();
        let back = loaded.get(&id, b"pw").unwrap();
        assert_eq!(back, membership);
        assert_eq!(back.identity().unwrap(), identity);
        assert!(matches!(
            loaded.get(&id, b"nope"),
            Err(KeystoreError::WrongPassword(_))
        ));
        assert!(matches!(
            loaded.get("00", b"pw"),
            Err(KeystoreError::NotFound(_))
        ));
        std::fs::write(&path, b"{\"application\":\"other\"}").unwrap();
        assert!(matches!(
            Keystore::load(&path),
            Err(KeystoreError::Format { .. })
        ));
    }
}
