//! Light push: the service's request decoders `decode_v3` (`/vac/waku/lightpush/3.0.0`) and
//! `decode_v2` (`2.0.0-beta1`), and the light client's (`protocols::client`)
//! `LightPushResponse::decode` and `decode_v2_response`. Every input is tried with each.
//!
//! Checks: no panic; a request with a message re-encodes (`encode_v3`, `encode_v2`) to one
//! that decodes the same; a decoded response re-encodes to one that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rln_relay::wire::lightpush::{
    decode_v2, decode_v2_response, decode_v3, encode_v2, encode_v2_response, encode_v3,
    LightPushResponse,
};
use rln_relay::wire::DEFAULT_MAX_MESSAGE_BYTES;

const LIMIT: usize = DEFAULT_MAX_MESSAGE_BYTES;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = decode_v3(data, LIMIT) {
        if let Some(message) = &request.message {
            let bytes = encode_v3(
                &request.request_id,
                request.pubsub_topic.as_deref(),
                message,
            );
            assert_eq!(decode_v3(&bytes, usize::MAX), Ok(request));
        }
    }
    if let Ok(request) = decode_v2(data, LIMIT) {
        if let (Some(message), Some(topic)) = (&request.message, &request.pubsub_topic) {
            let bytes = encode_v2(&request.request_id, topic, message);
            assert_eq!(decode_v2(&bytes, usize::MAX), Ok(request));
        }
    }
    if let Ok(response) = LightPushResponse::decode(data) {
        assert_eq!(
            LightPushResponse::decode(&response.encode()).as_ref(),
            Ok(&response)
        );
    }
    if let Ok((id, ok, info)) = decode_v2_response(data) {
        let again = decode_v2_response(&encode_v2_response(&id, ok, &info));
        assert_eq!(again, Ok((id, ok, info)));
    }
});
