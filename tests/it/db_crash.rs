//! `kill -9` at random moments while blocks are being applied, nullifiers logged and message
//! ids allocated: after every restart the checkpoint, the tree and the root window agree,
//! every nullifier logged before the last applied block is there, and the message-id counter
//! never went back.
//!
//! The test re-runs its own binary as the child process (selected by an environment
//! variable), which applies blocks until it is killed.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rln_core::Fr;
use rln_db::{Allocation, BlockUpdate, DbConfig, MessageIdLedger, NullifierRecord, RlnDb};

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

/// The one member of the ledger, publishing in one long epoch.
const MEMBER: u64 = 77;
const EPOCH: u64 = 1;

fn ledger(dir: &std::path::Path) -> MessageIdLedger {
    MessageIdLedger::open(&dir.join("keystore.json.message-ids")).unwrap()
}

fn nullifier_record(n: u64) -> NullifierRecord {
    NullifierRecord {
        x: Fr::from(n),
        y: Fr::from(n + 1),
        message_hash: [0u8; 32],
        first_seen_ms: n,
    }
}

/// Block `n`'s nullifier is logged after the block is applied and before block `n + 1`.
fn child(dir: &std::path::Path) -> ! {
    let ledger = match MessageIdLedger::open(&dir.join("keystore.json.message-ids")) {
        Ok(l) => l,
        Err(err) => {
            eprintln!("child cannot open the ledger: {err}");
            std::process::exit(3)
        }
    };
    let db = match RlnDb::open(dir.join("db"), config()) {
        Ok(db) => db,
        Err(err) => {
            eprintln!("child cannot open: {err}");
            std::process::exit(3)
        }
    };
    let mut next = db.checkpoint().map_or(1, |c| c.number + 1);
    // A kill between a block and its nullifier: log that one first (a duplicate otherwise).
    if next > 1
        && db
            .insert_nullifier(
                (next - 1) / 10,
                &Fr::from(next - 1),
                &nullifier_record(next - 1),
            )
            .is_err()
    {
        std::process::exit(6)
    }
    loop {
        // As a publisher does: the id is durable before it is used.
        if !matches!(
            ledger.allocate(&Fr::from(MEMBER), EPOCH, u64::MAX),
            Ok(Allocation::Id(_))
        ) {
            std::process::exit(5)
        }
        if let Err(err) = db.apply_block(&block(next)) {
            eprintln!("child cannot apply block {next}: {err}");
            std::process::exit(4)
        }
        if db
            .insert_nullifier(next / 10, &Fr::from(next), &nullifier_record(next))
            .is_err()
        {
            std::process::exit(6)
        }
        next += 1;
    }
}

#[test]
fn sigkill_at_random_moments_leaves_consistent_state() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(std::path::Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    ledger(dir.path()).record_new(&Fr::from(MEMBER)).unwrap();
    let mut ids_used = 0;
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

        let db = RlnDb::open(dir.path().join("db"), config()).unwrap();
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
        // Every nullifier logged before the last applied block survived.
        for n in 1..applied {
            assert_eq!(
                db.nullifier(n / 10, &Fr::from(n)).unwrap(),
                Some(nullifier_record(n)),
                "the nullifier of block {n} is lost (block {applied} applied)"
            );
        }
        // Each applied block had its id allocated first, and no id is ever handed out again.
        let (epoch, used) = ledger(dir.path()).used(&Fr::from(MEMBER)).unwrap_or((0, 0));
        if applied > 0 {
            assert_eq!(epoch, EPOCH);
        }
        assert!(
            used >= applied && used >= ids_used,
            "the id counter went back: {used} after {ids_used}, {applied} blocks applied"
        );
        ids_used = used;
        last = applied;
    }
    assert!(last > 0, "the child never applied a block");
    eprintln!("{kills} kills; the last restart found block {last} applied");
}
