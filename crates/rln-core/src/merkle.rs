//! The Poseidon Merkle tree of membership leaves, over a pluggable [`NodeStore`].
//!
//! Level 0 holds the leaves and level `depth` the root; node `i` of level `l + 1` is
//! `Poseidon(node 2i, node 2i+1)` of level `l`. A node the store has never seen equals the
//! root of an empty subtree of its height, so an empty tree needs no storage at all.
//! Updates are computed as a [`TreeChanges`] set and applied to the store in one call, which
//! lets a persistent store write them atomically.

use std::collections::BTreeMap;

use ark_ff::Zero;

use crate::error::TreeError;
use crate::field::Fr;
use crate::poseidon::poseidon2;

/// Depth of the RLN membership tree (2^20 members).
pub const TREE_DEPTH: usize = 20;

/// Deepest tree supported: leaf indices are `u64` and the path bits fit the circuit's inputs.
pub const MAX_DEPTH: usize = 32;

/// Node writes produced by one tree operation, to be applied together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeChanges {
    /// `(level, index, value)` for every node whose value changed or was first set.
    pub nodes: Vec<(usize, u64, Fr)>,
    /// The tree's next free leaf index after the changes.
    pub next_index: u64,
}

/// Storage for tree nodes. The in-memory [`MemoryStore`] is one implementation; `rln-db` keeps
/// the nodes in RocksDB.
pub trait NodeStore {
    /// The store's own failure type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The node at `(level, index)`, or `None` if it was never written (an empty subtree).
    fn node(&self, level: usize, index: u64) -> Result<Option<Fr>, Self::Error>;

    /// One past the highest leaf index ever set.
    fn next_index(&self) -> Result<u64, Self::Error>;

    /// Applies all node writes and the new next index as one unit.
    fn apply(&mut self, changes: &TreeChanges) -> Result<(), Self::Error>;
}

/// A tree store held in a hash map. Real, not a test double: light clients and tests that
/// need no persistence use it.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    nodes: std::collections::HashMap<(usize, u64), Fr>,
    next_index: u64,
}

impl NodeStore for MemoryStore {
    type Error = std::convert::Infallible;

    fn node(&self, level: usize, index: u64) -> Result<Option<Fr>, Self::Error> {
        Ok(self.nodes.get(&(level, index)).copied())
    }

    fn next_index(&self) -> Result<u64, Self::Error> {
        Ok(self.next_index)
    }

    fn apply(&mut self, changes: &TreeChanges) -> Result<(), Self::Error> {
        for &(level, index, value) in &changes.nodes {
            self.nodes.insert((level, index), value);
        }
        self.next_index = changes.next_index;
        Ok(())
    }
}

/// The siblings of a leaf from the bottom up, with its index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleProof {
    /// The leaf's index.
    pub leaf_index: u64,
    /// Sibling at each level, level 0 first.
    pub siblings: Vec<Fr>,
}

impl MerkleProof {
    /// Direction bits, level 0 first: 0 when the running node is the left child.
    pub fn path_index(&self) -> Vec<u8> {
        (0..self.siblings.len())
            .map(|level| ((self.leaf_index >> level) & 1) as u8)
            .collect()
    }

    /// The root reached by hashing `leaf` up this path.
    pub fn compute_root(&self, leaf: Fr) -> Fr {
        self.siblings
            .iter()
            .enumerate()
            .fold(leaf, |node, (level, sibling)| {
                if (self.leaf_index >> level) & 1 == 0 {
                    poseidon2(node, *sibling)
                } else {
                    poseidon2(*sibling, node)
                }
            })
    }
}

/// Roots of empty subtrees: `empty_roots()[h]` is the root of an empty subtree of height `h`,
/// for every height up to [`MAX_DEPTH`]. Computed once per process.
pub fn empty_roots() -> &'static [Fr] {
    static ZEROS: std::sync::OnceLock<Vec<Fr>> = std::sync::OnceLock::new();
    ZEROS.get_or_init(|| {
        let mut zeros = Vec::with_capacity(MAX_DEPTH + 1);
        zeros.push(Fr::zero());
        for level in 0..MAX_DEPTH {
            let below = zeros[level];
            zeros.push(poseidon2(below, below));
        }
        zeros
    })
}

/// A fixed-depth Poseidon Merkle tree over a node store.
#[derive(Debug)]
pub struct MerkleTree<S> {
    store: S,
    depth: usize,
    zeros: &'static [Fr],
}

