//! Waku payload encryption, version 1 (26/WAKU2-PAYLOAD), byte-compatible with js-waku's
//! `@waku/message-encryption` (0.0.38, the one `@waku/sdk` 0.0.36 uses), go-waku and nwaku.
//!
//! A `WakuMessage` whose `version` is [`ENCRYPTED_VERSION`] carries an encrypted *envelope*:
//!
//! ```text
//! flags (1) ‖ payload length (1–3 bytes, little-endian) ‖ payload ‖ padding ‖ [signature (65)]
//! ```
//!
//! - `flags` bits 0–1 hold the width of the length field (1, 2 or 3; 0 is invalid), bit 2
//!   (`0x04`) says the envelope is signed. Other bits are ignored when reading.
//! - The padding is random and brings the whole envelope, signature included, to a multiple of
//!   256 bytes. It is always 1 to 256 bytes long: an envelope that would already be a multiple
//!   of 256 gets a full 256 bytes (js-waku's `preCipher` computes `256 - raw % 256`).
//!   Readers accept any padding length.
//! - The signature is a recoverable secp256k1 ECDSA signature `r ‖ s ‖ v` (v = recovery id
//!   0/1) over keccak256 of every envelope byte before it, the signed flag already set.
//!
//! The envelope is then encrypted with one of two schemes:
//!
//! - **Symmetric**: AES-256-GCM with a random 12-byte IV and no associated data; the wire
//!   bytes are `ciphertext ‖ tag (16) ‖ iv (12)`.
//! - **Asymmetric**: ECIES on secp256k1 as in go-ethereum: an ephemeral key `r`,
//!   `S = x(r·K)`, `k = SHA-256(00 00 00 01 ‖ S)`, `kE = k[0..16]`, `kM = SHA-256(k[16..32])`,
//!   AES-128-CTR (128-bit big-endian counter) under `kE` from a random 16-byte IV, and
//!   `tag = HMAC-SHA-256(kM, iv ‖ ciphertext)`; the wire bytes are
//!   `R (65, uncompressed) ‖ iv (16) ‖ ciphertext ‖ tag (32)`.
//!
//! Both schemes share the version number, so a receiver either knows which key a content
//! topic uses or tries each of its keys with [`decrypt`]: a wrong key or the wrong scheme
//! fails with [`PayloadError::Authentication`] (or [`PayloadError::TooShort`]).

use aes::cipher::{KeyIvInit, StreamCipher};
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::{PublicKey, SecretKey};
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// The `WakuMessage.version` of payloads encrypted by this module (both schemes).
pub const ENCRYPTED_VERSION: u32 = 1;

/// Length of the envelope's signature: `r (32) ‖ s (32) ‖ v (1)`.
pub const SIGNATURE_LEN: usize = 65;

/// Largest payload the 3-byte length field can describe.
pub const MAX_PAYLOAD_LEN: usize = (1 << 24) - 1;

const FLAG_LEN_WIDTH_MASK: u8 = 0x03;
const FLAG_SIGNED: u8 = 0x04;
const PADDING_TARGET: usize = 256;

const GCM_IV_LEN: usize = 12;
const GCM_TAG_LEN: usize = 16;

const ECIES_POINT_LEN: usize = 65;
const ECIES_IV_LEN: usize = 16;
const ECIES_TAG_LEN: usize = 32;
const ECIES_OVERHEAD: usize = ECIES_POINT_LEN + ECIES_IV_LEN + ECIES_TAG_LEN;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;
type HmacSha256 = Hmac<Sha256>;

/// Why a payload could not be encrypted or decrypted, or a key not parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PayloadError {
    /// The encrypted bytes are shorter than the scheme's fixed overhead.
    #[error("encrypted payload is {len} bytes, shorter than the {min} this scheme needs")]
    TooShort {
        /// Length of the input.
        len: usize,
        /// Smallest length the scheme accepts.
        min: usize,
    },
    /// The bytes do not authenticate under this key: a wrong key, the other scheme, or
    /// tampered data.
    #[error("authentication failed: wrong key, other scheme or tampered data")]
    Authentication,
    /// The decrypted envelope is malformed (flags, length field or size).
    #[error("malformed payload envelope: {0}")]
    BadEnvelope(&'static str),
    /// The envelope is marked signed but no public key can be recovered from its signature.
    #[error("invalid envelope signature")]
    BadSignature,
    /// A key could not be parsed or used.
    #[error("invalid key: {0}")]
    BadKey(String),
    /// The payload does not fit the 3-byte length field.
    #[error("payload of {0} bytes is larger than the {MAX_PAYLOAD_LEN} bytes allowed")]
    PayloadTooLarge(usize),
}

