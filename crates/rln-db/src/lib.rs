//! The persistent state of an rln-node, in RocksDB. This is the only crate that links RocksDB.
//!
//! - [`RlnDb`] ([`db`]): opening, the settings a data directory is bound to (schema, chain id,
//!   contract, tree depth), and the in-memory root window and checkpoint.
//! - [`tree`]: the membership tree as an `rln_core::NodeStore` over column families, with
//!   batch updates that hash each touched node once.
//! - [`sync`]: one write batch per block (leaves, root, checkpoint, undo record) and
//!   rollback for reorganisations.
//! - [`nullifiers`]: the nullifier log with atomic insert-if-absent and pruning.
//! - [`ledger`]: the message-id ledger beside the keystore: ids a local publisher used,
//!   durable before they are handed out and out of reach of a database wipe.
//! - [`publisher`]: the counter older versions kept in the database, taken over once.
//! - [`secret_file`]: atomic, owner-only files (keystores, identities, the node key).
//! - [`evidence`]: spam evidence (both shares, the recovered secret, the slash status).
//! - [`archive`]: the message archive behind the Store protocol (queries, cursors,
//!   retention).
//! - [`backend`]: [`MessageArchive`], the archive as the Store sees it, over RocksDB or
//!   [`postgres`] (a PostgreSQL server shared by several store nodes).
//!
//! Column families: `meta`, `tree_nodes`, `leaves`, `roots`, `nullifiers`, `sync`,
//! `publisher`, `evidence` (see [`COLUMN_FAMILIES`]), and the archive's `archive_messages`,
//! `archive_time`, `archive_hash`, `archive_topics` ([`ARCHIVE_COLUMN_FAMILIES`]).

pub mod archive;
pub mod backend;
pub mod db;
pub mod error;
pub mod evidence;
pub mod ledger;
pub mod nullifiers;
pub mod postgres;
pub mod publisher;
mod schema;
pub mod secret_file;
pub mod sync;
pub mod tree;

pub use archive::{
    ArchivePage, ArchiveQuery, ArchiveStats, ArchivedMessage, Inserted, Retention, Selection,
};
pub use backend::MessageArchive;
pub use db::{DbConfig, RlnDb, RootStatus};
pub use error::DbError;
pub use evidence::{EvidenceCursor, SpamEvidence};
pub use ledger::{Adoption, Allocation, MessageIdLedger};
pub use nullifiers::{NullifierRecord, NullifierVerdict};
pub use postgres::PgArchive;
pub use schema::{ARCHIVE_COLUMN_FAMILIES, COLUMN_FAMILIES, SCHEMA_VERSION};
pub use sync::{BlockUpdate, Checkpoint, ConsistencyReport};
pub use tree::DbNodes;