fn store_err<E: std::error::Error + Send + Sync + 'static>(err: E) -> TreeError {
    TreeError::Store(Box::new(err))
}

impl<S: NodeStore> MerkleTree<S> {
    /// Opens a tree of `depth` over `store` (which may already hold nodes).
    pub fn new(store: S, depth: usize) -> Result<Self, TreeError> {
        if depth == 0 || depth > MAX_DEPTH {
            return Err(TreeError::UnsupportedDepth(depth));
        }
        Ok(Self {
            store,
            depth,
            zeros: empty_roots(),
        })
    }

    /// The tree's depth.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Number of leaf slots, `2^depth`.
    pub fn capacity(&self) -> u64 {
        1u64 << self.depth
    }

    /// The backing store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives the backing store back.
    pub fn into_store(self) -> S {
        self.store
    }

    /// One past the highest leaf index ever set.
    pub fn next_index(&self) -> Result<u64, TreeError> {
        self.store.next_index().map_err(store_err)
    }

    fn node(&self, level: usize, index: u64) -> Result<Fr, TreeError> {
        Ok(self
            .store
            .node(level, index)
            .map_err(store_err)?
            .unwrap_or(self.zeros[level]))
    }

    fn check_index(&self, index: u64) -> Result<(), TreeError> {
        if index >= self.capacity() {
            return Err(TreeError::IndexOutOfRange {
                index,
                capacity: self.capacity(),
            });
        }
        Ok(())
    }

    /// The current root.
    pub fn root(&self) -> Result<Fr, TreeError> {
        self.node(self.depth, 0)
    }

    /// The leaf at `index` (zero if unset or deleted).
    pub fn leaf(&self, index: u64) -> Result<Fr, TreeError> {
        self.check_index(index)?;
        self.node(0, index)
    }

    /// The membership proof of the leaf at `index`.
    pub fn proof(&self, index: u64) -> Result<MerkleProof, TreeError> {
        self.check_index(index)?;
        let siblings = (0..self.depth)
            .map(|level| self.node(level, (index >> level) ^ 1))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MerkleProof {
            leaf_index: index,
            siblings,
        })
    }

    /// Computes, without applying, the node writes that set the given leaves. Later entries
    /// for the same index win. Every touched internal node is hashed once, however many of
    /// its leaves change.
    pub fn changes_for(&self, leaves: &[(u64, Fr)]) -> Result<TreeChanges, TreeError> {
        let mut level_nodes: BTreeMap<u64, Fr> = BTreeMap::new();
        let mut next_index = self.next_index()?;
        for &(index, value) in leaves {
            self.check_index(index)?;
            level_nodes.insert(index, value);
            next_index = next_index.max(index + 1);
        }
        let mut nodes = Vec::with_capacity(level_nodes.len() * (self.depth + 1));
        for level in 0..self.depth {
            let mut parents = BTreeMap::new();
            for (&index, &value) in &level_nodes {
                let parent = index >> 1;
                if parents.contains_key(&parent) {
                    continue;
                }
                let sibling_index = index ^ 1;
                let sibling = match level_nodes.get(&sibling_index) {
                    Some(value) => *value,
                    None => self.node(level, sibling_index)?,
                };
                let hash = if index & 1 == 0 {
                    poseidon2(value, sibling)
                } else {
                    poseidon2(sibling, value)
                };
                parents.insert(parent, hash);
            }
            nodes.extend(level_nodes.iter().map(|(&i, &v)| (level, i, v)));
            level_nodes = parents;
        }
        nodes.extend(level_nodes.iter().map(|(&i, &v)| (self.depth, i, v)));
        Ok(TreeChanges { nodes, next_index })
    }

    /// Applies precomputed changes (from [`Self::changes_for`] on this same state).
    pub fn apply(&mut self, changes: &TreeChanges) -> Result<(), TreeError> {
        self.store.apply(changes).map_err(store_err)
    }

    /// Sets several leaves in one pass.
    pub fn set_leaves(&mut self, leaves: &[(u64, Fr)]) -> Result<(), TreeError> {
        let changes = self.changes_for(leaves)?;
        self.apply(&changes)
    }

    /// Sets the leaf at `index`.
    pub fn set(&mut self, index: u64, leaf: Fr) -> Result<(), TreeError> {
        self.set_leaves(&[(index, leaf)])
    }

    /// Appends a leaf at the next free index and returns that index.
    pub fn insert(&mut self, leaf: Fr) -> Result<u64, TreeError> {
        let index = self.next_index()?;
        if index >= self.capacity() {
            return Err(TreeError::Full {
                capacity: self.capacity(),
            });
        }
        self.set(index, leaf)?;
        Ok(index)
    }

    /// Appends leaves at consecutive free indices and returns the first one.
    pub fn insert_many(&mut self, leaves: &[Fr]) -> Result<u64, TreeError> {
        let start = self.next_index()?;
        let end = start.saturating_add(leaves.len() as u64);
        if end > self.capacity() {
            return Err(TreeError::Full {
                capacity: self.capacity(),
            });
        }
        let indexed: Vec<(u64, Fr)> = (start..end).zip(leaves.iter().copied()).collect();
        self.set_leaves(&indexed)?;
        Ok(start)
    }

    /// Erases the leaf at `index` (sets it to zero, the empty leaf).
    pub fn delete(&mut self, index: u64) -> Result<(), TreeError> {
        self.set(index, Fr::zero())
    }
}

