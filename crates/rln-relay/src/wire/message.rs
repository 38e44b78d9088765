//! The `WakuMessage` protobuf, the RLN signal it proves and its deterministic hash.
//!
//! Fields: `payload = 1` (bytes, always written), `content_topic = 2` (string), `version = 3`
//! (uint32), `timestamp = 10` (sint64, nanoseconds), `meta = 11` (≤ 64 bytes),
//! `rate_limit_proof = 21` (bytes, a `RateLimitProof` message), `ephemeral = 31` (bool).

use prost::Message as _;
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::proto::WakuMessageProto;
use super::MAX_META_BYTES;

/// A Waku message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WakuMessage {
    /// The application's bytes.
    pub payload: Vec<u8>,
    /// The content topic, e.g. `/app/1/chat/proto`.
    pub content_topic: String,
    /// Payload encoding version.
    pub version: Option<u32>,
    /// Sender's timestamp, nanoseconds since the Unix epoch.
    pub timestamp: Option<i64>,
    /// Application metadata (at most 64 bytes).
    pub meta: Option<Vec<u8>>,
    /// The encoded `RateLimitProof`, kept as bytes: the validation workers decode it.
    pub rate_limit_proof: Option<Vec<u8>>,
    /// Not to be stored.
    pub ephemeral: Option<bool>,
}

/// Why bytes are not a valid `WakuMessage`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    /// The protobuf framing is broken, or a field has the wrong wire type (prost's
    /// description, which names the field).
    #[error("malformed protobuf: {0}")]
    Protobuf(String),
    /// A field has the wrong wire type or content.
    #[error("field `{0}` is malformed")]
    Field(&'static str),
    /// `meta` is longer than 64 bytes.
    #[error("meta has {0} bytes; at most 64 are allowed")]
    MetaTooLong(usize),
    /// The message is larger than the configured limit.
    #[error("the message has {size} bytes; the limit is {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl WakuMessage {
    /// Encodes as protobuf. `payload` is always written, even when empty (as Waku's nodes
    /// do); an empty content topic is left out.
    pub fn encode(&self) -> Vec<u8> {
        WakuMessageProto {
            payload: Some(self.payload.clone()),
            content_topic: (!self.content_topic.is_empty())
                .then(|| self.content_topic.as_bytes().to_vec()),
            version: self.version.map(u64::from),
            timestamp: self.timestamp,
            meta: self.meta.clone(),
            rate_limit_proof: self.rate_limit_proof.clone(),
            ephemeral: self.ephemeral,
        }
        .encode_to_vec()
    }

    /// Decodes a protobuf `WakuMessage` of at most `max_bytes`. Unknown fields are skipped.
    pub fn decode(bytes: &[u8], max_bytes: usize) -> Result<Self, WireError> {
        if bytes.len() > max_bytes {
            return Err(WireError::TooLarge {
                size: bytes.len(),
                limit: max_bytes,
            });
        }
        let raw =
            WakuMessageProto::decode(bytes).map_err(|e| WireError::Protobuf(e.to_string()))?;
        if let Some(meta) = &raw.meta {
            if meta.len() > MAX_META_BYTES {
                return Err(WireError::MetaTooLong(meta.len()));
            }
        }
        let content_topic = match raw.content_topic {
            Some(bytes) => {
                String::from_utf8(bytes).map_err(|_| WireError::Field("content_topic"))?
            }
            None => String::new(),
        };
        let version = raw
            .version
            .map(u32::try_from)
            .transpose()
            .map_err(|_| WireError::Field("version"))?;
        Ok(Self {
            payload: raw.payload.unwrap_or_default(),
            content_topic,
            version,
            timestamp: raw.timestamp,
            meta: raw.meta,
            rate_limit_proof: raw.rate_limit_proof,
            ephemeral: raw.ephemeral,
        })
    }

    /// The bytes whose hash is the RLN signal `x`. [`SignalMode::Timestamped`] binds the
    /// timestamp, so that a replay after gossip's seen-cache expires cannot reuse a proof.
    pub fn signal(&self, mode: SignalMode) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.payload.len() + self.content_topic.len() + 8);
        out.extend_from_slice(&self.payload);
        out.extend_from_slice(self.content_topic.as_bytes());
        if mode == SignalMode::Timestamped {
            out.extend_from_slice(&(self.timestamp.unwrap_or(0) as u64).to_le_bytes());
        }
        out
    }

    /// The deterministic message hash: sha256(pubsub topic ‖ payload ‖ content topic ‖ meta ‖
    /// timestamp as 8 bytes big-endian), absent fields omitted.
    pub fn hash(&self, pubsub_topic: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(pubsub_topic.as_bytes());
        h.update(&self.payload);
        h.update(self.content_topic.as_bytes());
        if let Some(meta) = &self.meta {
            h.update(meta);
        }
        if let Some(ts) = self.timestamp {
            h.update(ts.to_be_bytes());
        }
        h.finalize().into()
    }
}

