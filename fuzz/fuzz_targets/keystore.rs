//! The keystore a node reads its membership from (`membership.keystore`, `rln-node
//! membership …`): `Keystore::from_json`, the parser behind `Keystore::load`, then
//! `Keystore::get` (MAC check, decryption, the credential's JSON) and the identity check;
//! and the decrypted credential's JSON (`KeystoreMembership`) on its own, since a fuzzer
//! cannot forge the MAC that guards it inside a keystore.
//!
//! Checks: no panic; a parsed keystore or credential serialises to JSON that parses back to
//! the same value. Credentials are decrypted with the password `fuzz` only when their PBKDF2
//! count is small: the count is the file's to choose, and a large one is slow, not a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rln_chain::{Keystore, KeystoreMembership};

/// The password of the seed keystores (`fuzz/seeds/keystore`).
const PASSWORD: &[u8] = b"fuzz";
/// Most PBKDF2 iterations spent on one credential.
const MAX_ROUNDS: u64 = 16;

fn rounds(text: &str, id: &str) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    value["credentials"][id]["crypto"]["kdfparams"]["c"].as_u64()
}

fn check_membership(membership: &KeystoreMembership) {
    let _ = membership.identity();
    let _ = membership.hash();
    let json = serde_json::to_vec(membership).expect("a credential serialises");
    let back: KeystoreMembership = serde_json::from_slice(&json).expect("and parses back");
    assert_eq!(&back, membership);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(keystore) = Keystore::from_json(text, "fuzz input") {
            let json = serde_json::to_string(&keystore).expect("a keystore serialises");
            let back = Keystore::from_json(&json, "re-serialised").expect("and parses back");
            assert_eq!(back, keystore);
            for id in keystore.memberships() {
                if rounds(text, id).is_some_and(|c| c <= MAX_ROUNDS) {
                    if let Ok(membership) = keystore.get(id, PASSWORD) {
                        check_membership(&membership);
                    }
                }
            }
        }
    }
    if let Ok(membership) = serde_json::from_slice::<KeystoreMembership>(data) {
        check_membership(&membership);
    }
});
