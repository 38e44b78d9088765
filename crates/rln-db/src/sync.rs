//! Block-by-block state changes from chain sync: each block's leaf changes, the root it
//! produced, the checkpoint and the undo record go to disk in one write batch, so a crash
//! never leaves the tree ahead of or behind the checkpoint. Undo records let a
//! reorganisation roll the tree back to a common ancestor. A block that erases a member
//! revokes every earlier root of the window (they all still contain the member); the relay
//! accepts a revoked root only for messages stamped shortly after the revocation. The
//! revocation is stored with the block (so a restart remembers it), and rolling the block
//! back puts the revoked roots back in the window.

use std::collections::BTreeMap;

use rln_core::{Fr, MerkleTree, RootEntry, RootWindow};
use rocksdb::{IteratorMode, WriteBatch};

use crate::db::{Cached, Revoked, RlnDb};
use crate::error::{rocks, DbError};
use crate::schema::*;

/// The last block whose events are in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: [u8; 32],
}

/// The membership changes of one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockUpdate {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: [u8; 32],
    /// Leaves set by the block's events, in log order (an erasure sets zero).
    pub leaves: Vec<(u64, Fr)>,
}

/// What a restart finds: the tree, the window and the checkpoint agree with each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyReport {
    /// The checkpoint, if any block was applied.
    pub checkpoint: Option<Checkpoint>,
    /// The stored root.
    pub root: Fr,
    /// Leaves stored.
    pub leaves: usize,
}

/// `at_ms (8) ‖ (root (32) ‖ block (8))*`, the roots the erasure in `by_block` revoked.
fn decode_revocation(by_block: u64, value: &[u8]) -> Result<Vec<Revoked>, DbError> {
    if value.len() < 8 || !(value.len() - 8).is_multiple_of(40) {
        return Err(DbError::Corrupt(format!(
            "revocation record of block {by_block}"
        )));
    }
    let at_ms = decode_u64(&value[..8], "revocation time")?;
    value[8..]
        .chunks_exact(40)
        .map(|c| {
            Ok(Revoked {
                entry: RootEntry {
                    root: decode_fr(&c[..32], "revoked root")?,
                    block: decode_u64(&c[32..], "revoked root block")?,
                },
                at_ms,
                by_block,
            })
        })
        .collect()
}

impl RlnDb {
    pub(crate) fn read_checkpoint(&self) -> Result<Option<Checkpoint>, DbError> {
        let value = self
            .db
            .get_cf(self.cf(CF_SYNC)?, SYNC_CHECKPOINT)
            .map_err(rocks("reading the sync checkpoint"))?;
        value
            .map(|v| {
                if v.len() != 40 {
                    return Err(DbError::Corrupt("sync checkpoint is not 40 bytes".into()));
                }
                Ok(Checkpoint {
                    number: decode_u64(&v[..8], "checkpoint block")?,
                    hash: decode_hash(&v[8..], "checkpoint hash")?,
                })
            })
            .transpose()
    }

