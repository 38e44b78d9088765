//! The protobuf messages as prost sees them: every field optional, so that what was on the
//! wire (or not) is known before the domain types are built from it. Field numbers are Waku's.

/// `WakuMessage` (waku/message/v1). `content_topic` is read as bytes and `version` as a
/// 64-bit varint, so that bad UTF-8 or an out-of-range version is refused with the field's
/// name instead of prost's generic message (or, for the version, a silent truncation).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct WakuMessageProto {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub(crate) payload: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub(crate) content_topic: Option<Vec<u8>>,
    #[prost(uint64, optional, tag = "3")]
    pub(crate) version: Option<u64>,
    #[prost(sint64, optional, tag = "10")]
    pub(crate) timestamp: Option<i64>,
    #[prost(bytes = "vec", optional, tag = "11")]
    pub(crate) meta: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "21")]
    pub(crate) rate_limit_proof: Option<Vec<u8>>,
    #[prost(bool, optional, tag = "31")]
    pub(crate) ephemeral: Option<bool>,
}

/// `RateLimitProof` (waku/rln/v1): seven byte fields, each required by rln-node.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RateLimitProofProto {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub(crate) proof: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub(crate) merkle_root: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub(crate) epoch: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub(crate) share_x: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "5")]
    pub(crate) share_y: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "6")]
    pub(crate) nullifier: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "7")]
    pub(crate) rln_identifier: Option<Vec<u8>>,
}
