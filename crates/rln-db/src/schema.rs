//! Column families, keys and value encodings. Integers in keys are big-endian so that
//! RocksDB's byte order is numeric order; field elements are 32 bytes little-endian, as on
//! the wire.

use rln_core::{fr_from_le_slice, fr_to_le_bytes, Fr};

use crate::error::DbError;

/// Version of this layout; bump it on any incompatible change.
pub const SCHEMA_VERSION: u32 = 2;

/// Settings and counters: schema version, chain id, contract, depth, next leaf index.
pub(crate) const CF_META: &str = "meta";
/// Internal tree nodes: `level (u8) ‖ index (u64)` → node.
pub(crate) const CF_NODES: &str = "tree_nodes";
/// Leaves: `index (u64)` → rate commitment (zero once erased).
pub(crate) const CF_LEAVES: &str = "leaves";
/// Root history: `sequence (u64)` → `root ‖ block (u64 LE)`.
pub(crate) const CF_ROOTS: &str = "roots";
/// Nullifier log: `epoch (u64) ‖ nullifier` → `x ‖ y ‖ message hash ‖ first seen (u64 LE)`.
pub(crate) const CF_NULLIFIERS: &str = "nullifiers";
/// Sync checkpoint, recent block hashes and per-block undo records.
pub(crate) const CF_SYNC: &str = "sync";

/// Message ids a local publisher used: `id commitment` → `epoch (u64 LE) ‖ used (u64 LE)`.
pub(crate) const CF_PUBLISHER: &str = "publisher";
/// Spam evidence: `epoch (u64) ‖ nullifier` → both shares, the recovered secret, the slash status.
pub(crate) const CF_EVIDENCE: &str = "evidence";

/// Archived messages: `topic (8) ‖ time (8) ‖ hash (32)` → record (see `archive`).
pub(crate) const CF_ARCHIVE_MESSAGES: &str = "archive_messages";
/// The archive's global order: `time (8) ‖ hash (32)` → `topic (8) ‖ size (4)`.
pub(crate) const CF_ARCHIVE_TIME: &str = "archive_time";
/// The archive by hash: `hash (32)` → `topic (8) ‖ time (8)`.
pub(crate) const CF_ARCHIVE_HASH: &str = "archive_hash";
/// Topic names: `topic (8)` → pubsub and content topic.
pub(crate) const CF_ARCHIVE_TOPICS: &str = "archive_topics";

/// The column families of the message archive. They were added after schema 2 was
/// released without changing what the others hold, so a data directory without them gets
/// them (empty) when it is opened.
pub const ARCHIVE_COLUMN_FAMILIES: [&str; 4] = [
    CF_ARCHIVE_MESSAGES,
    CF_ARCHIVE_TIME,
    CF_ARCHIVE_HASH,
    CF_ARCHIVE_TOPICS,
];

/// Every column family of the schema but the archive's; each must exist in an existing
/// data directory.
pub const COLUMN_FAMILIES: [&str; 8] = [
    CF_META,
    CF_NODES,
    CF_LEAVES,
    CF_ROOTS,
    CF_NULLIFIERS,
    CF_SYNC,
    CF_PUBLISHER,
    CF_EVIDENCE,
];

pub(crate) const META_SCHEMA: &[u8] = b"schema_version";
pub(crate) const META_CHAIN_ID: &[u8] = b"chain_id";
pub(crate) const META_CONTRACT: &[u8] = b"contract";
pub(crate) const META_DEPTH: &[u8] = b"tree_depth";
pub(crate) const META_NEXT_INDEX: &[u8] = b"next_index";
pub(crate) const META_ARCHIVE_COUNT: &[u8] = b"archive_count";
pub(crate) const META_ARCHIVE_BYTES: &[u8] = b"archive_bytes";

pub(crate) const SYNC_CHECKPOINT: &[u8] = b"checkpoint";
/// How many leaves below the next index are zero (erased), as a u64 LE.
pub(crate) const SYNC_ERASED: &[u8] = b"erased";
const SYNC_HASH: u8 = b'h';
const SYNC_UNDO: u8 = b'u';
const SYNC_REVOKED: u8 = b'r';

pub(crate) fn node_key(level: usize, index: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = level as u8;
    key[1..].copy_from_slice(&index.to_be_bytes());
    key
}

pub(crate) fn u64_key(value: u64) -> [u8; 8] {
    value.to_be_bytes()
}

pub(crate) fn sync_hash_key(block: u64) -> [u8; 9] {
    let mut key = [SYNC_HASH; 9];
    key[1..].copy_from_slice(&block.to_be_bytes());
    key
}

pub(crate) fn sync_undo_key(block: u64) -> [u8; 9] {
    let mut key = [SYNC_UNDO; 9];
    key[1..].copy_from_slice(&block.to_be_bytes());
    key
}

/// The roots an erasure in `block` revoked.
pub(crate) fn sync_revoked_key(block: u64) -> [u8; 9] {
    let mut key = [SYNC_REVOKED; 9];
    key[1..].copy_from_slice(&block.to_be_bytes());
    key
}

pub(crate) fn nullifier_key(epoch: u64, nullifier: &Fr) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..8].copy_from_slice(&epoch.to_be_bytes());
    key[8..].copy_from_slice(&fr_to_le_bytes(nullifier));
    key
}

pub(crate) fn decode_fr(bytes: &[u8], what: &str) -> Result<Fr, DbError> {
    fr_from_le_slice(bytes).map_err(|e| DbError::Corrupt(format!("{what}: {e}")))
}

pub(crate) fn decode_u64(bytes: &[u8], what: &str) -> Result<u64, DbError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| DbError::Corrupt(format!("{what}: expected 8 bytes, got {}", bytes.len())))?;
    Ok(u64::from_le_bytes(array))
}

pub(crate) fn decode_u64_be(bytes: &[u8], what: &str) -> Result<u64, DbError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| DbError::Corrupt(format!("{what}: expected 8 bytes, got {}", bytes.len())))?;
    Ok(u64::from_be_bytes(array))
}

pub(crate) fn decode_hash(bytes: &[u8], what: &str) -> Result<[u8; 32], DbError> {
    bytes
        .try_into()
        .map_err(|_| DbError::Corrupt(format!("{what}: expected 32 bytes, got {}", bytes.len())))
}
