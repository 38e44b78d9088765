//! `WakuMessage::decode`, the first decoder every gossipsub message meets (the swarm task
//! calls it on each arrival) and the one the light protocols use for embedded messages.
//!
//! Checks: no panic on any input; a decoded message re-encodes to bytes that decode to the
//! same message; the RLN signal and the Waku hash (what validation and deduplication key on)
//! are the same for the original and the re-encoded copy.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rln_relay::wire::{WakuMessage, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_PUBSUB_TOPIC};
use rln_relay::SignalMode;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = WakuMessage::decode(data, DEFAULT_MAX_MESSAGE_BYTES) else {
        return;
    };
    let encoded = message.encode();
    let again = WakuMessage::decode(&encoded, usize::MAX)
        .expect("a decoded message re-encodes to a valid message");
    assert_eq!(
        again, message,
        "decode → encode → decode changed the message"
    );
    assert_eq!(
        again.hash(DEFAULT_PUBSUB_TOPIC),
        message.hash(DEFAULT_PUBSUB_TOPIC)
    );
    for mode in [SignalMode::Timestamped, SignalMode::Legacy] {
        assert_eq!(again.signal(mode), message.signal(mode));
    }
});
