//! Waku wire types, encoded with prost: the `WakuMessage` ([`message`]) and the
//! `RateLimitProof` it carries ([`proof`]), the RLN signal, the deterministic message hash and
//! the gossipsub message id; beside them the messages of the light protocols: [`metadata`],
//! [`lightpush`], [`filter`] and [`store`]; and the payload encryption of Waku applications ([`payload`]).

pub mod filter;
pub mod lightpush;
pub mod message;
pub mod metadata;
pub mod payload;
pub mod proof;
mod proto;
pub mod store;

use sha2::{Digest, Sha256};

pub use message::{SignalMode, WakuMessage, WireError};
pub use proof::{decode_proof, encode_proof, proof_digest, ProofDecodeError};

/// Largest message a node accepts or relays by default (150 KiB, as Waku).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 150 * 1024;

/// The default pubsub topic: cluster 1, shard 0.
pub const DEFAULT_PUBSUB_TOPIC: &str = "/waku/2/rs/1/0";

/// Largest `meta` field.
pub const MAX_META_BYTES: usize = 64;

/// The gossipsub message id: sha256 of the message data.
pub fn message_id(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}
