//! Filter v2: `FilterRequest::decode` (what the filter service reads from every subscribe
//! stream), and the client side's `FilterResponse::decode` and `decode_push` (what the light
//! client, `protocols::client`, reads from a service node). Every input is tried with each.
//!
//! Checks: no panic; a decoded request or response re-encodes to bytes that decode to the
//! same value; a decoded push re-encodes (`encode_push`) to one that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rln_relay::wire::filter::{decode_push, encode_push, FilterRequest, FilterResponse};
use rln_relay::wire::DEFAULT_MAX_MESSAGE_BYTES;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = FilterRequest::decode(data) {
        assert_eq!(
            FilterRequest::decode(&request.encode()).as_ref(),
            Ok(&request)
        );
    }
    if let Ok(response) = FilterResponse::decode(data) {
        assert_eq!(
            FilterResponse::decode(&response.encode()).as_ref(),
            Ok(&response)
        );
    }
    if let Ok((topic, message)) = decode_push(data, DEFAULT_MAX_MESSAGE_BYTES) {
        let again = decode_push(&encode_push(&topic, &message.encode()), usize::MAX);
        assert_eq!(again, Ok((topic, message)));
    }
});
