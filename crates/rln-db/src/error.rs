//! Errors of the node's RocksDB state.

use std::path::PathBuf;

use rln_core::TreeError;
use thiserror::Error;

/// What can go wrong opening, reading or writing the node's state.
#[derive(Debug, Error)]
pub enum DbError {
    /// RocksDB itself failed (I/O error, corruption detected by checksums, lock held by
    /// another process).
    #[error("RocksDB failed while {context}: {source}")]
    Rocks {
        /// What the node was doing.
        context: &'static str,
        /// RocksDB's error.
        source: rocksdb::Error,
    },
    /// The PostgreSQL archive failed (server unreachable, connection lost, a query refused).
    #[error("PostgreSQL archive at {server}: {context} failed: {reason}")]
    Postgres {
        /// The server, without credentials.
        server: String,
        /// What the node was doing.
        context: &'static str,
        /// The client's error.
        reason: String,
    },
    /// The data directory belongs to another chain, contract or tree depth.
    #[error(
        "data directory {path} was made for {what} {stored}, but this node is configured for \
         {configured}; use a new data directory or wipe this one"
    )]
    Mismatch {
        /// The data directory.
        path: PathBuf,
        /// Which setting differs.
        what: &'static str,
        /// What the directory holds.
        stored: String,
        /// What the node was given.
        configured: String,
    },
    /// The directory was written by another version of rln-node's storage layout.
    #[error(
        "data directory {path} has storage schema {found}; this rln-node reads schema \
         {supported}; use a new data directory or wipe this one"
    )]
    SchemaVersion {
        /// The data directory.
        path: PathBuf,
        /// Schema on disk.
        found: u32,
        /// Schema this build reads.
        supported: u32,
    },
    /// The directory holds a database without one of the node's column families.
    #[error(
        "data directory {path} is not an rln-node database or is damaged: column family \
         `{name}` is missing; use a new data directory or wipe this one"
    )]
    MissingColumnFamily {
        /// The data directory.
        path: PathBuf,
        /// The missing column family.
        name: &'static str,
    },
    /// A file outside RocksDB (the message-id ledger) could not be read or written.
    #[error("{what} {path}: {source}")]
    File {
        /// What the node was doing.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A stored value could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A store cursor names no stored message (never stored, or pruned since).
    #[error("the cursor names no stored message (unknown, or pruned since)")]
    UnknownCursor,
    /// The membership tree refused an operation.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// Blocks must be applied in increasing order.
    #[error("block {got} cannot be applied after block {last}; blocks are applied in order")]
    OutOfOrder {
        /// The last applied block.
        last: u64,
        /// The block offered.
        got: u64,
    },
    /// A reorganisation reaches further back than the undo history kept.
    #[error(
        "cannot roll back to block {target}: undo history starts at block {oldest}; \
         wipe the state and re-sync"
    )]
    ReorgTooDeep {
        /// The block to roll back to.
        target: u64,
        /// The oldest block that can be restored.
        oldest: u64,
    },
}

pub(crate) fn rocks(context: &'static str) -> impl FnOnce(rocksdb::Error) -> DbError {
    move |source| DbError::Rocks { context, source }
}