/// The key a payload is encrypted for.
#[derive(Clone)]
pub enum PayloadKey {
    /// A 32-byte AES-256-GCM key.
    Symmetric([u8; 32]),
    /// The recipient's secp256k1 public key (ECIES).
    Asymmetric(PublicKey),
}

/// The key a payload is decrypted with.
#[derive(Clone)]
pub enum DecryptionKey {
    /// A 32-byte AES-256-GCM key.
    Symmetric([u8; 32]),
    /// The recipient's secp256k1 private key (ECIES).
    Private(SecretKey),
}

impl std::fmt::Debug for PayloadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Symmetric(_) => f.write_str("PayloadKey::Symmetric(..)"),
            Self::Asymmetric(pk) => write!(f, "PayloadKey::Asymmetric({})", public_hex(pk)),
        }
    }
}

impl std::fmt::Debug for DecryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Symmetric(_) => f.write_str("DecryptionKey::Symmetric(..)"),
            Self::Private(_) => f.write_str("DecryptionKey::Private(..)"),
        }
    }
}

/// A decrypted payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The application's bytes.
    pub payload: Vec<u8>,
    /// The envelope's signature `r ‖ s ‖ v`, if it was signed.
    pub signature: Option<[u8; SIGNATURE_LEN]>,
    /// The public key recovered from the signature, if it was signed.
    pub signer: Option<PublicKey>,
}

/// Wraps `payload` in an envelope (signed by `signer` if given) and encrypts it for `key`.
/// The result goes in `WakuMessage.payload` with `version = ENCRYPTED_VERSION`.
pub fn encrypt<R: RngCore + CryptoRng>(
    payload: &[u8],
    key: &PayloadKey,
    signer: Option<&SecretKey>,
    rng: &mut R,
) -> Result<Vec<u8>, PayloadError> {
    let envelope = seal_envelope(payload, signer, rng)?;
    match key {
        PayloadKey::Symmetric(k) => encrypt_symmetric(&envelope, k, rng),
        PayloadKey::Asymmetric(pk) => encrypt_ecies(&envelope, pk, rng),
    }
}

/// Decrypts `data` (a version-1 `WakuMessage.payload`) with `key`, opens the envelope and,
/// if it is signed, recovers the signer.
pub fn decrypt(data: &[u8], key: &DecryptionKey) -> Result<Decrypted, PayloadError> {
    let envelope = match key {
        DecryptionKey::Symmetric(k) => decrypt_symmetric(data, k)?,
        DecryptionKey::Private(sk) => decrypt_ecies(data, sk)?,
    };
    open_envelope(&envelope)
}

/// Builds `flags ‖ length ‖ payload ‖ padding ‖ [signature]`.
fn seal_envelope<R: RngCore + CryptoRng>(
    payload: &[u8],
    signer: Option<&SecretKey>,
    rng: &mut R,
) -> Result<Vec<u8>, PayloadError> {
    let len = payload.len();
    let width: usize = match len {
        0..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=MAX_PAYLOAD_LEN => 3,
        _ => return Err(PayloadError::PayloadTooLarge(len)),
    };
    let sig_len = if signer.is_some() { SIGNATURE_LEN } else { 0 };
    let raw = 1 + width + len + sig_len;
    let padding = PADDING_TARGET - raw % PADDING_TARGET;

    let mut env = Vec::with_capacity(raw + padding);
    // `width` is 1..=3, so it fits the two low flag bits.
    let mut flags = width as u8;
    if signer.is_some() {
        flags |= FLAG_SIGNED;
    }
    env.push(flags);
    env.extend_from_slice(&(len as u32).to_le_bytes()[..width]);
    env.extend_from_slice(payload);
    let pad_start = env.len();
    env.resize(pad_start + padding, 0);
    rng.fill_bytes(&mut env[pad_start..]);

    if let Some(sk) = signer {
        let hash = keccak256(&env);
        let (sig, recid) = SigningKey::from(sk)
            .sign_prehash_recoverable(&hash)
            .map_err(|e| PayloadError::BadKey(format!("signing failed: {e}")))?;
        env.extend_from_slice(&sig.to_bytes());
        env.push(recid.to_byte());
    }
    Ok(env)
}

