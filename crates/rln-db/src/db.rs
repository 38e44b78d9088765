//! Opening the database: column families, settings checks, and the in-memory view of the
//! small state every operation needs (root window, checkpoint, next leaf index).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use rln_core::{RootEntry, RootWindow, DEFAULT_ROOT_WINDOW, TREE_DEPTH};
use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, IteratorMode, Options, WriteOptions, DB};

use crate::error::{rocks, DbError};
use crate::schema::*;
use crate::sync::Checkpoint;

/// What a data directory must match, and how much history to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbConfig {
    /// Depth of the membership tree.
    pub depth: usize,
    /// Chain the memberships come from.
    pub chain_id: u64,
    /// Address of the membership contract.
    pub contract: [u8; 20],
    /// Roots kept in the acceptable root window.
    pub root_window: usize,
    /// Blocks of undo history kept for reorganisations.
    pub reorg_depth: u64,
    /// fsync every block's write batch (survives power loss, not only process crashes).
    pub sync_writes: bool,
}

impl Default for DbConfig {
    fn default() -> Self {
        Self {
            depth: TREE_DEPTH,
            chain_id: 31337,
            contract: [0u8; 20],
            root_window: DEFAULT_ROOT_WINDOW,
            reorg_depth: 64,
            sync_writes: true,
        }
    }
}

/// State read on every validation, kept in memory and updated after each committed batch.
#[derive(Debug, Clone)]
pub(crate) struct Cached {
    pub(crate) window: RootWindow,
    /// Sequence number of each window entry in `CF_ROOTS`, oldest first.
    pub(crate) window_seqs: std::collections::VecDeque<u64>,
    pub(crate) next_root_seq: u64,
    pub(crate) checkpoint: Option<Checkpoint>,
    /// Roots erasures revoked, newest last (persisted with the block that revoked them).
    pub(crate) revoked: std::collections::VecDeque<Revoked>,
    /// Leaves below the next index that are zero: the members erased so far.
    pub(crate) erased: u64,
}

/// A root an erasure revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Revoked {
    /// The root and the block it was the root of.
    pub(crate) entry: RootEntry,
    /// When this node applied the erasure (Unix milliseconds).
    pub(crate) at_ms: u64,
    /// The block of the erasure.
    pub(crate) by_block: u64,
}

/// Where a root stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootStatus {
    /// In the acceptable window.
    InWindow,
    /// Was in the window until an erasure revoked it at this time (Unix milliseconds).
    Revoked {
        /// When the node applied the erasure.
        at_ms: u64,
    },
    /// Never seen, or revoked longer ago than the reorg history reaches.
    Unknown,
}

/// The node's persistent state.
pub struct RlnDb {
    pub(crate) db: DB,
    pub(crate) path: PathBuf,
    pub(crate) config: DbConfig,
    pub(crate) cached: RwLock<Cached>,
    /// Serialises tree and sync writes: each computes its batch from the state it reads.
    pub(crate) writer: Mutex<()>,
    pub(crate) nullifier_locks: Vec<Mutex<()>>,
    /// Epochs below this were pruned from the nullifier log (write-locked while pruning).
    pub(crate) nullifier_floor: RwLock<u64>,
    /// The archive's counters and topic names; serialises its writers.
    pub(crate) archive: crate::archive::ArchiveLock,
}

/// Options of an archive column family: LZ4 blocks, and a Bloom filter where lookups are
/// point reads of keys that are often absent (the hash index, asked for every insert).
fn archive_options(name: &str) -> Options {
    let mut options = Options::default();
    options.set_compression_type(rocksdb::DBCompressionType::Lz4);
    if name == CF_ARCHIVE_HASH {
        let mut table = rocksdb::BlockBasedOptions::default();
        table.set_bloom_filter(10.0, false);
        options.set_block_based_table_factory(&table);
    }
    options
}

