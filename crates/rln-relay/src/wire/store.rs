//! Store v3: `/vac/waku/store-query/3.0.0`.
//!
//! `StoreQueryRequest { request_id = 1, include_data = 2, pubsub_topic = 10,
//! content_topics = 11, time_start = 12 (sint64), time_end = 13 (sint64),
//! message_hashes = 20, pagination_cursor = 51, pagination_forward = 52,
//! pagination_limit = 53 }`; `StoreQueryResponse { request_id = 1, status_code = 10,
//! status_desc = 11, messages = 20, pagination_cursor = 51 }`; each message a
//! `WakuMessageKeyValue { message_hash = 1, message = 2, pubsub_topic = 3 }`.

use prost::Message as _;

use super::message::{WakuMessage, WireError};

/// A store query, as it came off the wire.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct StoreRequest {
    /// Echoed in the response.
    #[prost(string, tag = "1")]
    pub request_id: String,
    /// Whether the answer carries the messages (else their hashes only).
    #[prost(bool, tag = "2")]
    pub include_data: bool,
    /// The pubsub topic of a content-filtered query.
    #[prost(string, optional, tag = "10")]
    pub pubsub_topic: Option<String>,
    /// Its content topics.
    #[prost(string, repeated, tag = "11")]
    pub content_topics: Vec<String>,
    /// Earliest timestamp, Unix ns, inclusive.
    #[prost(sint64, optional, tag = "12")]
    pub time_start: Option<i64>,
    /// Latest timestamp, Unix ns, exclusive.
    #[prost(sint64, optional, tag = "13")]
    pub time_end: Option<i64>,
    /// Hashes to look up (a lookup excludes the content filter).
    #[prost(bytes = "vec", repeated, tag = "20")]
    pub message_hashes: Vec<Vec<u8>>,
    /// Hash of the entry the page continues from, exclusive.
    #[prost(bytes = "vec", optional, tag = "51")]
    pub pagination_cursor: Option<Vec<u8>>,
    /// Walk towards newer entries.
    #[prost(bool, tag = "52")]
    pub pagination_forward: bool,
    /// Entries per page.
    #[prost(uint64, optional, tag = "53")]
    pub pagination_limit: Option<u64>,
}