/// Parses a decrypted envelope. Stricter than js-waku only where js-waku would silently
/// return a truncated payload: the declared length must fit before the signature.
fn open_envelope(env: &[u8]) -> Result<Decrypted, PayloadError> {
    let flags = *env
        .first()
        .ok_or(PayloadError::BadEnvelope("empty envelope"))?;
    let width = usize::from(flags & FLAG_LEN_WIDTH_MASK);
    if width == 0 {
        return Err(PayloadError::BadEnvelope("length field width is 0"));
    }
    let signed = flags & FLAG_SIGNED != 0;
    let body_end = if signed {
        env.len()
            .checked_sub(SIGNATURE_LEN)
            .ok_or(PayloadError::BadEnvelope("too short for its signature"))?
    } else {
        env.len()
    };
    let start = 1 + width;
    let len_field = env
        .get(1..start)
        .filter(|_| start <= body_end)
        .ok_or(PayloadError::BadEnvelope("too short for its length field"))?;
    let mut le = [0u8; 4];
    le[..width].copy_from_slice(len_field);
    let len = u32::from_le_bytes(le) as usize;
    let payload = start
        .checked_add(len)
        .filter(|&end| end <= body_end)
        .and_then(|end| env.get(start..end))
        .ok_or(PayloadError::BadEnvelope(
            "payload length exceeds the envelope",
        ))?
        .to_vec();

    if !signed {
        return Ok(Decrypted {
            payload,
            signature: None,
            signer: None,
        });
    }
    let mut signature = [0u8; SIGNATURE_LEN];
    signature.copy_from_slice(&env[body_end..]);
    let signer = recover_signer(&keccak256(&env[..body_end]), &signature)?;
    Ok(Decrypted {
        payload,
        signature: Some(signature),
        signer: Some(signer),
    })
}

/// Recovers the public key behind an `r ‖ s ‖ v` signature over `hash`. A high `s` (which
/// libsecp256k1-based signers never produce, but whose recovery they accept) is normalised.
fn recover_signer(hash: &[u8; 32], sig: &[u8; SIGNATURE_LEN]) -> Result<PublicKey, PayloadError> {
    let mut signature =
        Signature::from_slice(&sig[..64]).map_err(|_| PayloadError::BadSignature)?;
    let mut recid = RecoveryId::from_byte(sig[64]).ok_or(PayloadError::BadSignature)?;
    if let Some(low) = signature.normalize_s() {
        signature = low;
        recid = RecoveryId::new(!recid.is_y_odd(), recid.is_x_reduced());
    }
    let vk = VerifyingKey::recover_from_prehash(hash, &signature, recid)
        .map_err(|_| PayloadError::BadSignature)?;
    Ok(PublicKey::from(&vk))
}

fn encrypt_symmetric<R: RngCore + CryptoRng>(
    envelope: &[u8],
    key: &[u8; 32],
    rng: &mut R,
) -> Result<Vec<u8>, PayloadError> {
    let mut iv = [0u8; GCM_IV_LEN];
    rng.fill_bytes(&mut iv);
    let cipher = Aes256Gcm::new(key.into());
    // AES-GCM only refuses plaintexts beyond 64 GiB.
    let mut out = cipher
        .encrypt(Nonce::from_slice(&iv), envelope)
        .map_err(|_| PayloadError::PayloadTooLarge(envelope.len()))?;
    out.extend_from_slice(&iv);
    Ok(out)
}

