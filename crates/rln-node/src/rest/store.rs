//! `GET /store/v3/messages`: a Store v3 query in nwaku's REST form, answered from this node's
//! archive or, with `peerAddr`, by another store node over the protocol.
//!
//! Parameters (all optional, URL-encoded): `peerAddr`, `includeData` (default false),
//! `pubsubTopic`, `contentTopics` (comma-separated), `startTime` and `endTime` (Unix ns; start
//! inclusive, end exclusive), `hashes` (comma-separated), `cursor`, `ascending` (default
//! true), `pageSize` (default 20, at most 100). Hashes and cursors are accepted as `0x` hex,
//! bare hex or base64; the answer writes them as `0x` hex (as nwaku's `toHex` does).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::{Deserialize, Serialize};

use rln_relay::protocols::store::{self, code};
use rln_relay::wire::store::{StoreRequest, StoreResponse};
use rln_relay::Multiaddr;

use super::types::{ApiError, RestMessage};
use crate::handle::NodeHandle;

/// The query string.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreParams {
    peer_addr: Option<String>,
    include_data: Option<String>,
    pubsub_topic: Option<String>,
    content_topics: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    hashes: Option<String>,
    cursor: Option<String>,
    ascending: Option<String>,
    page_size: Option<String>,
}

/// One entry of the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestStoreEntry {
    /// The message hash, `0x` hex.
    pub message_hash: String,
    /// The message, when `includeData` was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<RestMessage>,
    /// Its pubsub topic, when `includeData` was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pubsub_topic: Option<String>,
}

/// The answer (nwaku's `StoreQueryResponseHex`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestStoreResponse {
    /// The request id.
    pub request_id: String,
    /// The store status code (200, 300, 400, 429, 503).
    pub status_code: u32,
    /// What went wrong, if anything.
    #[serde(default)]
    pub status_desc: String,
    /// The page, ascending.
    pub messages: Vec<RestStoreEntry>,
    /// Where the next page starts, when more follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination_cursor: Option<String>,
}

fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// A message hash written as `0x` hex, bare hex or base64 (standard or URL-safe).
pub fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    let hex_part = text.strip_prefix("0x").unwrap_or(text);
    let bytes = if hex_part.len() == 64 {
        hex::decode(hex_part).ok()?
    } else {
        STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE.decode(text))
            .or_else(|_| URL_SAFE_NO_PAD.decode(text))
            .ok()?
    };
    bytes.try_into().ok()
}

fn parse_bool(name: &str, value: &Option<String>, default: bool) -> Result<bool, ApiError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(ApiError::bad(&format!(
            "{name} must be true or false, not `{v}`"
        ))),
    }
}

