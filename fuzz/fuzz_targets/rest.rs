//! What the REST API decodes from requests, with the extractors its handlers use: the JSON
//! bodies (`Json<RestMessage>` of `POST /relay/v1/messages/{topic}` and
//! `/relay/v1/auto/messages`, `Json<Vec<String>>` of the subscription endpoints) and the
//! query strings (`Query<StoreParams>` of `GET /store/v3/messages`, `Query<SpamParams>` of
//! `GET /rln/v1/spam`), each followed by the handler's own checks (`to_message`,
//! `request_of`, `page`); and the `RestStoreResponse` JSON that `rln-node history` reads from a
//! node. Every input is tried with each.
//!
//! Checks: no panic; a body re-serialises to JSON that decodes to the same value; a message
//! accepted for publishing, written back in REST form, is accepted as the same message.
#![no_main]

use axum::extract::Query;
use axum::http::Uri;
use axum::Json;
use libfuzzer_sys::fuzz_target;
use rln_node::rest::store::{request_of, RestStoreResponse, StoreParams};
use rln_node::rest::{RestMessage, SpamParams};

fn bodies(data: &[u8]) {
    if let Ok(Json(rest)) = Json::<RestMessage>::from_bytes(data) {
        let json = serde_json::to_vec(&rest).expect("a message serialises");
        let Json(back) = Json::<RestMessage>::from_bytes(&json).expect("and decodes back");
        assert_eq!(back, rest);
        if let Ok(message) = rest.to_message() {
            let again = RestMessage::from_message(&message).to_message();
            assert_eq!(again.ok().as_ref(), Some(&message));
        }
    }
    let _ = Json::<Vec<String>>::from_bytes(data);
    if let Ok(response) = serde_json::from_slice::<RestStoreResponse>(data) {
        let json = serde_json::to_vec(&response).expect("an answer serialises");
        let back: RestStoreResponse = serde_json::from_slice(&json).expect("and decodes back");
        assert_eq!(back, response);
    }
}

fn queries(data: &[u8]) {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(uri) = format!("/store/v3/messages?{query}").parse::<Uri>() else {
        return;
    };
    if let Ok(Query(params)) = Query::<StoreParams>::try_from_uri(&uri) {
        let _ = request_of(&params);
    }
    if let Ok(Query(params)) = Query::<SpamParams>::try_from_uri(&uri) {
        if let Ok((limit, _)) = params.page() {
            assert!((1..=1_000).contains(&limit));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    bodies(data);
    queries(data);
});