fn decrypt_symmetric(data: &[u8], key: &[u8; 32]) -> Result<Vec<u8>, PayloadError> {
    let min = GCM_TAG_LEN + GCM_IV_LEN;
    if data.len() < min {
        return Err(PayloadError::TooShort {
            len: data.len(),
            min,
        });
    }
    let (sealed, iv) = data.split_at(data.len() - GCM_IV_LEN);
    Aes256Gcm::new(key.into())
        .decrypt(Nonce::from_slice(iv), sealed)
        .map_err(|_| PayloadError::Authentication)
}

/// The ECIES keys `(kE, kM)` from the shared x coordinate (go-ethereum's one-round concat KDF).
fn ecies_keys(shared_x: &[u8]) -> ([u8; 16], [u8; 32]) {
    let k: [u8; 32] = Sha256::new()
        .chain_update([0, 0, 0, 1])
        .chain_update(shared_x)
        .finalize()
        .into();
    let mut ke = [0u8; 16];
    ke.copy_from_slice(&k[..16]);
    (ke, Sha256::digest(&k[16..]).into())
}

fn ecies_tag(km: &[u8; 32], iv_and_ciphertext: &[u8]) -> Result<HmacSha256, PayloadError> {
    // HMAC takes keys of any length, so this never fails.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(km)
        .map_err(|_| PayloadError::BadKey("HMAC key".into()))?;
    mac.update(iv_and_ciphertext);
    Ok(mac)
}

fn encrypt_ecies<R: RngCore + CryptoRng>(
    envelope: &[u8],
    to: &PublicKey,
    rng: &mut R,
) -> Result<Vec<u8>, PayloadError> {
    let ephemeral = SecretKey::random(rng);
    let shared = k256::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), to.as_affine());
    let (ke, km) = ecies_keys(shared.raw_secret_bytes());

    let mut out = Vec::with_capacity(ECIES_OVERHEAD + envelope.len());
    out.extend_from_slice(ephemeral.public_key().to_encoded_point(false).as_bytes());
    let mut iv = [0u8; ECIES_IV_LEN];
    rng.fill_bytes(&mut iv);
    out.extend_from_slice(&iv);
    let body = out.len();
    out.extend_from_slice(envelope);
    Aes128Ctr::new(&ke.into(), &iv.into()).apply_keystream(&mut out[body..]);
    let tag = ecies_tag(&km, &out[ECIES_POINT_LEN..])?
        .finalize()
        .into_bytes();
    out.extend_from_slice(&tag);
    Ok(out)
}

fn decrypt_ecies(data: &[u8], key: &SecretKey) -> Result<Vec<u8>, PayloadError> {
    // js-waku requires at least one ciphertext byte.
    let min = ECIES_OVERHEAD + 1;
    if data.len() < min {
        return Err(PayloadError::TooShort {
            len: data.len(),
            min,
        });
    }
    let (point, rest) = data.split_at(ECIES_POINT_LEN);
    let (iv_and_ct, tag) = rest.split_at(rest.len() - ECIES_TAG_LEN);
    // Not an uncompressed curve point: not ECIES data for anyone.
    if point[0] != 0x04 {
        return Err(PayloadError::Authentication);
    }
    let ephemeral = PublicKey::from_sec1_bytes(point).map_err(|_| PayloadError::Authentication)?;
    let shared = k256::ecdh::diffie_hellman(key.to_nonzero_scalar(), ephemeral.as_affine());
    let (ke, km) = ecies_keys(shared.raw_secret_bytes());
    ecies_tag(&km, iv_and_ct)?
        .verify_slice(tag)
        .map_err(|_| PayloadError::Authentication)?;

    let (iv, ct) = iv_and_ct.split_at(ECIES_IV_LEN);
    let mut plain = ct.to_vec();
    let mut iv_arr = [0u8; ECIES_IV_LEN];
    iv_arr.copy_from_slice(iv);
    Aes128Ctr::new(&ke.into(), &iv_arr.into()).apply_keystream(&mut plain);
    Ok(plain)
}

/// keccak256, as Ethereum uses it (not SHA3-256).
fn keccak256(data: &[u8]) -> [u8; 32] {
    use tiny_keccak::{Hasher, Keccak};
    let mut out = [0u8; 32];
    let mut h = Keccak::v256();
    h.update(data);
    h.finalize(&mut out);
    out
}