    /// The last applied block.
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        self.read_cached().checkpoint
    }

    /// The stored hash of a recent block (kept for the reorg depth).
    pub fn block_hash(&self, number: u64) -> Result<Option<[u8; 32]>, DbError> {
        self.db
            .get_cf(self.cf(CF_SYNC)?, sync_hash_key(number))
            .map_err(rocks("reading a block hash"))?
            .map(|v| decode_hash(&v, "block hash"))
            .transpose()
    }

    /// Applies one block: its leaf changes, its root in the window, its hash, its undo
    /// record and the checkpoint, all in one write batch. Returns the root after the block.
    pub fn apply_block(&self, block: &BlockUpdate) -> Result<Fr, DbError> {
        let _writer = self.lock_writer();
        let mut cached = self.read_cached().clone();
        if let Some(last) = cached.checkpoint {
            if block.number <= last.number {
                return Err(DbError::OutOfOrder {
                    last: last.number,
                    got: block.number,
                });
            }
        }
        let tree = self.tree()?;
        let mut batch = WriteBatch::default();
        let sync = self.cf(CF_SYNC)?;

        // Undo record: the next index and each touched leaf's value before this block.
        let mut undo = tree.next_index()?.to_le_bytes().to_vec();
        let mut seen = std::collections::BTreeSet::new();
        let mut erases = false;
        for (index, leaf) in &block.leaves {
            let before = tree.leaf(*index)?;
            let zero = Fr::from(0u64);
            erases |= *leaf == zero && before != zero;
            if seen.insert(*index) {
                undo.extend_from_slice(&index.to_le_bytes());
                undo.extend_from_slice(&rln_core::fr_to_le_bytes(&before));
            }
        }
        let root = if block.leaves.is_empty() {
            tree.root()?
        } else {
            let changes = tree.changes_for(&block.leaves)?;
            let delta = self.erased_delta(&block.leaves, changes.next_index)?;
            cached.erased = cached.erased.saturating_add_signed(delta);
            batch.put_cf(sync, SYNC_ERASED, cached.erased.to_le_bytes());
            self.stage_tree_changes(&mut batch, &changes)?;
            match changes.nodes.last() {
                Some((_, _, root)) => *root,
                None => tree.root()?,
            }
        };
        batch.put_cf(sync, sync_undo_key(block.number), undo);
        batch.put_cf(sync, sync_hash_key(block.number), block.hash);
        let mut checkpoint = block.number.to_le_bytes().to_vec();
        checkpoint.extend_from_slice(&block.hash);
        batch.put_cf(sync, SYNC_CHECKPOINT, checkpoint);
        // History older than the reorg depth can no longer be needed.
        if let Some(cutoff) = block.number.checked_sub(self.config.reorg_depth) {
            batch.delete_range_cf(sync, sync_hash_key(0), sync_hash_key(cutoff));
            batch.delete_range_cf(sync, sync_undo_key(0), sync_undo_key(cutoff));
            batch.delete_range_cf(sync, sync_revoked_key(0), sync_revoked_key(cutoff));
        }
        if erases {
            // Every earlier root still contains the erased member: revoke them all, so a
            // slashed member cannot go on proving against an old root.
            let roots = self.cf(CF_ROOTS)?;
            for seq in cached.window_seqs.drain(..) {
                batch.delete_cf(roots, u64_key(seq));
            }
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let capacity = cached.window.capacity();
            let mut record = now_ms.to_le_bytes().to_vec();
            for entry in cached.window.entries() {
                record.extend_from_slice(&rln_core::fr_to_le_bytes(&entry.root));
                record.extend_from_slice(&entry.block.to_le_bytes());
                cached.revoked.push_back(Revoked {
                    entry: *entry,
                    at_ms: now_ms,
                    by_block: block.number,
                });
            }
            batch.put_cf(sync, sync_revoked_key(block.number), record);
            while cached.revoked.len() > capacity {
                cached.revoked.pop_front();
            }
            cached.window = RootWindow::new(capacity);
        }
        self.stage_root(
            &mut batch,
            &mut cached,
            RootEntry {
                root,
                block: block.number,
            },
        )?;
        cached.checkpoint = Some(Checkpoint {
            number: block.number,
            hash: block.hash,
        });
        self.db
            .write_opt(batch, &self.write_options())
            .map_err(rocks("writing a block"))?;
        *self.write_cached() = cached;
        Ok(root)
    }

    fn stage_root(
        &self,
        batch: &mut WriteBatch,
        cached: &mut Cached,
        entry: RootEntry,
    ) -> Result<(), DbError> {
        if cached.window.latest().map(|e| e.root) == Some(entry.root) {
            return Ok(());
        }
        let roots = self.cf(CF_ROOTS)?;
        let seq = cached.next_root_seq;
        let mut value = rln_core::fr_to_le_bytes(&entry.root).to_vec();
        value.extend_from_slice(&entry.block.to_le_bytes());
        batch.put_cf(roots, u64_key(seq), value);
        cached.next_root_seq += 1;
        cached.window_seqs.push_back(seq);
        if cached.window.push(entry).is_some() {
            if let Some(evicted) = cached.window_seqs.pop_front() {
                batch.delete_range_cf(roots, u64_key(0), u64_key(evicted + 1));
            }
        }
        Ok(())
    }

    /// Rolls the state back to just after block `target`: restores the leaves the later
    /// blocks changed, drops their roots, hashes and undo records, and moves the checkpoint.
    pub fn rollback_to(&self, target: u64) -> Result<(), DbError> {
        let _writer = self.lock_writer();
        let mut cached = self.read_cached().clone();
        let Some(last) = cached.checkpoint else {
            return Ok(());
        };
        if target >= last.number {
            return Ok(());
        }
        let sync = self.cf(CF_SYNC)?;
        let target_hash = self
            .block_hash(target)?
            .ok_or_else(|| DbError::ReorgTooDeep {
                target,
                oldest: self.oldest_undo().unwrap_or(last.number),
            })?;
        // Blocks without membership events may have no record; those that have one are read
        // newest first, so the oldest record's values are the ones restored.
        let mut records = Vec::new();
        let from = sync_undo_key(target + 1);
        for item in self
            .db
            .iterator_cf(sync, IteratorMode::From(&from, rocksdb::Direction::Forward))
        {
            let (key, value) = item.map_err(rocks("reading undo records"))?;
            if key.len() != 9 || key[0] != b'u' {
                break;
            }
            records.push((decode_u64_be(&key[1..], "undo key")?, value));
        }
        let mut restore: BTreeMap<u64, Fr> = BTreeMap::new();
        let mut next_index = None;
        for (number, record) in records.iter().rev() {
            if record.len() < 8 || (record.len() - 8) % 40 != 0 {
                return Err(DbError::Corrupt(format!("undo record of block {number}")));
            }
            next_index = Some(decode_u64(&record[..8], "undo next index")?);
            for chunk in record[8..].chunks_exact(40) {
                let index = decode_u64(&chunk[..8], "undo leaf index")?;
                restore.insert(index, decode_fr(&chunk[8..], "undo leaf")?);
            }
        }
        let tree = self.tree()?;
        let mut batch = WriteBatch::default();
        let leaves: Vec<(u64, Fr)> = restore.into_iter().collect();
        let mut changes = tree.changes_for(&leaves)?;
        if let Some(next) = next_index {
            changes.next_index = next;
        }
        let delta = self.erased_delta(&leaves, changes.next_index)?;
        cached.erased = cached.erased.saturating_add_signed(delta);
        batch.put_cf(sync, SYNC_ERASED, cached.erased.to_le_bytes());
        let restored_root = match changes.nodes.last() {
            Some((_, _, root)) if !leaves.is_empty() => *root,
            _ => tree.root()?,
        };
        self.stage_tree_changes(&mut batch, &changes)?;
        // Leaves past the restored next index were never set before: remove them so the
        // stored leaves stay exactly the set the chain had.
        let leaves_cf = self.cf(CF_LEAVES)?;
        batch.delete_range_cf(leaves_cf, u64_key(changes.next_index), u64_key(u64::MAX));
        batch.delete_range_cf(sync, sync_hash_key(target + 1), sync_hash_key(u64::MAX));
        batch.delete_range_cf(sync, sync_undo_key(target + 1), sync_undo_key(u64::MAX));
        let mut checkpoint = target.to_le_bytes().to_vec();
        checkpoint.extend_from_slice(&target_hash);
        batch.put_cf(sync, SYNC_CHECKPOINT, checkpoint);

        let roots = self.cf(CF_ROOTS)?;
        let dropped = cached.window.rollback_after(target);
        for _ in 0..dropped {
            if let Some(seq) = cached.window_seqs.pop_back() {
                batch.delete_cf(roots, u64_key(seq));
            }
        }
        // An erasure rolled back no longer revokes anything: the window it cleared (as of
        // `target`) comes back, and its revocations go.
        let undone = self.revocations_from(target + 1)?;
        batch.delete_range_cf(
            sync,
            sync_revoked_key(target + 1),
            sync_revoked_key(u64::MAX),
        );
        cached.revoked.retain(|r| r.by_block <= target);
        if let Some(first) = undone.first() {
            for entry in first.iter().filter(|e| e.entry.block <= target) {
                if !cached.window.contains(&entry.entry.root) {
                    self.stage_root(&mut batch, &mut cached, entry.entry)?;
                }
            }
        }
        // If more roots followed `target` than the window holds, the restored root was
        // evicted; it is the root as of `target` again.
        self.stage_root(
            &mut batch,
            &mut cached,
            RootEntry {
                root: restored_root,
                block: target,
            },
        )?;
        cached.checkpoint = Some(Checkpoint {
            number: target,
            hash: target_hash,
        });
        self.db
            .write_opt(batch, &self.write_options())
            .map_err(rocks("rolling back blocks"))?;
        *self.write_cached() = cached;
        Ok(())
    }

    /// The revocation records of blocks from `first` on, oldest erasure first.
    fn revocations_from(&self, first: u64) -> Result<Vec<Vec<Revoked>>, DbError> {
        let sync = self.cf(CF_SYNC)?;
        let from = sync_revoked_key(first);
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(sync, IteratorMode::From(&from, rocksdb::Direction::Forward))
        {
            let (key, value) = item.map_err(rocks("reading revoked roots"))?;
            if key.len() != 9 || key[0] != b'r' {
                break;
            }
            let by_block = decode_u64_be(&key[1..], "revocation key")?;
            out.push(decode_revocation(by_block, &value)?);
        }
        Ok(out)
    }

    /// The revoked roots still in the reorg history, newest last, at most `capacity`.
    pub(crate) fn read_revocations(
        &self,
        capacity: usize,
    ) -> Result<std::collections::VecDeque<Revoked>, DbError> {
        let mut all: std::collections::VecDeque<Revoked> =
            self.revocations_from(0)?.into_iter().flatten().collect();
        while all.len() > capacity {
            all.pop_front();
        }
        Ok(all)
    }

    /// Applied blocks still in the reorg history, newest first.
    pub fn recent_blocks(&self) -> Result<Vec<Checkpoint>, DbError> {
        let sync = self.cf(CF_SYNC)?;
        let mut out = Vec::new();
        let from = sync_hash_key(u64::MAX);
        for item in self
            .db
            .iterator_cf(sync, IteratorMode::From(&from, rocksdb::Direction::Reverse))
        {
            let (key, value) = item.map_err(rocks("reading recent block hashes"))?;
            if key.len() != 9 || key[0] != b'h' {
                break;
            }
            out.push(Checkpoint {
                number: decode_u64_be(&key[1..], "block hash key")?,
                hash: decode_hash(&value, "block hash")?,
            });
        }
        Ok(out)
    }

    fn oldest_undo(&self) -> Option<u64> {
        let sync = self.cf(CF_SYNC).ok()?;
        let mut iter = self.db.iterator_cf(
            sync,
            IteratorMode::From(&sync_undo_key(0), rocksdb::Direction::Forward),
        );
        let (key, _) = iter.next()?.ok()?;
        (key.len() == 9 && key[0] == b'u').then(|| decode_u64_be(&key[1..], "undo key").ok())?
    }

    /// Recomputes the root from the stored leaves and checks it against the stored tree, the
    /// root window and the checkpoint. Used after a crash and by tests; reads every leaf.
    pub fn check_consistency(&self) -> Result<ConsistencyReport, DbError> {
        let leaves = self.leaves()?;
        let mut fresh = MerkleTree::in_memory(self.config.depth)?;
        fresh.set_leaves(&leaves)?;
        let root = self.root()?;
        if fresh.root()? != root {
            return Err(DbError::Corrupt(
                "the stored tree root differs from the root of the stored leaves".into(),
            ));
        }
        let cached = self.read_cached();
        if let Some(latest) = cached.window.latest() {
            if latest.root != root {
                return Err(DbError::Corrupt(
                    "the newest root in the window is not the tree root".into(),
                ));
            }
            match cached.checkpoint {
                Some(cp) if cp.number >= latest.block => {}
                _ => {
                    return Err(DbError::Corrupt(
                        "the root window is ahead of the sync checkpoint".into(),
                    ))
                }
            }
        }
        Ok(ConsistencyReport {
            checkpoint: cached.checkpoint,
            root,
            leaves: leaves.len(),
        })
    }
}