fn parse_int<T: std::str::FromStr>(
    name: &str,
    value: &Option<String>,
) -> Result<Option<T>, ApiError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad(&format!("{name} must be a whole number, not `{v}`"))),
    }
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The protocol request the parameters describe.
pub fn request_of(params: &StoreParams) -> Result<StoreRequest, ApiError> {
    let list = |value: &Option<String>| -> Vec<String> {
        non_empty(value)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    let hashes = list(&params.hashes)
        .iter()
        .map(|h| {
            parse_hash(h)
                .map(|h| h.to_vec())
                .ok_or_else(|| ApiError::bad(&format!("`{h}` is not a 32-byte message hash")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let cursor = match non_empty(&params.cursor) {
        Some(c) => Some(
            parse_hash(c)
                .ok_or_else(|| {
                    ApiError::bad(&format!("cursor `{c}` is not a 32-byte message hash"))
                })?
                .to_vec(),
        ),
        None => None,
    };
    Ok(StoreRequest {
        request_id: String::new(),
        include_data: parse_bool("includeData", &params.include_data, false)?,
        pubsub_topic: non_empty(&params.pubsub_topic).map(str::to_string),
        content_topics: list(&params.content_topics),
        time_start: parse_int("startTime", &params.start_time)?,
        time_end: parse_int("endTime", &params.end_time)?,
        message_hashes: hashes,
        pagination_cursor: cursor,
        pagination_forward: parse_bool("ascending", &params.ascending, true)?,
        pagination_limit: parse_int("pageSize", &params.page_size)?,
    })
}

/// The REST form of an answer.
pub fn rest_response(r: StoreResponse) -> RestStoreResponse {
    RestStoreResponse {
        request_id: r.request_id,
        status_code: r.status_code,
        status_desc: r.status_desc.unwrap_or_default(),
        messages: r
            .messages
            .into_iter()
            .map(|e| RestStoreEntry {
                message_hash: hex0x(&e.hash),
                pubsub_topic: e.message.as_ref().map(|(t, _)| t.clone()),
                message: e
                    .message
                    .as_ref()
                    .map(|(_, m)| RestMessage::from_message(m)),
            })
            .collect(),
        pagination_cursor: r.cursor.map(|c| hex0x(&c)),
    }
}

fn http_status(store_code: u32, remote: bool) -> StatusCode {
    match store_code {
        code::OK => StatusCode::OK,
        code::BAD_REQUEST => StatusCode::BAD_REQUEST,
        code::TOO_MANY_REQUESTS => StatusCode::TOO_MANY_REQUESTS,
        code::SERVICE_UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
        _ if remote => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `GET /store/v3/messages`.
pub(super) async fn messages(
    State(node): State<NodeHandle>,
    Query(params): Query<StoreParams>,
) -> Result<Response, ApiError> {
    let mut request = request_of(&params)?;
    request.request_id = format!("rest-{:016x}", rand::random::<u64>());
    let (answer, remote) = match non_empty(&params.peer_addr) {
        Some(addr) => {
            let addr: Multiaddr = addr
                .parse()
                .map_err(|_| ApiError::bad(&format!("peerAddr `{addr}` is not a multiaddress")))?;
            if rln_relay::handle::peer_of(&addr).is_none() {
                return Err(ApiError::bad("peerAddr needs a /p2p/<peer id> part"));
            }
            let peer = node
                .network()
                .connect(&addr, std::time::Duration::from_secs(10))
                .await
                .map_err(|e| ApiError {
                    status: StatusCode::BAD_GATEWAY,
                    message: e.to_string(),
                    retry_after: None,
                })?;
            let answer = store::ask(node.network(), peer, &request)
                .await
                .map_err(|e| ApiError {
                    status: StatusCode::BAD_GATEWAY,
                    message: e.to_string(),
                    retry_after: None,
                })?;
            (answer, true)
        }
        None => {
            let service = node.store().cloned().ok_or_else(|| ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "this node keeps no history (store is disabled); ask another node \
                          with peerAddr"
                    .into(),
                retry_after: None,
            })?;
            let answer = tokio::task::spawn_blocking(move || service.query(&request))
                .await
                .map_err(|_| ApiError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    message: "the store query failed".into(),
                    retry_after: None,
                })?;
            (answer, false)
        }
    };
    let status = http_status(answer.status_code, remote);
    Ok((status, Json(rest_response(answer))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_parse_in_every_form_clients_write() {
        let h = [0xabu8; 32];
        assert_eq!(parse_hash(&hex0x(&h)), Some(h));
        assert_eq!(parse_hash(&hex::encode(h)), Some(h));
        assert_eq!(parse_hash(&STANDARD.encode(h)), Some(h));
        assert_eq!(parse_hash(&URL_SAFE_NO_PAD.encode(h)), Some(h));
        assert_eq!(parse_hash("0x1234"), None);
        assert_eq!(parse_hash("not a hash"), None);
    }

    #[test]
    fn parameters_become_the_protocol_request() {
        let params = StoreParams {
            include_data: Some("true".into()),
            pubsub_topic: Some("/waku/2/rs/1/0".into()),
            content_topics: Some("/a/1/b/p, /a/1/c/p".into()),
            start_time: Some("5".into()),
            cursor: Some(hex0x(&[1u8; 32])),
            page_size: Some("7".into()),
            ..Default::default()
        };
        let r = request_of(&params).unwrap();
        assert!(
            r.include_data && r.pagination_forward,
            "ascending by default"
        );
        assert_eq!(r.content_topics, vec!["/a/1/b/p", "/a/1/c/p"]);
        assert_eq!((r.time_start, r.time_end), (Some(5), None));
        assert_eq!(r.pagination_cursor, Some(vec![1u8; 32]));
        assert_eq!(r.pagination_limit, Some(7));
        for bad in [
            StoreParams {
                start_time: Some("soon".into()),
                ..Default::default()
            },
            StoreParams {
                ascending: Some("maybe".into()),
                ..Default::default()
            },
            StoreParams {
                cursor: Some("0x12".into()),
                ..Default::default()
            },
            StoreParams {
                hashes: Some("0x12,0x34".into()),
                ..Default::default()
            },
        ] {
            assert!(request_of(&bad).is_err());
        }
    }
}
