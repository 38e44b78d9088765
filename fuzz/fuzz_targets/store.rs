//! Store v3: `StoreRequest::decode` and the request check `plan` that the store service runs
//! on every query stream, and the client side's `StoreResponse::decode` (what `rln-node`'s
//! history resume and `GET /store/v3/messages?peerAddr=…` read from another node). Every input
//! is tried with each decoder.
//!
//! Checks: no panic; a decoded request or response re-encodes to bytes that decode to the
//! same value; the plan of a request does not depend on its encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rln_relay::protocols::store::plan;
use rln_relay::wire::store::{StoreRequest, StoreResponse};
use rln_relay::wire::DEFAULT_MAX_MESSAGE_BYTES;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = StoreRequest::decode(data) {
        let planned = plan(&request);
        let again = StoreRequest::decode(&request.encode()).expect("a request re-encodes");
        assert_eq!(again, request);
        assert_eq!(plan(&again), planned);
    }
    if let Ok(response) = StoreResponse::decode(data, DEFAULT_MAX_MESSAGE_BYTES) {
        let again = StoreResponse::decode(&response.encode(), usize::MAX);
        assert_eq!(again, Ok(response));
    }
});