/// One entry of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreEntry {
    /// The message hash.
    pub hash: [u8; 32],
    /// The message and its pubsub topic, when the query asked for data.
    pub message: Option<(String, WakuMessage)>,
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreResponse {
    /// The request's id.
    pub request_id: String,
    /// 200, or 300, 400, 429, 503.
    pub status_code: u32,
    /// What went wrong, for people.
    pub status_desc: Option<String>,
    /// The page, ascending.
    pub messages: Vec<StoreEntry>,
    /// Where the next page starts, when more follow.
    pub cursor: Option<[u8; 32]>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct KeyValueProto {
    #[prost(bytes = "vec", optional, tag = "1")]
    message_hash: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    message: Option<Vec<u8>>,
    #[prost(string, optional, tag = "3")]
    pubsub_topic: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct StoreResponseProto {
    #[prost(string, tag = "1")]
    request_id: String,
    #[prost(uint32, optional, tag = "10")]
    status_code: Option<u32>,
    #[prost(string, optional, tag = "11")]
    status_desc: Option<String>,
    #[prost(message, repeated, tag = "20")]
    messages: Vec<KeyValueProto>,
    #[prost(bytes = "vec", optional, tag = "51")]
    pagination_cursor: Option<Vec<u8>>,
}

impl StoreRequest {
    /// Decodes a request.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        <Self as prost::Message>::decode(bytes).map_err(|e| WireError::Protobuf(e.to_string()))
    }

    /// Encodes the request (the client side).
    pub fn encode(&self) -> Vec<u8> {
        self.encode_to_vec()
    }
}

fn hash32(bytes: &[u8], field: &'static str) -> Result<[u8; 32], WireError> {
    bytes.try_into().map_err(|_| WireError::Field(field))
}

impl StoreResponse {
    /// A response carrying only a status.
    pub fn status(request_id: &str, code: u32, desc: impl Into<String>) -> Self {
        Self {
            request_id: request_id.to_string(),
            status_code: code,
            status_desc: Some(desc.into()),
            messages: Vec::new(),
            cursor: None,
        }
    }

    /// Encodes the response.
    pub fn encode(&self) -> Vec<u8> {
        StoreResponseProto {
            request_id: self.request_id.clone(),
            status_code: Some(self.status_code),
            status_desc: self.status_desc.clone(),
            messages: self
                .messages
                .iter()
                .map(|e| KeyValueProto {
                    message_hash: Some(e.hash.to_vec()),
                    message: e.message.as_ref().map(|(_, m)| m.encode()),
                    pubsub_topic: e.message.as_ref().map(|(t, _)| t.clone()),
                })
                .collect(),
            pagination_cursor: self.cursor.map(|c| c.to_vec()),
        }
        .encode_to_vec()
    }

    /// Decodes a response (the client side); messages larger than `max_message` are refused.
    pub fn decode(bytes: &[u8], max_message: usize) -> Result<Self, WireError> {
        let raw =
            StoreResponseProto::decode(bytes).map_err(|e| WireError::Protobuf(e.to_string()))?;
        let mut messages = Vec::with_capacity(raw.messages.len());
        for kv in raw.messages {
            let hash = hash32(
                kv.message_hash
                    .as_deref()
                    .ok_or(WireError::Field("message_hash"))?,
                "message_hash",
            )?;
            let message = match kv.message {
                Some(bytes) => Some((
                    kv.pubsub_topic.unwrap_or_default(),
                    WakuMessage::decode(&bytes, max_message)?,
                )),
                None => None,
            };
            messages.push(StoreEntry { hash, message });
        }
        Ok(Self {
            request_id: raw.request_id,
            // An answer without a code is not a success (js-waku treats it as a failure).
            status_code: raw.status_code.unwrap_or(0),
            status_desc: raw.status_desc,
            messages,
            cursor: raw
                .pagination_cursor
                .map(|c| hash32(&c, "pagination_cursor"))
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_round_trip() {
        let req = StoreRequest {
            request_id: "q".into(),
            include_data: true,
            pubsub_topic: Some("/waku/2/rs/1/0".into()),
            content_topics: vec!["/a/1/b/proto".into()],
            time_start: Some(-5),
            time_end: Some(1_700_000_000_000_000_000),
            message_hashes: vec![],
            pagination_cursor: Some(vec![3u8; 32]),
            pagination_forward: true,
            pagination_limit: Some(7),
        };
        let bytes = req.encode();
        // time_start is a sint64: zigzag -5 = 9, field 12 varint tag 0x60.
        assert!(bytes.windows(2).any(|w| w == [0x60, 9]));
        assert_eq!(StoreRequest::decode(&bytes).unwrap(), req);
        let m = WakuMessage {
            payload: b"x".to_vec(),
            content_topic: "/a/1/b/proto".into(),
            timestamp: Some(9),
            ..Default::default()
        };
        let resp = StoreResponse {
            request_id: "q".into(),
            status_code: 200,
            status_desc: None,
            messages: vec![
                StoreEntry {
                    hash: [1u8; 32],
                    message: Some(("/waku/2/rs/1/0".into(), m)),
                },
                StoreEntry {
                    hash: [2u8; 32],
                    message: None,
                },
            ],
            cursor: Some([2u8; 32]),
        };
        assert_eq!(StoreResponse::decode(&resp.encode(), 1024).unwrap(), resp);
    }

    #[test]
    fn malformed_responses_are_refused() {
        let bad_hash = StoreResponseProto {
            request_id: "q".into(),
            status_code: Some(200),
            status_desc: None,
            messages: vec![KeyValueProto {
                message_hash: Some(vec![1, 2, 3]),
                message: None,
                pubsub_topic: None,
            }],
            pagination_cursor: None,
        }
        .encode_to_vec();
        assert_eq!(
            StoreResponse::decode(&bad_hash, 1024),
            Err(WireError::Field("message_hash"))
        );
        assert!(StoreRequest::decode(&[0x0a, 0x05, 1]).is_err());
    }
}
