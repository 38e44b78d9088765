//! Light push: a client hands a message to a service node, which relays it.
//!
//! v3 (`/vac/waku/lightpush/3.0.0`): `LightPushRequest { request_id = 1, pubsub_topic = 20,
//! message = 21 }`, `LightPushResponse { request_id = 1, status_code = 10, status_desc = 11,
//! relay_peer_count = 12 }`. v2 (`/vac/waku/lightpush/2.0.0-beta1`): `PushRPC { request_id =
//! 1, request = 2, response = 3 }` around `PushRequest { pubsub_topic = 1, message = 2 }` and
//! `PushResponse { is_success = 1, info = 2 }`. The embedded `WakuMessage` is read as bytes
//! and decoded by [`WakuMessage::decode`], with its checks and size limit.

use prost::Message as _;

use super::message::{WakuMessage, WireError};

/// A push request, from either version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRequest {
    /// Echoed in the response.
    pub request_id: String,
    /// The pubsub topic (v3 may leave it out).
    pub pubsub_topic: Option<String>,
    /// The message, `None` when the request has none.
    pub message: Option<WakuMessage>,
}

/// Why a push request cannot be served, before any of its content is looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushDecodeError {
    /// The message is larger than the limit.
    TooLarge(String),
    /// Anything else: not the protobuf, or a broken message.
    Malformed(String),
}

fn embedded(bytes: Option<Vec<u8>>, max: usize) -> Result<Option<WakuMessage>, PushDecodeError> {
    bytes
        .map(|b| {
            WakuMessage::decode(&b, max).map_err(|e| match e {
                WireError::TooLarge { .. } => PushDecodeError::TooLarge(e.to_string()),
                other => PushDecodeError::Malformed(format!("message: {other}")),
            })
        })
        .transpose()
}

#[derive(Clone, PartialEq, prost::Message)]
struct LightPushRequestProto {
    #[prost(string, tag = "1")]
    request_id: String,
    #[prost(string, optional, tag = "20")]
    pubsub_topic: Option<String>,
    #[prost(bytes = "vec", optional, tag = "21")]
    message: Option<Vec<u8>>,
}

