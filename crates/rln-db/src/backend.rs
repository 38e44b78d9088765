//! [`MessageArchive`]: what the Store service, its writer, its pruning and resuming need from
//! an archive, so that the embedded RocksDB archive ([`crate::archive`], the default) and a
//! PostgreSQL server shared by a fleet of store nodes ([`crate::postgres`]) are
//! interchangeable. Both keep the same order (timestamp, then hash), the same exclusive hash
//! cursors, the same refusal of an unknown cursor and the same retention bounds.
//!
//! The methods block: call them from a blocking thread (`spawn_blocking`, the archive
//! writer's thread), never from an async task.

use crate::archive::Retention;
use crate::archive::{ArchivePage, ArchiveQuery, ArchiveStats, ArchivedMessage, Inserted};
use crate::db::RlnDb;
use crate::error::DbError;

/// A message archive.
pub trait MessageArchive: Send + Sync + std::fmt::Debug {
    /// Stores `messages`; a message whose hash is stored already is skipped (counted as a
    /// duplicate), whoever stored it.
    fn insert(&self, messages: &[ArchivedMessage]) -> Result<Inserted, DbError>;

    /// One page of `query`, in ascending (timestamp, hash) order. A cursor that names no
    /// stored message is [`DbError::UnknownCursor`].
    fn query(&self, query: &ArchiveQuery) -> Result<ArchivePage, DbError>;

    /// The stored messages among `hashes`, each once, in ascending (timestamp, hash) order.
    fn lookup(&self, hashes: &[[u8; 32]]) -> Result<Vec<ArchivedMessage>, DbError>;

    /// Whether a message with this hash is stored.
    fn contains(&self, hash: &[u8; 32]) -> Result<bool, DbError>;

    /// The timestamp of the newest stored message.
    fn newest(&self) -> Result<Option<i64>, DbError>;

    /// Deletes the oldest messages until every bound of `retention` holds at `now_ns`, at
    /// most `max_removed` of them; returns how many went (call again until 0).
    fn prune(
        &self,
        retention: &Retention,
        now_ns: i64,
        max_removed: usize,
    ) -> Result<usize, DbError>;

    /// Count, bytes and oldest timestamp.
    fn stats(&self) -> Result<ArchiveStats, DbError>;

    /// Count and bytes when the archive knows them without a scan (the embedded one keeps
    /// them in memory); `None` otherwise, and [`Self::stats`] tells.
    fn cached_counts(&self) -> Option<(u64, u64)>;

    /// Which archive this is, for logs (never with credentials).
    fn describe(&self) -> String;
}

impl MessageArchive for RlnDb {
    fn insert(&self, messages: &[ArchivedMessage]) -> Result<Inserted, DbError> {
        self.archive_insert(messages)
    }

    fn query(&self, query: &ArchiveQuery) -> Result<ArchivePage, DbError> {
        self.archive_query(query)
    }

    fn lookup(&self, hashes: &[[u8; 32]]) -> Result<Vec<ArchivedMessage>, DbError> {
        self.archive_lookup(hashes)
    }

    fn contains(&self, hash: &[u8; 32]) -> Result<bool, DbError> {
        self.archive_contains(hash)
    }

    fn newest(&self) -> Result<Option<i64>, DbError> {
        self.archive_newest()
    }

    fn prune(
        &self,
        retention: &Retention,
        now_ns: i64,
        max_removed: usize,
    ) -> Result<usize, DbError> {
        self.archive_prune(retention, now_ns, max_removed)
    }

    fn stats(&self) -> Result<ArchiveStats, DbError> {
        self.archive_stats()
    }

    fn cached_counts(&self) -> Option<(u64, u64)> {
        self.archive_counts().ok()
    }

    fn describe(&self) -> String {
        "RocksDB (embedded)".into()
    }
}
