//! Encrypted payloads (version 1, 26/WAKU2-PAYLOAD) that `rln-node subscribe` decrypts from
//! messages it receives: `payload::decrypt` with a symmetric key (AES-256-GCM) and with a
//! private key (ECIES), both on the raw input; then the input as a decrypted envelope (it is
//! sealed with AES-256-GCM here, so that the envelope parser behind `decrypt` sees it whole).
//!
//! Checks: no panic; an opened envelope's payload fits in it, and a signature comes with its
//! signer; a payload encrypted with `payload::encrypt` (symmetric or ECIES, signed or not,
//! chosen by the first byte) decrypts to the same payload and signer.
#![no_main]

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use k256::SecretKey;
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use rln_relay::wire::payload::{decrypt, encrypt, DecryptionKey, PayloadKey};

/// The keys of the seed payloads (`fuzz/seeds/payload`).
const SYMMETRIC: [u8; 32] = [0x5a; 32];
const PRIVATE: [u8; 32] = [0x11; 32];
const SIGNER: [u8; 32] = [0x22; 32];

fn secret(bytes: [u8; 32]) -> SecretKey {
    SecretKey::from_bytes(&bytes.into()).expect("a valid secp256k1 scalar")
}

fuzz_target!(|data: &[u8]| {
    let symmetric = DecryptionKey::Symmetric(SYMMETRIC);
    let private = secret(PRIVATE);
    let _ = decrypt(data, &symmetric);
    let _ = decrypt(data, &DecryptionKey::Private(private.clone()));

    // The input as an envelope: ciphertext ‖ tag ‖ iv, as the symmetric scheme writes it.
    let iv = [0u8; 12];
    let mut sealed = Aes256Gcm::new(&SYMMETRIC.into())
        .encrypt(Nonce::from_slice(&iv), data)
        .expect("AES-GCM seals any length we feed it");
    sealed.extend_from_slice(&iv);
    if let Ok(opened) = decrypt(&sealed, &symmetric) {
        assert!(opened.payload.len() < data.len());
        assert_eq!(opened.signature.is_some(), opened.signer.is_some());
    }

    let choice = data.first().copied().unwrap_or(0);
    let signer = (choice & 1 == 1).then(|| secret(SIGNER));
    let (key, opener) = if choice & 2 == 2 {
        (
            PayloadKey::Asymmetric(private.public_key()),
            DecryptionKey::Private(private),
        )
    } else {
        (PayloadKey::Symmetric(SYMMETRIC), symmetric)
    };
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(data.len() as u64);
    let wire = encrypt(data, &key, signer.as_ref(), &mut rng).expect("a payload encrypts");
    let opened = decrypt(&wire, &opener).expect("what was encrypted decrypts");
    assert_eq!(opened.payload, data);
    assert_eq!(opened.signer, signer.map(|s| s.public_key()));
});