/// What the RLN signal of a message covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalMode {
    /// `payload ‖ content_topic ‖ timestamp (u64 LE)` (the default).
    #[default]
    Timestamped,
    /// `payload ‖ content_topic`, as older Waku nodes sign.
    Legacy,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::DEFAULT_MAX_MESSAGE_BYTES;
    use proptest::prelude::*;

    fn full() -> WakuMessage {
        WakuMessage {
            payload: b"hello".to_vec(),
            content_topic: "/app/1/chat/proto".into(),
            version: Some(1),
            timestamp: Some(1_700_000_000_123_456_789),
            meta: Some(vec![1, 2, 3]),
            rate_limit_proof: Some(vec![9; 10]),
            ephemeral: Some(true),
        }
    }

    #[test]
    fn roundtrip_and_field_numbers() {
        let m = full();
        let bytes = m.encode();
        assert_eq!(
            WakuMessage::decode(&bytes, DEFAULT_MAX_MESSAGE_BYTES).unwrap(),
            m
        );
        // payload is field 1, length-delimited; rate_limit_proof is field 21 (key 0xaa 0x01).
        assert_eq!(&bytes[..2], &[0x0a, 5]);
        assert!(bytes.windows(3).any(|w| w == [0xaa, 0x01, 10]));
        // An empty payload is still written.
        assert_eq!(WakuMessage::default().encode(), vec![0x0a, 0]);
    }

    #[test]
    fn negative_timestamps_use_zigzag() {
        let m = WakuMessage {
            timestamp: Some(-1),
            ..Default::default()
        };
        let bytes = m.encode();
        assert_eq!(&bytes[2..], &[10 << 3, 1]);
        assert_eq!(
            WakuMessage::decode(&bytes, 100).unwrap().timestamp,
            Some(-1)
        );
    }

    #[test]
    fn bad_messages_are_typed_errors() {
        let big = WakuMessage {
            payload: vec![0; 200],
            ..Default::default()
        };
        assert!(matches!(
            WakuMessage::decode(&big.encode(), 100),
            Err(WireError::TooLarge { limit: 100, .. })
        ));
        let long_meta = WakuMessage {
            meta: Some(vec![0; 65]),
            ..Default::default()
        };
        assert_eq!(
            WakuMessage::decode(&long_meta.encode(), 1000),
            Err(WireError::MetaTooLong(65))
        );
        assert_eq!(
            WakuMessage::decode(&[0x12, 2, 0xff, 0xfe], 1000),
            Err(WireError::Field("content_topic"))
        );
        // A known field with the wrong wire type: the error names the field.
        assert!(matches!(
            WakuMessage::decode(&[0x08, 1], 1000),
            Err(WireError::Protobuf(e)) if e.contains("payload")
        ));
        assert!(matches!(
            WakuMessage::decode(&[0x0a, 9, 1], 1000),
            Err(WireError::Protobuf(_))
        ));
        // A version beyond uint32 is refused, not truncated.
        assert_eq!(
            WakuMessage::decode(&[0x0a, 0, 0x18, 0x80, 0x80, 0x80, 0x80, 0x10], 1000),
            Err(WireError::Field("version"))
        );
    }

    #[test]
    fn signal_binds_the_timestamp_unless_legacy() {
        let m = full();
        let legacy = m.signal(SignalMode::Legacy);
        assert_eq!(legacy, b"hello/app/1/chat/proto");
        let stamped = m.signal(SignalMode::Timestamped);
        assert_eq!(&stamped[..legacy.len()], &legacy[..]);
        assert_eq!(
            &stamped[legacy.len()..],
            &1_700_000_000_123_456_789u64.to_le_bytes()
        );
    }

    #[test]
    fn hash_follows_the_spec_layout() {
        let m = full();
        let mut h = Sha256::new();
        h.update(b"/waku/2/rs/1/0");
        h.update(b"hello");
        h.update(b"/app/1/chat/proto");
        h.update([1u8, 2, 3]);
        h.update(1_700_000_000_123_456_789i64.to_be_bytes());
        let expected: [u8; 32] = h.finalize().into();
        assert_eq!(m.hash("/waku/2/rs/1/0"), expected);
        // The proof does not change the hash.
        let mut other = m.clone();
        other.rate_limit_proof = None;
        assert_eq!(other.hash("/waku/2/rs/1/0"), expected);
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = WakuMessage::decode(&bytes, DEFAULT_MAX_MESSAGE_BYTES);
        }

        #[test]
        fn roundtrips(payload in proptest::collection::vec(any::<u8>(), 0..100),
                      topic in "[a-z/]{0,20}", ts in any::<i64>(), eph in any::<bool>()) {
            let m = WakuMessage { payload, content_topic: topic, timestamp: Some(ts), ephemeral: Some(eph), ..Default::default() };
            prop_assert_eq!(WakuMessage::decode(&m.encode(), DEFAULT_MAX_MESSAGE_BYTES).unwrap(), m);
        }
    }
}
