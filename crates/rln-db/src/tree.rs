//! The membership tree on RocksDB: a [`NodeStore`] over the `leaves`, `tree_nodes` and
//! `meta` column families, and the tree operations of [`RlnDb`].

use rln_core::{Fr, MerkleProof, MerkleTree, NodeStore, TreeChanges};
use rocksdb::WriteBatch;

use crate::db::RlnDb;
use crate::error::{rocks, DbError};
use crate::schema::*;

/// A view of the stored tree. Reads go to RocksDB (its block cache keeps hot nodes);
/// [`NodeStore::apply`] commits one write batch.
#[derive(Debug, Clone, Copy)]
pub struct DbNodes<'a> {
    db: &'a RlnDb,
}

impl<'a> DbNodes<'a> {
    pub(crate) fn new(db: &'a RlnDb) -> Self {
        Self { db }
    }
}

impl RlnDb {
    pub(crate) fn tree(&self) -> Result<MerkleTree<DbNodes<'_>>, DbError> {
        Ok(MerkleTree::new(DbNodes::new(self), self.config.depth)?)
    }

    /// Adds the writes of `changes` to `batch`.
    pub(crate) fn stage_tree_changes(
        &self,
        batch: &mut WriteBatch,
        changes: &TreeChanges,
    ) -> Result<(), DbError> {
        let (leaves, nodes) = (self.cf(CF_LEAVES)?, self.cf(CF_NODES)?);
        for (level, index, value) in &changes.nodes {
            let bytes = rln_core::fr_to_le_bytes(value);
            if *level == 0 {
                batch.put_cf(leaves, u64_key(*index), bytes);
            } else {
                batch.put_cf(nodes, node_key(*level, *index), bytes);
            }
        }
        batch.put_cf(
            self.cf(CF_META)?,
            META_NEXT_INDEX,
            changes.next_index.to_le_bytes(),
        );
        Ok(())
    }

    /// The current tree root.
    pub fn root(&self) -> Result<Fr, DbError> {
        Ok(self.tree()?.root()?)
    }

    /// The leaf at `index` (zero if never set or erased).
    pub fn leaf(&self, index: u64) -> Result<Fr, DbError> {
        Ok(self.tree()?.leaf(index)?)
    }

    /// The membership proof of the leaf at `index`.
    pub fn proof(&self, index: u64) -> Result<MerkleProof, DbError> {
        Ok(self.tree()?.proof(index)?)
    }

    /// One past the highest leaf index ever set.
    pub fn next_index(&self) -> Result<u64, DbError> {
        Ok(self.tree()?.next_index()?)
    }

    /// Every stored leaf in index order (erased ones as zero).
    pub fn leaves(&self) -> Result<Vec<(u64, Fr)>, DbError> {
        let cf = self.cf(CF_LEAVES)?;
        self.db
            .iterator_cf(cf, rocksdb::IteratorMode::Start)
            .map(|item| {
                let (key, value) = item.map_err(rocks("reading leaves"))?;
                Ok((
                    decode_u64_be(&key, "leaf index")?,
                    decode_fr(&value, "leaf")?,
                ))
            })
            .collect()
    }

    /// Sets leaves outside of block sync (tools, tests, benchmarks): one write batch, every
    /// touched node hashed once. Returns the new root.
    pub fn set_leaves(&self, leaves: &[(u64, Fr)]) -> Result<Fr, DbError> {
        let _writer = self.lock_writer();
        let mut tree = self.tree()?;
        let changes = tree.changes_for(leaves)?;
        let delta = self.erased_delta(leaves, changes.next_index)?;
        tree.apply(&changes)?;
        self.store_erased(delta)?;
        Ok(tree.root()?)
    }

    /// Appends leaves at the next free indices in one batch; returns the first index.
    pub fn append_leaves(&self, leaves: &[Fr]) -> Result<u64, DbError> {
        let _writer = self.lock_writer();
        let mut tree = self.tree()?;
        let start = tree.next_index()?;
        let indexed: Vec<(u64, Fr)> = (start..).zip(leaves.iter().copied()).collect();
        let delta = self.erased_delta(&indexed, start + leaves.len() as u64)?;
        tree.insert_many(leaves)?;
        self.store_erased(delta)?;
        Ok(start)
    }

    /// How many members are erased: leaves below the next index that are zero. Sync compares
    /// it with the contract's count, so an answer that left an erasure out is caught.
    pub fn erased_count(&self) -> u64 {
        self.read_cached().erased
    }

    /// The stored erased count; a database written before it was kept counts its leaves once.
    pub(crate) fn read_erased(&self) -> Result<u64, DbError> {
        if let Some(v) = self
            .db
            .get_cf(self.cf(CF_SYNC)?, SYNC_ERASED)
            .map_err(rocks("reading the erased count"))?
        {
            return decode_u64(&v, "erased count");
        }
        let next = self.tree()?.next_index()?;
        let set = self
            .leaves()?
            .into_iter()
            .filter(|(i, leaf)| *i < next && *leaf != Fr::from(0u64))
            .count() as u64;
        Ok(next.saturating_sub(set))
    }

    /// How setting `leaves` (in order; the last value of an index wins) moves the erased
    /// count, with the next index becoming `next_after`. Reads the current values, so call it
    /// before the leaves are written.
    pub(crate) fn erased_delta(
        &self,
        leaves: &[(u64, Fr)],
        next_after: u64,
    ) -> Result<i64, DbError> {
        let tree = self.tree()?;
        let next_before = tree.next_index()?;
        let finals: std::collections::BTreeMap<u64, Fr> = leaves.iter().copied().collect();
        let zero = Fr::from(0u64);
        let mut delta = 0i64;
        for (index, after) in finals {
            let before = tree.leaf(index)?;
            delta += i64::from(index < next_after && after == zero);
            delta -= i64::from(index < next_before && before == zero);
        }
        Ok(delta)
    }

    /// Adds `delta` to the erased count and stores it (tools' writes outside block sync).
    fn store_erased(&self, delta: i64) -> Result<(), DbError> {
        let mut cached = self.write_cached();
        cached.erased = cached.erased.saturating_add_signed(delta);
        self.db
            .put_cf(self.cf(CF_SYNC)?, SYNC_ERASED, cached.erased.to_le_bytes())
            .map_err(rocks("writing the erased count"))
    }
}

impl NodeStore for DbNodes<'_> {
    type Error = DbError;

    fn node(&self, level: usize, index: u64) -> Result<Option<Fr>, DbError> {
        let value = if level == 0 {
            self.db
                .db
                .get_pinned_cf(self.db.cf(CF_LEAVES)?, u64_key(index))
        } else {
            self.db
                .db
                .get_pinned_cf(self.db.cf(CF_NODES)?, node_key(level, index))
        }
        .map_err(rocks("reading a tree node"))?;
        value.map(|v| decode_fr(&v, "tree node")).transpose()
    }

    fn next_index(&self) -> Result<u64, DbError> {
        let value = self
            .db
            .db
            .get_pinned_cf(self.db.cf(CF_META)?, META_NEXT_INDEX)
            .map_err(rocks("reading the next leaf index"))?;
        match value {
            Some(v) => decode_u64(&v, "next leaf index"),
            None => Ok(0),
        }
    }

    fn apply(&mut self, changes: &TreeChanges) -> Result<(), DbError> {
        let mut batch = WriteBatch::default();
        self.db.stage_tree_changes(&mut batch, changes)?;
        self.db
            .db
            .write_opt(batch, &self.db.write_options())
            .map_err(rocks("writing tree nodes"))
    }
}
