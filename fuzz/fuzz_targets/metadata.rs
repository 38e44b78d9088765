//! `Metadata::decode`, what the node reads from every newly connected peer
//! (`/vac/waku/metadata/1.0.0`) to decide whether it is of the same cluster.
//!
//! Checks: no panic; the decoded shards are sorted and unique; a decoded value re-encodes to
//! bytes that decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rln_relay::wire::metadata::Metadata;

fuzz_target!(|data: &[u8]| {
    let Ok(metadata) = Metadata::decode(data) else {
        return;
    };
    assert!(metadata.shards.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(Metadata::decode(&metadata.encode()).as_ref(), Ok(&metadata));
});
