//! `kill -9` at random moments while blocks are being applied: after every restart the
//! checkpoint, the tree and the root window agree.
//!
//! The test re-runs its own binary as the child process (selected by an environment
//! variable), which applies blocks until it is killed.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rln_core::Fr;
use rln_db::{BlockUpdate, DbConfig, NullifierRecord, RlnDb};

const CHILD_ENV: &str = "RLN_DB_CRASH_CHILD_DIR";
const LEAVES_PER_BLOCK: u64 = 16;
const TEST_NAME: &str = "db_crash::sigkill_at_random_moments_leaves_consistent_state";

fn config() -> DbConfig {
    DbConfig {
        root_window: 8,
        reorg_depth: 16,
        // Process crashes keep what reached the OS; fsync is about power loss.
        sync_writes: false,
        ..DbConfig::default()
    }
}

fn leaf_value(index: u64) -> Fr {
    Fr::from(index * 31 + 5)
}

/// Block `n` appends leaves `(n-1)·16 .. n·16` and, every third block, erases an older one.
fn block(n: u64) -> BlockUpdate {
    let start = (n - 1) * LEAVES_PER_BLOCK;
    let mut leaves: Vec<(u64, Fr)> = (start..start + LEAVES_PER_BLOCK)
        .map(|i| (i, leaf_value(i)))
        .collect();
    if n.is_multiple_of(3) {
        leaves.push((start / 2, Fr::from(0u64)));
    }
    let mut hash = [0u8; 32];
    hash[..8].copy_from_slice(&n.to_le_bytes());
    BlockUpdate {
        number: n,
        hash,
        leaves,
    }
}

fn child(dir: &std::path::Path) -> ! {
    let db = match RlnDb::open(dir, config()) {
        Ok(db) => db,
        Err(err) => {
            eprintln!("child cannot open: {err}");
            std::process::exit(3)
        }
    };
    let mut next = db.checkpoint().map_or(1, |c| c.number + 1);
    loop {
        if let Err(err) = db.apply_block(&block(next)) {
            eprintln!("child cannot apply block {next}: {err}");
            std::process::exit(4)
        }
        let record = NullifierRecord {
            x: Fr::from(next),
            y: Fr::from(next + 1),
            message_hash: [0u8; 32],
            first_seen_ms: next,
        };
        let _ = db.insert_nullifier(next / 10, &Fr::from(next), &record);
        next += 1;
    }
}

#[test]
fn sigkill_at_random_moments_leaves_consistent_state() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(std::path::Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut last = 0;
    let mut kills = 0;
    while kills < 24 {
        crate::common::run_then_sigkill(
            TEST_NAME,
            CHILD_ENV,
            dir.path(),
            Duration::from_millis(rng.gen_range(40..400)),
        );
        kills += 1;

        let db = RlnDb::open(dir.path(), config()).unwrap();
        let report = db.check_consistency().unwrap();
        let applied = report.checkpoint.map_or(0, |c| c.number);
        assert!(
            applied >= last,
            "the checkpoint went back from {last} to {applied}"
        );
        // The tree holds exactly the blocks the checkpoint says.
        assert_eq!(db.next_index().unwrap(), applied * LEAVES_PER_BLOCK);
        if applied > 0 {
            let last_leaf = applied * LEAVES_PER_BLOCK - 1;
            assert_eq!(db.leaf(last_leaf).unwrap(), leaf_value(last_leaf));
            assert_eq!(db.root_window().latest().unwrap().block, applied);
        }
        last = applied;
    }
    assert!(last > 0, "the child never applied a block");
    eprintln!("{kills} kills; the last restart found block {last} applied");
}
