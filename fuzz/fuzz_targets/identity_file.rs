//! The identity file `rln-node register --identity` reads (`rln_chain::IdentityFile`): JSON
//! with four field elements, each in the `0x` big-endian form or the older little-endian hex.
//!
//! Checks: no panic; an accepted file's identity written back in the current form reads back
//! to the same identity and derivation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rln_chain::IdentityFile;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(stored) = IdentityFile::parse(text) {
        let again = IdentityFile::new(&stored.identity, stored.trapdoor, stored.nullifier);
        let back = IdentityFile::parse(&again.to_json()).expect("a written file reads back");
        assert!(back == stored, "the identity changed on a round trip");
    }
});