fn decode_hex(what: &str, s: &str) -> Result<Vec<u8>, PayloadError> {
    let s = s.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    hex::decode(s).map_err(|e| PayloadError::BadKey(format!("{what} is not valid hex: {e}")))
}

/// Parses a 32-byte symmetric key from hex (64 digits, `0x` optional).
pub fn parse_symmetric_key(s: &str) -> Result<[u8; 32], PayloadError> {
    let bytes = decode_hex("symmetric key", s)?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        PayloadError::BadKey(format!(
            "symmetric key must be 32 bytes, got {}",
            bytes.len()
        ))
    })
}

/// Parses a secp256k1 public key from hex: 33 bytes (compressed, `02`/`03…`) or 65 bytes
/// (uncompressed, `04…`), `0x` optional.
pub fn parse_public_key(s: &str) -> Result<PublicKey, PayloadError> {
    let bytes = decode_hex("public key", s)?;
    if bytes.len() != 33 && bytes.len() != 65 {
        return Err(PayloadError::BadKey(format!(
            "public key must be 33 (compressed) or 65 (uncompressed) bytes, got {}",
            bytes.len()
        )));
    }
    PublicKey::from_sec1_bytes(&bytes)
        .map_err(|_| PayloadError::BadKey("public key is not a point on secp256k1".into()))
}

/// Parses a 32-byte secp256k1 private key from hex (`0x` optional).
pub fn parse_secret_key(s: &str) -> Result<SecretKey, PayloadError> {
    let bytes = decode_hex("private key", s)?;
    if bytes.len() != 32 {
        return Err(PayloadError::BadKey(format!(
            "private key must be 32 bytes, got {}",
            bytes.len()
        )));
    }
    SecretKey::from_slice(&bytes).map_err(|_| {
        PayloadError::BadKey("private key is zero or not below the curve order".into())
    })
}

/// The public key of `sk`, uncompressed (65 bytes), as `0x04…` hex.
pub fn public_key_hex(sk: &SecretKey) -> String {
    public_hex(&sk.public_key())
}

