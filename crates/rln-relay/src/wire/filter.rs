//! Filter v2: `/vac/waku/filter-subscribe/2.0.0-beta1` (requests from the client) and
//! `/vac/waku/filter-push/2.0.0-beta1` (messages pushed to it).
//!
//! `FilterSubscribeRequest { request_id = 1, filter_subscribe_type = 2, pubsub_topic = 10,
//! content_topics = 11 }`, `FilterSubscribeResponse { request_id = 1, status_code = 10,
//! status_desc = 11 }`, `MessagePush { waku_message = 1, pubsub_topic = 2 }`.

use prost::Message as _;

use super::message::{WakuMessage, WireError};

/// What a subscribe request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterRequestType {
    /// Is my subscription alive? (also refreshes it)
    Ping,
    /// Add criteria (or refresh them).
    Subscribe,
    /// Remove criteria.
    Unsubscribe,
    /// Remove every criterion of the peer.
    UnsubscribeAll,
}

impl FilterRequestType {
    fn from_wire(value: i32) -> Option<Self> {
        match value {
            0 => Some(Self::Ping),
            1 => Some(Self::Subscribe),
            2 => Some(Self::Unsubscribe),
            3 => Some(Self::UnsubscribeAll),
            _ => None,
        }
    }

    fn to_wire(self) -> i32 {
        match self {
            Self::Ping => 0,
            Self::Subscribe => 1,
            Self::Unsubscribe => 2,
            Self::UnsubscribeAll => 3,
        }
    }
}

/// A subscribe request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterRequest {
    /// Echoed in the response.
    pub request_id: String,
    /// What it asks.
    pub kind: FilterRequestType,
    /// The pubsub topic of the criteria.
    pub pubsub_topic: Option<String>,
    /// The content topics of the criteria.
    pub content_topics: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct FilterRequestProto {
    #[prost(string, tag = "1")]
    request_id: String,
    #[prost(int32, tag = "2")]
    filter_subscribe_type: i32,
    #[prost(string, optional, tag = "10")]
    pubsub_topic: Option<String>,
    #[prost(string, repeated, tag = "11")]
    content_topics: Vec<String>,
}

/// The answer to a subscribe request.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct FilterResponse {
    /// The request's id.
    #[prost(string, tag = "1")]
    pub request_id: String,
    /// 200 on success, else 400, 404, 429, 500 or 503.
    #[prost(uint32, tag = "10")]
    pub status_code: u32,
    /// What went wrong, for people.
    #[prost(string, optional, tag = "11")]
    pub status_desc: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct MessagePushProto {
    #[prost(bytes = "vec", optional, tag = "1")]
    waku_message: Option<Vec<u8>>,
    #[prost(string, optional, tag = "2")]
    pubsub_topic: Option<String>,
}

impl FilterRequest {
    /// Decodes a request; an unknown request type is malformed.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let raw =
            FilterRequestProto::decode(bytes).map_err(|e| WireError::Protobuf(e.to_string()))?;
        let kind = FilterRequestType::from_wire(raw.filter_subscribe_type)
            .ok_or(WireError::Field("filter_subscribe_type"))?;
        Ok(Self {
            request_id: raw.request_id,
            kind,
            pubsub_topic: raw.pubsub_topic,
            content_topics: raw.content_topics,
        })
    }

    /// Encodes the request (the client side).
    pub fn encode(&self) -> Vec<u8> {
        FilterRequestProto {
            request_id: self.request_id.clone(),
            filter_subscribe_type: self.kind.to_wire(),
            pubsub_topic: self.pubsub_topic.clone(),
            content_topics: self.content_topics.clone(),
        }
        .encode_to_vec()
    }
}

impl FilterResponse {
    /// Encodes the response.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    /// Decodes a response (the client side).
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        <Self as prost::Message>::decode(bytes).map_err(|e| WireError::Protobuf(e.to_string()))
    }
}

/// Encodes a push of `message` (already encoded) on `pubsub_topic`.
pub fn encode_push(pubsub_topic: &str, encoded_message: &[u8]) -> Vec<u8> {
    MessagePushProto {
        waku_message: Some(encoded_message.to_vec()),
        pubsub_topic: Some(pubsub_topic.to_string()),
    }
    .encode_to_vec()
}

/// Decodes a push (the client side): the pubsub topic and the message.
pub fn decode_push(bytes: &[u8], max_message: usize) -> Result<(String, WakuMessage), WireError> {
    let raw = MessagePushProto::decode(bytes).map_err(|e| WireError::Protobuf(e.to_string()))?;
    let message = raw.waku_message.ok_or(WireError::Field("waku_message"))?;
    Ok((
        raw.pubsub_topic.unwrap_or_default(),
        WakuMessage::decode(&message, max_message)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_responses_and_pushes_round_trip() {
        let req = FilterRequest {
            request_id: "r1".into(),
            kind: FilterRequestType::Subscribe,
            pubsub_topic: Some("/waku/2/rs/1/0".into()),
            content_topics: vec!["/a/1/b/proto".into(), "/a/1/c/proto".into()],
        };
        let bytes = req.encode();
        // filter_subscribe_type is field 2 (a varint, 1 = SUBSCRIBE).
        assert!(bytes.windows(2).any(|w| w == [0x10, 1]));
        assert_eq!(FilterRequest::decode(&bytes).unwrap(), req);
        // PING is the enum's zero: proto3 leaves it out, and it still decodes as a ping.
        let ping = FilterRequest {
            kind: FilterRequestType::Ping,
            pubsub_topic: None,
            content_topics: vec![],
            ..req
        };
        assert_eq!(FilterRequest::decode(&ping.encode()).unwrap(), ping);
        let resp = FilterResponse {
            request_id: "r1".into(),
            status_code: 404,
            status_desc: Some("no subscription".into()),
        };
        assert_eq!(FilterResponse::decode(&resp.encode()).unwrap(), resp);
        let m = WakuMessage {
            payload: b"x".to_vec(),
            content_topic: "/a/1/b/proto".into(),
            ..Default::default()
        };
        let push = encode_push("/waku/2/rs/1/0", &m.encode());
        assert_eq!(
            decode_push(&push, 1024).unwrap(),
            ("/waku/2/rs/1/0".to_string(), m)
        );
    }

    #[test]
    fn unknown_request_types_are_malformed() {
        let bytes = FilterRequestProto {
            request_id: "x".into(),
            filter_subscribe_type: 7,
            pubsub_topic: None,
            content_topics: vec![],
        }
        .encode_to_vec();
        assert_eq!(
            FilterRequest::decode(&bytes),
            Err(WireError::Field("filter_subscribe_type"))
        );
        assert!(FilterRequest::decode(&[0x0a, 0x05, 1]).is_err());
    }
}
