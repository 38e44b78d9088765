//! Verifying keys a user passes (`rln.verifying_key`): snarkjs `verification_key.json`
//! (`snarkjs::verifying_key_from_json`) and arkworks bytes, compressed or uncompressed
//! (`verifying_key_from_arkworks`). Every input is tried as both.
//!
//! Checks: no panic; a key read from arkworks bytes, written again in either form, reads
//! back as the same key.
#![no_main]

use ark_serialize::{CanonicalSerialize, Compress};
use libfuzzer_sys::fuzz_target;
use rln_zk::keys::{snarkjs, verifying_key_from_arkworks};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = snarkjs::verifying_key_from_json(text);
    }
    if let Ok(key) = verifying_key_from_arkworks(data) {
        for compress in [Compress::Yes, Compress::No] {
            let mut bytes = Vec::new();
            key.serialize_with_mode(&mut bytes, compress)
                .expect("serialising to memory");
            let back = verifying_key_from_arkworks(&bytes).expect("a written key reads back");
            assert!(back == key, "the key changed on the way back");
        }
    }
});