/// A public key as uncompressed hex, `0x04…`.
pub fn public_hex(pk: &PublicKey) -> String {
    format!("0x{}", hex::encode(pk.to_encoded_point(false).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::OsRng;

    // The fixed keys of js/interop.mjs.
    const SYM: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const RECIPIENT: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const SIGNER: &str = "2222222222222222222222222222222222222222222222222222222222222222";
    const RECIPIENT_PUB: &str =
        "0x044f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871\
        aa385b6b1b8ead809ca67454d9683fcf2ba03456d6fe2c4abe2b07f0fbdbb2f1c1";
    const SIGNER_PUB: &str = "0x04466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f\
        276728176c3c6431f8eeda4538dc37c865e2784f3a9e77d044f33e407797e1278a";

    fn keys() -> (
        DecryptionKey,
        PayloadKey,
        DecryptionKey,
        PayloadKey,
        SecretKey,
    ) {
        let sym = parse_symmetric_key(SYM).unwrap();
        let sk = parse_secret_key(RECIPIENT).unwrap();
        (
            DecryptionKey::Symmetric(sym),
            PayloadKey::Symmetric(sym),
            DecryptionKey::Private(sk.clone()),
            PayloadKey::Asymmetric(sk.public_key()),
            parse_secret_key(SIGNER).unwrap(),
        )
    }

    #[test]
    fn round_trips_both_schemes_signed_and_unsigned() {
        let (sym_d, sym_e, priv_d, pub_e, signer) = keys();
        for (enc, dec, overhead) in [(&sym_e, &sym_d, 28), (&pub_e, &priv_d, 113)] {
            for len in [0usize, 1, 187, 254, 255, 256, 65_535, 65_536] {
                let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
                for sig in [None, Some(&signer)] {
                    let data = encrypt(&payload, enc, sig, &mut OsRng).unwrap();
                    // Envelope (signature included) is a multiple of 256 bytes.
                    assert_eq!((data.len() - overhead) % 256, 0, "len {len}");
                    let out = decrypt(&data, dec).unwrap();
                    assert_eq!(out.payload, payload);
                    assert_eq!(out.signer, sig.map(|s| s.public_key()));
                    assert_eq!(out.signature.is_some(), sig.is_some());
                    if let Some(s) = out.signature {
                        assert!(s[64] <= 1, "v is the raw recovery id");
                    }
                }
            }
        }
    }

    #[test]
    fn padding_rule_matches_js_waku() {
        let mut rng = OsRng;
        // raw = 1 + width + len (+ 65): padding is 256 - raw % 256, so 1..=256 bytes.
        for (len, signed, want) in [
            (0, false, 256),
            (253, false, 256),
            (254, false, 512),
            (189, true, 512),
            (188, true, 256),
            (300, false, 512),
            (65_536, false, 65_792),
        ] {
            let signer = SecretKey::random(&mut rng);
            let env = seal_envelope(&vec![7; len], signed.then_some(&signer), &mut rng).unwrap();
            assert_eq!(env.len(), want, "len {len} signed {signed}");
            let width = 1 + u8::from(len > 255) + u8::from(len > 65_535);
            assert_eq!(env[0], width | if signed { 4 } else { 0 });
            assert_eq!(open_envelope(&env).unwrap().payload, vec![7; len]);
        }
    }

    #[test]
    fn payload_over_three_length_bytes_is_refused() {
        let (_, sym_e, ..) = keys();
        let big = vec![0u8; MAX_PAYLOAD_LEN + 1];
        assert_eq!(
            encrypt(&big, &sym_e, None, &mut OsRng),
            Err(PayloadError::PayloadTooLarge(MAX_PAYLOAD_LEN + 1))
        );
    }

    #[test]
    fn wrong_key_or_scheme_is_an_authentication_error() {
        let (sym_d, sym_e, priv_d, pub_e, signer) = keys();
        let other_sym = DecryptionKey::Symmetric([9; 32]);
        let other_priv = DecryptionKey::Private(SecretKey::random(&mut OsRng));
        let sym = encrypt(b"x", &sym_e, Some(&signer), &mut OsRng).unwrap();
        let asym = encrypt(b"x", &pub_e, Some(&signer), &mut OsRng).unwrap();
        for (data, key) in [
            (&sym, &other_sym),
            (&asym, &other_priv),
            (&sym, &priv_d),
            (&asym, &sym_d),
        ] {
            assert_eq!(decrypt(data, key), Err(PayloadError::Authentication));
        }
    }

    #[test]
    fn truncated_and_tampered_inputs_fail_cleanly() {
        let (sym_d, sym_e, priv_d, pub_e, signer) = keys();
        for (enc, dec) in [(&sym_e, &sym_d), (&pub_e, &priv_d)] {
            let data = encrypt(b"tamper me", enc, Some(&signer), &mut OsRng).unwrap();
            for cut in 0..data.len() {
                assert!(decrypt(&data[..cut], dec).is_err(), "truncated to {cut}");
            }
            for i in 0..data.len() {
                let mut bad = data.clone();
                bad[i] ^= 1 << (i % 8);
                assert!(decrypt(&bad, dec).is_err(), "flipped byte {i}");
            }
        }
        assert!(matches!(
            decrypt(&[], &sym_d),
            Err(PayloadError::TooShort { min: 28, .. })
        ));
        assert!(matches!(
            decrypt(&[4; 113], &priv_d),
            Err(PayloadError::TooShort { min: 114, .. })
        ));
    }

    #[test]
    fn malformed_envelopes_are_typed_errors() {
        let cases: [(&[u8], &str); 5] = [
            (&[], "empty envelope"),
            (&[0, 1, 2], "length field width is 0"),
            (&[2, 1], "too short for its length field"),
            (&[1, 5, 1, 2], "payload length exceeds the envelope"),
            (&[5; 10], "too short for its signature"),
        ];
        for (env, why) in cases {
            assert_eq!(open_envelope(env), Err(PayloadError::BadEnvelope(why)));
        }
        assert_eq!(open_envelope(&[1, 2, 9, 9, 0]).unwrap().payload, vec![9, 9]);
        // Signed flag with a zero signature.
        let mut env = vec![5, 0];
        env.extend([0; SIGNATURE_LEN]);
        assert_eq!(open_envelope(&env), Err(PayloadError::BadSignature));
    }

    #[test]
    fn high_s_signature_still_recovers_the_signer() {
        let signer = parse_secret_key(SIGNER).unwrap();
        let mut env = seal_envelope(b"malleable", Some(&signer), &mut OsRng).unwrap();
        let at = env.len() - SIGNATURE_LEN;
        let sig = Signature::from_slice(&env[at..at + 64]).unwrap();
        assert!(sig.normalize_s().is_none(), "we sign with low s");
        let high = Signature::from_scalars(sig.r().to_bytes(), (-*sig.s()).to_bytes()).unwrap();
        env[at..at + 64].copy_from_slice(&high.to_bytes());
        env[at + 64] ^= 1;
        assert_eq!(
            open_envelope(&env).unwrap().signer,
            Some(signer.public_key())
        );
    }

    fn bad_key<T>(r: Result<T, PayloadError>) -> bool {
        matches!(r, Err(PayloadError::BadKey(_)))
    }

    #[test]
    fn key_parsing() {
        let sk = parse_secret_key(&format!("0x{SIGNER}")).unwrap();
        assert_eq!(public_key_hex(&sk), SIGNER_PUB);
        let recipient = parse_secret_key(RECIPIENT).unwrap();
        assert_eq!(public_key_hex(&recipient), RECIPIENT_PUB);
        let pk = parse_public_key(SIGNER_PUB).unwrap();
        let compressed = hex::encode(pk.to_encoded_point(true).as_bytes());
        assert_eq!(parse_public_key(&compressed).unwrap(), pk);
        let sym = parse_symmetric_key(&format!(" 0X{SYM} ")).unwrap();
        assert_eq!(sym, parse_symmetric_key(SYM).unwrap());
        for bad in [&SYM[2..], "zz", "0x"] {
            assert!(bad_key(parse_symmetric_key(bad)), "{bad}");
        }
        assert!(bad_key(parse_secret_key(&"00".repeat(32))));
        assert!(bad_key(parse_secret_key(&"ff".repeat(32))));
        assert!(bad_key(parse_public_key(&"04".repeat(65))));
        assert!(bad_key(parse_public_key(&SIGNER_PUB[4..])));
        assert!(!format!("{:?}", DecryptionKey::Symmetric([7; 32])).contains('7'));
    }

    /// Made by js-waku 0.0.38's real encoders (`js/interop.mjs emit`), with the keys above.
    const JS_VECTORS: [(&str, bool, &str, &str); 4] = [
        ("sym", false, "hi waku", "276291476b8d600f7b9c2ebc507177e1b54b75e9d88963303fa9149339f36fa2\
            8aa53df81abafc5aa0a8c22ba0cf519a2920ccffabf3463b5aa48bbccaf8999f5c06a50256bc74ba2914e8dd\
            63e6e4dd83ec96d0732bcca5a995f52efdabd9919fbf3c94bcbf28eb08df39e2b04910027c71a889daac6578\
            2a179ca8331804a6cd5870e3e30e83dc479d31b66d49a949e8b2fc2b9649f0efdd6c0adc4c6fa4c15c7defce\
            505b1b0864c8c3895e61fbba18054e2aaddf1eb8447bbeaa4dcce7a6333dff678465f4c61ec2a824ff120feb\
            427cd699eb34f6b93506f267ae1f66f58a18e6c612f69d41132cdee1cc15a032d224c5d64ef351741d7e8b97\
            dbd61ba3b0eecf9874f1b95b82962f380e1c141e686b0d87df080eb7b04ace92"),
        ("sym", true, "signed sym", "8d89e4feb43dce3766c28b48e315a7cc39965a994af12985e6aca8771d3a634\
            25fe1fe01432ee1d4ee15942feb2b20ed1d1bf47631e9614a31510dcd215f7599b7b43612729a92bf3f129891\
            81bcb6e1ccde7ca885de2860816df4b56c88ba05c6a50fd51cc96b632b6ce5fa980ccad964499f3276cc1c9ba\
            065f82ccfb1820b8136b3a0289afb76a573ae712c6c6ebe305be976e1913dc96f98dd41099245b0883f8295cf\
            d47ce48a952f17b6953527877d6fbf7068517c74f887e1932e2dcd0c4e5cdbc34eaa0d159036703fa68ad208a\
            54b9378000eb8637e281a4ba3d042dd2136a05d4c081b0c99e2011c3ad55a165be07297434e6eadf6a5b682e9\
            9503bbae8713ee901ad84153b735776ea460ce435a5c434d28f4ec01c672"),
        ("ecies", false, "hi ecies", "044df230f96b54ee87b0c96ff9c5390b17cb0be5d0d80c6d240d8ba0872ae50\
            64e3c6b85d43bce82e82db96fb878cc1bf31c81e2d6f4330e4d58f54bcc804d896af5e3f45ac7af2e0e5364d5\
            18e26e6abf39f2d45408a7f3993000033a3024c068408c03f980d482378f8acd3e70c4e0fe3e43e79355e009c\
            ecb81beafefc8f62b1f4a1e2b304dd21ab1b74108a4127750aa441527639c32ff706adf50418691fc2fd0cf19\
            c8b8b8ead1daeded921721cc8faf8faa92f0b68a864a922961f879535c528362bcf4e407f85518f3d1c619804\
            b48d5e2c2d5cb4f8888c79cb13c60f9ced2aaa061547857312dc5cb828c8ff8488bb71f192cd088564c3f953f\
            f3dd89d7c95fd1a3bf2fb6db20c531b6be8abc3778fe8508dc21c356503f49b2e8bbe9ed5efd47bd7f1190beb\
            77a1ef0e43c6994aaef909935dff971f960be78cefe519621df6df56502fbf6c680f0a4b736ab921648ec7d23\
            fc1cb291475f8be574423f3e2d054635af1bbea8dcad6aa900d4"),
        ("ecies", true, "signed ecies", "04474019f5d7aad993eac089c843afadad66a57cb07d29383bcc894c5bb\
            439d9bb0367340292c42b13d7947930451cce3755c4dc40190f4b397f418851e2a9d756e41d6b44396c4b824a\
            595d9cdd8040baef6330e04519e5e368cd9758b0a3d545127032fcdeceab8084657adcd571f753da4ecd40b65\
            c79a9a622932d27b560d1e491d47d755f85b7317ee7e82b549c4bcc1caf277edd87232b70bc8bab616412350f\
            589eae90baeb66f1521ff12acb7cd230d33ab2b8aa9ed4a48758d8dd5af25c0a0e7e0712169851ab0f04e4d99\
            06085b7b4007873aea562cc35e54c51498092bff60fc4ca00e6a554f88ac2d81ba5f6b205c7b35cb9da391ee1\
            cbdfd91be5e61515d2d334f31cae0f55019db779a7227bc4d3f9cd7afc55d7c9a8284feb44a168124f8e9e618\
            8ebef12d5eba2be7e95f88b8a099a52a3661f3793143aa87c1b2386b47ce31cfae741f45f39bc80a0046eadba\
            b0e9dcfcf6894f5be56b9155e4c4e37197d0d5241f42aa5b151651fd"),
    ];

    #[test]
    fn opens_js_waku_vectors() {
        let (sym_d, _, priv_d, ..) = keys();
        let signer = parse_public_key(SIGNER_PUB).unwrap();
        for (scheme, signed, text, data) in JS_VECTORS {
            let key = if scheme == "sym" { &sym_d } else { &priv_d };
            let out = decrypt(&hex::decode(data).unwrap(), key).unwrap();
            assert_eq!(out.payload, text.as_bytes(), "{scheme} {signed}");
            assert_eq!(out.signer, signed.then_some(signer), "{scheme} {signed}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_envelopes_never_panic(env in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = open_envelope(&env);
        }

        #[test]
        fn arbitrary_ciphertexts_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            let (sym_d, _, priv_d, ..) = keys();
            prop_assert!(decrypt(&data, &sym_d).is_err());
            let mut ecies_like = data.clone();
            if let Some(b) = ecies_like.first_mut() { *b = 4; }
            prop_assert!(decrypt(&ecies_like, &priv_d).is_err());
        }
    }
}
