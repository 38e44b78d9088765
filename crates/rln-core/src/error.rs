//! Errors of the pure RLN core.

use thiserror::Error;

/// A 32-byte value that is not the canonical encoding of a BN254 scalar field element.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FieldError {
    /// The byte string has the wrong length; field elements are exactly 32 bytes.
    #[error("a field element is 32 bytes, got {0}")]
    WrongLength(usize),
    /// The value is at least the field modulus; it is refused rather than reduced so that one
    /// element never has two encodings.
    #[error("value is not below the BN254 scalar field modulus (non-canonical encoding)")]
    NonCanonical,
    /// Text that is not `0x` followed by hex digits.
    #[error("a field element in text is 0x and 64 hex digits")]
    NotHex,
}

/// An RLN protocol rule was broken by the caller's inputs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RlnError {
    /// Message ids are 0-based and must stay below the member's limit.
    #[error("message id {message_id} is not below the user message limit {limit}")]
    MessageIdOutOfRange {
        /// The offending id.
        message_id: u64,
        /// The member's limit.
        limit: u64,
    },
    /// The circuit range-checks the limit in 16 bits, and a limit of zero allows no message.
    #[error("user message limit {0} is outside 1..=65535")]
    LimitOutOfRange(u64),
    /// Two shares on the same line with the same x carry no information about the secret.
    #[error("the two shares have the same x coordinate; the secret cannot be recovered")]
    SameX,
}

/// Errors of the Merkle membership tree.
#[derive(Debug, Error)]
pub enum TreeError {
    /// The tree has `2^depth` leaves, indexed from zero.
    #[error("leaf index {index} is out of range for a tree of capacity {capacity}")]
    IndexOutOfRange {
        /// The requested index.
        index: u64,
        /// `2^depth`.
        capacity: u64,
    },
    /// The tree is full.
    #[error("the membership tree is full ({capacity} leaves)")]
    Full {
        /// `2^depth`.
        capacity: u64,
    },
    /// Depth 0 or above 32 is not supported.
    #[error("unsupported tree depth {0} (1..=32)")]
    UnsupportedDepth(usize),
    /// A Merkle path has the wrong number of levels for this tree.
    #[error("a Merkle path for depth {expected} has {expected} levels, got {got}")]
    PathLength {
        /// Depth of the tree.
        expected: usize,
        /// Levels in the supplied path.
        got: usize,
    },
    /// The backing node store failed.
    #[error("node store failure: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}
