//! A node's state on real RocksDB in a temporary directory, with tree leaves set directly:
//! for tests of validation and publishing that need members but no chain.

use std::sync::Arc;

use rln_core::{Fr, Identity};
use rln_db::{BlockUpdate, DbConfig, RlnDb};
use tempfile::TempDir;

/// A state in a temporary directory (removed on drop).
pub struct StateFixture {
    /// The directory.
    pub dir: TempDir,
    /// The state.
    pub db: Arc<RlnDb>,
    block: u64,
}

impl StateFixture {
    /// An empty state for chain 31337 and a made-up contract.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = Arc::new(
            RlnDb::open(
                dir.path().join("db"),
                DbConfig {
                    chain_id: 31_337,
                    contract: [0x5f; 20],
                    sync_writes: false,
                    ..DbConfig::default()
                },
            )
            .expect("the state opens"),
        );
        Self { dir, db, block: 0 }
    }

    /// Sets leaves as one block would (the new root enters the root window); returns the
    /// root.
    pub fn set_leaves(&mut self, leaves: &[(u64, Fr)]) -> Fr {
        self.block += 1;
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&self.block.to_le_bytes());
        self.db
            .apply_block(&BlockUpdate {
                number: self.block,
                hash,
                leaves: leaves.to_vec(),
            })
            .expect("the block applies")
    }

    /// Adds `identity` with `limit` at leaf `index`; returns the new root.
    pub fn add_member(&mut self, index: u64, identity: &Identity, limit: u64) -> Fr {
        let leaf = identity
            .rate_commitment(limit)
            .expect("the limit is in range");
        self.set_leaves(&[(index, leaf)])
    }
}

impl Default for StateFixture {
    fn default() -> Self {
        Self::new()
    }
}