impl MerkleTree<MemoryStore> {
    /// An empty in-memory tree of `depth`.
    pub fn in_memory(depth: usize) -> Result<Self, TreeError> {
        Self::new(MemoryStore::default(), depth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Root of the leaves by the definition, hashing every level in full.
    fn naive_root(leaves: &[Fr], depth: usize) -> Fr {
        let mut level: Vec<Fr> = leaves.to_vec();
        level.resize(1 << depth, Fr::zero());
        while level.len() > 1 {
            level = level.chunks(2).map(|p| poseidon2(p[0], p[1])).collect();
        }
        level[0]
    }

    #[test]
    fn empty_root_is_the_zero_chain() {
        let tree = MerkleTree::in_memory(4).unwrap();
        assert_eq!(tree.root().unwrap(), naive_root(&[], 4));
    }

    #[test]
    fn insert_update_delete_and_paths() {
        let mut tree = MerkleTree::in_memory(4).unwrap();
        let leaves: Vec<Fr> = (1..=5u64).map(Fr::from).collect();
        for leaf in &leaves {
            tree.insert(*leaf).unwrap();
        }
        assert_eq!(tree.root().unwrap(), naive_root(&leaves, 4));
        tree.set(2, Fr::from(99u64)).unwrap();
        tree.delete(4).unwrap();
        let expected = [leaves[0], leaves[1], Fr::from(99u64), leaves[3], Fr::zero()];
        assert_eq!(tree.root().unwrap(), naive_root(&expected, 4));
        assert_eq!(tree.next_index().unwrap(), 5);
        for (i, leaf) in expected.iter().enumerate() {
            let proof = tree.proof(i as u64).unwrap();
            assert_eq!(proof.compute_root(*leaf), tree.root().unwrap());
            assert_ne!(
                proof.compute_root(*leaf + Fr::from(1u64)),
                tree.root().unwrap()
            );
        }
        assert_eq!(tree.proof(3).unwrap().path_index(), vec![1, 1, 0, 0]);
    }

    #[test]
    fn out_of_range_and_full_are_errors() {
        let mut tree = MerkleTree::in_memory(2).unwrap();
        assert!(matches!(
            tree.set(4, Fr::from(1u64)),
            Err(TreeError::IndexOutOfRange {
                index: 4,
                capacity: 4
            })
        ));
        assert!(matches!(
            tree.proof(4),
            Err(TreeError::IndexOutOfRange { .. })
        ));
        tree.insert_many(&[Fr::from(1u64); 4]).unwrap();
        assert!(matches!(
            tree.insert(Fr::from(1u64)),
            Err(TreeError::Full { capacity: 4 })
        ));
        assert!(matches!(
            MerkleTree::in_memory(0),
            Err(TreeError::UnsupportedDepth(0))
        ));
    }

    proptest! {
        #[test]
        fn batch_equals_one_by_one(ops in proptest::collection::vec((0u64..32, 0u64..4), 1..40)) {
            let leaves: Vec<(u64, Fr)> = ops.iter().map(|&(i, v)| (i, Fr::from(v))).collect();
            let mut batched = MerkleTree::in_memory(5).unwrap();
            batched.set_leaves(&leaves).unwrap();
            let mut single = MerkleTree::in_memory(5).unwrap();
            let mut dense = vec![Fr::zero(); 32];
            for &(i, v) in &leaves {
                single.set(i, v).unwrap();
                dense[i as usize] = v;
            }
            prop_assert_eq!(batched.root().unwrap(), single.root().unwrap());
            prop_assert_eq!(batched.root().unwrap(), naive_root(&dense, 5));
        }
    }
}