/// A v3 response.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct LightPushResponse {
    /// The request's id.
    #[prost(string, tag = "1")]
    pub request_id: String,
    /// 200 on success; see the light push protocol module for the others.
    #[prost(uint32, tag = "10")]
    pub status_code: u32,
    /// What went wrong, for people.
    #[prost(string, optional, tag = "11")]
    pub status_desc: Option<String>,
    /// Relay peers the message went to (success only).
    #[prost(uint32, optional, tag = "12")]
    pub relay_peer_count: Option<u32>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PushRequestProto {
    #[prost(string, tag = "1")]
    pubsub_topic: String,
    #[prost(bytes = "vec", optional, tag = "2")]
    message: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PushResponseProto {
    #[prost(bool, tag = "1")]
    is_success: bool,
    #[prost(string, tag = "2")]
    info: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PushRpcProto {
    #[prost(string, tag = "1")]
    request_id: String,
    #[prost(message, optional, tag = "2")]
    request: Option<PushRequestProto>,
    #[prost(message, optional, tag = "3")]
    response: Option<PushResponseProto>,
}

/// Decodes a v3 `LightPushRequest` whose message is at most `max_message` bytes.
pub fn decode_v3(bytes: &[u8], max_message: usize) -> Result<PushRequest, PushDecodeError> {
    let raw = LightPushRequestProto::decode(bytes)
        .map_err(|e| PushDecodeError::Malformed(e.to_string()))?;
    Ok(PushRequest {
        message: embedded(raw.message, max_message)?,
        request_id: raw.request_id,
        pubsub_topic: raw.pubsub_topic,
    })
}

/// Encodes a v3 request (the client side, for tests and tools).
pub fn encode_v3(request_id: &str, pubsub_topic: Option<&str>, message: &WakuMessage) -> Vec<u8> {
    LightPushRequestProto {
        request_id: request_id.to_string(),
        pubsub_topic: pubsub_topic.map(str::to_string),
        message: Some(message.encode()),
    }
    .encode_to_vec()
}

impl LightPushResponse {
    /// Encodes the response.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    /// Decodes a response (the client side).
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        <Self as prost::Message>::decode(bytes).map_err(|e| WireError::Protobuf(e.to_string()))
    }
}

/// Decodes a v2 `PushRPC` carrying a request.
pub fn decode_v2(bytes: &[u8], max_message: usize) -> Result<PushRequest, PushDecodeError> {
    let raw = PushRpcProto::decode(bytes).map_err(|e| PushDecodeError::Malformed(e.to_string()))?;
    let request = raw
        .request
        .ok_or_else(|| PushDecodeError::Malformed("the PushRPC has no request".into()))?;
    Ok(PushRequest {
        request_id: raw.request_id,
        pubsub_topic: Some(request.pubsub_topic),
        message: embedded(request.message, max_message)?,
    })
}

/// Encodes a v2 `PushRPC` request (the client side, for tests and tools).
pub fn encode_v2(request_id: &str, pubsub_topic: &str, message: &WakuMessage) -> Vec<u8> {
    PushRpcProto {
        request_id: request_id.to_string(),
        request: Some(PushRequestProto {
            pubsub_topic: pubsub_topic.to_string(),
            message: Some(message.encode()),
        }),
        response: None,
    }
    .encode_to_vec()
}

/// Encodes a v2 `PushRPC` response.
pub fn encode_v2_response(request_id: &str, is_success: bool, info: &str) -> Vec<u8> {
    PushRpcProto {
        request_id: request_id.to_string(),
        request: None,
        response: Some(PushResponseProto {
            is_success,
            info: info.to_string(),
        }),
    }
    .encode_to_vec()
}

/// Decodes a v2 response: `(request_id, is_success, info)`.
pub fn decode_v2_response(bytes: &[u8]) -> Result<(String, bool, String), WireError> {
    let raw = PushRpcProto::decode(bytes).map_err(|e| WireError::Protobuf(e.to_string()))?;
    let response = raw.response.ok_or(WireError::Field("response"))?;
    Ok((raw.request_id, response.is_success, response.info))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> WakuMessage {
        WakuMessage {
            payload: b"hi".to_vec(),
            content_topic: "/a/1/b/proto".into(),
            timestamp: Some(5),
            ..Default::default()
        }
    }

    #[test]
    fn v3_requests_and_responses_round_trip_with_waku_field_numbers() {
        let bytes = encode_v3("id-1", Some("/waku/2/rs/1/0"), &message());
        // request_id is field 1; pubsub_topic field 20 (key 0xa2 0x01); message 21 (0xaa 0x01).
        assert_eq!(&bytes[..2], &[0x0a, 4]);
        assert!(bytes.windows(2).any(|w| w == [0xa2, 0x01]));
        assert!(bytes.windows(2).any(|w| w == [0xaa, 0x01]));
        let req = decode_v3(&bytes, 1024).unwrap();
        assert_eq!(req.request_id, "id-1");
        assert_eq!(req.pubsub_topic.as_deref(), Some("/waku/2/rs/1/0"));
        assert_eq!(req.message, Some(message()));
        let resp = LightPushResponse {
            request_id: "id-1".into(),
            status_code: 200,
            status_desc: None,
            relay_peer_count: Some(3),
        };
        assert_eq!(LightPushResponse::decode(&resp.encode()).unwrap(), resp);
    }

    #[test]
    fn v2_requests_and_responses_round_trip() {
        let req = decode_v2(&encode_v2("r", "/t", &message()), 1024).unwrap();
        assert_eq!(req.pubsub_topic.as_deref(), Some("/t"));
        assert_eq!(req.message, Some(message()));
        assert_eq!(
            decode_v2_response(&encode_v2_response("r", false, "why")).unwrap(),
            ("r".into(), false, "why".into())
        );
        // A PushRPC without a request is malformed.
        assert!(matches!(
            decode_v2(&encode_v2_response("r", true, ""), 1024),
            Err(PushDecodeError::Malformed(_))
        ));
    }

    #[test]
    fn bad_requests_are_typed() {
        assert!(matches!(
            decode_v3(&[0x0a, 9], 1024),
            Err(PushDecodeError::Malformed(_))
        ));
        let big = WakuMessage {
            payload: vec![1; 2000],
            ..message()
        };
        assert!(matches!(
            decode_v3(&encode_v3("x", None, &big), 1024),
            Err(PushDecodeError::TooLarge(_))
        ));
        // A request without a message decodes; the service answers 400.
        let empty = LightPushRequestProto {
            request_id: "e".into(),
            pubsub_topic: None,
            message: None,
        }
        .encode_to_vec();
        assert_eq!(decode_v3(&empty, 1024).unwrap().message, None);
    }
}