impl std::fmt::Debug for RlnDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RlnDb")
            .field("path", &self.path)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn hex20(bytes: &[u8]) -> String {
    let mut s = String::from("0x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

impl RlnDb {
    /// Opens (or creates) the database in `path` and checks that it belongs to `config`'s
    /// chain, contract and depth.
    pub fn open(path: impl AsRef<Path>, config: DbConfig) -> Result<Self, DbError> {
        let path = path.as_ref().to_path_buf();
        let exists = path.join("CURRENT").exists();
        let mut options = Options::default();
        options.create_if_missing(!exists);
        // Missing column families are created only after the check below: in an existing
        // directory that means only the archive's (added later).
        options.create_missing_column_families(true);
        options.set_paranoid_checks(true);
        if exists {
            let present = DB::list_cf(&options, &path).map_err(rocks("listing column families"))?;
            if let Some(name) = COLUMN_FAMILIES
                .iter()
                .find(|name| !present.iter().any(|p| p == *name))
            {
                return Err(DbError::MissingColumnFamily { path, name });
            }
        }
        let descriptors = COLUMN_FAMILIES
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, Options::default()))
            .chain(
                ARCHIVE_COLUMN_FAMILIES
                    .iter()
                    .map(|name| ColumnFamilyDescriptor::new(*name, archive_options(name))),
            );
        let db = DB::open_cf_descriptors(&options, &path, descriptors)
            .map_err(rocks("opening the database"))?;
        let nullifier_locks = (0..64).map(|_| Mutex::new(())).collect();
        let mut this = Self {
            db,
            path,
            config,
            cached: RwLock::new(Cached {
                window: RootWindow::new(1),
                window_seqs: Default::default(),
                next_root_seq: 0,
                checkpoint: None,
                revoked: Default::default(),
                erased: 0,
            }),
            writer: Mutex::new(()),
            nullifier_locks,
            nullifier_floor: RwLock::new(0),
            archive: Default::default(),
        };
        if exists {
            this.check_meta()?;
        } else {
            this.write_meta()?;
        }
        let cached = this.load_cached()?;
        this.cached = RwLock::new(cached);
        Ok(this)
    }

    /// Deletes the data directory (if any) and creates a fresh database.
    pub fn reset(path: impl AsRef<Path>, config: DbConfig) -> Result<Self, DbError> {
        let path = path.as_ref();
        if path.join("CURRENT").exists() {
            DB::destroy(&Options::default(), path).map_err(rocks("wiping the data directory"))?;
        }
        Self::open(path, config)
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The settings the database was opened with.
    pub fn config(&self) -> &DbConfig {
        &self.config
    }

    pub(crate) fn cf(&self, name: &'static str) -> Result<&ColumnFamily, DbError> {
        self.db.cf_handle(name).ok_or(DbError::MissingColumnFamily {
            path: self.path.clone(),
            name,
        })
    }

    pub(crate) fn write_options(&self) -> WriteOptions {
        let mut options = WriteOptions::default();
        options.set_sync(self.config.sync_writes);
        options
    }

    fn write_meta(&self) -> Result<(), DbError> {
        let meta = self.cf(CF_META)?;
        let mut batch = rocksdb::WriteBatch::default();
        batch.put_cf(meta, META_SCHEMA, SCHEMA_VERSION.to_le_bytes());
        batch.put_cf(meta, META_CHAIN_ID, self.config.chain_id.to_le_bytes());
        batch.put_cf(meta, META_CONTRACT, self.config.contract);
        batch.put_cf(meta, META_DEPTH, (self.config.depth as u64).to_le_bytes());
        batch.put_cf(meta, META_NEXT_INDEX, 0u64.to_le_bytes());
        self.db
            .write_opt(batch, &self.write_options())
            .map_err(rocks("writing the database settings"))
    }

    fn meta(&self, key: &[u8]) -> Result<Vec<u8>, DbError> {
        self.db
            .get_cf(self.cf(CF_META)?, key)
            .map_err(rocks("reading the database settings"))?
            .ok_or_else(|| {
                DbError::Corrupt(format!(
                    "setting `{}` is missing from {}",
                    String::from_utf8_lossy(key),
                    self.path.display()
                ))
            })
    }

    fn check_meta(&self) -> Result<(), DbError> {
        let schema = self.meta(META_SCHEMA)?;
        let found = match <[u8; 4]>::try_from(schema.as_slice()) {
            Ok(bytes) => u32::from_le_bytes(bytes),
            Err(_) => return Err(DbError::Corrupt("schema version is not 4 bytes".into())),
        };
        if found != SCHEMA_VERSION {
            return Err(DbError::SchemaVersion {
                path: self.path.clone(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        let mismatch = |what, stored: String, configured: String| DbError::Mismatch {
            path: self.path.clone(),
            what,
            stored,
            configured,
        };
        let chain_id = decode_u64(&self.meta(META_CHAIN_ID)?, "chain id")?;
        if chain_id != self.config.chain_id {
            return Err(mismatch(
                "chain id",
                chain_id.to_string(),
                self.config.chain_id.to_string(),
            ));
        }
        let contract = self.meta(META_CONTRACT)?;
        if contract != self.config.contract {
            return Err(mismatch(
                "contract",
                hex20(&contract),
                hex20(&self.config.contract),
            ));
        }
        let depth = decode_u64(&self.meta(META_DEPTH)?, "tree depth")?;
        if depth != self.config.depth as u64 {
            return Err(mismatch(
                "tree depth",
                depth.to_string(),
                self.config.depth.to_string(),
            ));
        }
        Ok(())
    }

    fn load_cached(&self) -> Result<Cached, DbError> {
        let roots = self.cf(CF_ROOTS)?;
        let capacity = self.config.root_window;
        let mut newest_first = Vec::with_capacity(capacity);
        for item in self.db.iterator_cf(roots, IteratorMode::End).take(capacity) {
            let (key, value) = item.map_err(rocks("reading the root window"))?;
            let seq = decode_u64_be(&key, "root sequence")?;
            if value.len() != 40 {
                return Err(DbError::Corrupt("root window entry is not 40 bytes".into()));
            }
            let entry = RootEntry {
                root: decode_fr(&value[..32], "window root")?,
                block: decode_u64(&value[32..], "window block")?,
            };
            newest_first.push((seq, entry));
        }
        newest_first.reverse();
        let next_root_seq = newest_first.last().map_or(0, |(seq, _)| seq + 1);
        let window_seqs = newest_first.iter().map(|(seq, _)| *seq).collect();
        let window = RootWindow::from_entries(capacity, newest_first.into_iter().map(|(_, e)| e));
        let checkpoint = self.read_checkpoint()?;
        let revoked = self.read_revocations(capacity)?;
        let erased = self.read_erased()?;
        Ok(Cached {
            window,
            window_seqs,
            next_root_seq,
            checkpoint,
            revoked,
            erased,
        })
    }

    /// The acceptable roots, oldest first.
    pub fn root_window(&self) -> RootWindow {
        self.read_cached().window.clone()
    }

    /// Whether a proof made against `root` is acceptable now.
    pub fn is_root_acceptable(&self, root: &rln_core::Fr) -> bool {
        self.read_cached().window.contains(root)
    }

    /// Whether `root` is in the window, was revoked by an erasure (and when), or unknown.
    pub fn root_status(&self, root: &rln_core::Fr) -> RootStatus {
        let cached = self.read_cached();
        if cached.window.contains(root) {
            return RootStatus::InWindow;
        }
        match cached.revoked.iter().rev().find(|r| r.entry.root == *root) {
            Some(r) => RootStatus::Revoked { at_ms: r.at_ms },
            None => RootStatus::Unknown,
        }
    }

    pub(crate) fn read_cached(&self) -> std::sync::RwLockReadGuard<'_, Cached> {
        // The cache is replaced wholesale after a committed write, so a writer that panicked
        // left either the old or the new consistent value behind.
        self.cached
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn write_cached(&self) -> std::sync::RwLockWriteGuard<'_, Cached> {
        self.cached
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn lock_writer(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Flushes memtables to SST files (for tests and clean shutdown).
    pub fn flush(&self) -> Result<(), DbError> {
        for name in COLUMN_FAMILIES.iter().chain(&ARCHIVE_COLUMN_FAMILIES) {
            self.db
                .flush_cf(self.cf(name)?)
                .map_err(rocks("flushing to disk"))?;
        }
        Ok(())
    }
}
