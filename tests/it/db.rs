//! rln-db on real RocksDB in temporary directories.

use std::sync::Arc;

use proptest::prelude::*;
use rln_core::{Fr, MerkleTree, TREE_DEPTH};
use rln_db::{
    BlockUpdate, DbConfig, DbError, NullifierRecord, NullifierVerdict, RlnDb, RootStatus,
};

fn config() -> DbConfig {
    DbConfig {
        sync_writes: false,
        ..DbConfig::default()
    }
}

fn leaf(i: u64) -> Fr {
    Fr::from(i * 7919 + 1)
}

fn block(number: u64, leaves: Vec<(u64, Fr)>) -> BlockUpdate {
    let mut hash = [0u8; 32];
    hash[..8].copy_from_slice(&number.to_le_bytes());
    hash[31] = 0xab;
    BlockUpdate {
        number,
        hash,
        leaves,
    }
}

#[test]
fn state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (root, window, checkpoint, proof, before_erasure) = {
        let db = RlnDb::open(dir.path(), config()).unwrap();
        for b in 1..=10u64 {
            let leaves = (0..5)
                .map(|j| ((b - 1) * 5 + j, leaf(b * 10 + j)))
                .collect();
            db.apply_block(&block(b, leaves)).unwrap();
        }
        let before_erasure = db.root().unwrap();
        assert_eq!(db.root_window().len(), 10);
        db.apply_block(&block(11, vec![(3, Fr::from(0u64))]))
            .unwrap();
        // The erasure revokes every earlier root: they all still contain leaf 3.
        assert!(matches!(
            db.root_status(&before_erasure),
            rln_db::RootStatus::Revoked { .. }
        ));
        assert!(!db.is_root_acceptable(&before_erasure));
        (
            db.root().unwrap(),
            db.root_window(),
            db.checkpoint(),
            db.proof(7).unwrap(),
            before_erasure,
        )
    };
    let db = RlnDb::open(dir.path(), config()).unwrap();
    assert_eq!(db.root().unwrap(), root);
    assert_eq!(db.root_window(), window);
    assert_eq!(window.len(), 1);
    // The revocation is stored with its block: a restart still knows the old root was revoked.
    assert!(matches!(
        db.root_status(&before_erasure),
        RootStatus::Revoked { .. }
    ));
    assert_eq!(db.checkpoint(), checkpoint);
    assert_eq!(db.checkpoint().unwrap().number, 11);
    assert_eq!(db.proof(7).unwrap(), proof);
    assert_eq!(db.next_index().unwrap(), 50);
    assert_eq!(db.leaf(3).unwrap(), Fr::from(0u64));
    let report = db.check_consistency().unwrap();
    assert_eq!(report.leaves, 50);
}

#[test]
fn window_keeps_the_last_n_in_order_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DbConfig {
        root_window: 3,
        ..config()
    };
    let mut roots = Vec::new();
    {
        let db = RlnDb::open(dir.path(), cfg.clone()).unwrap();
        for b in 1..=5u64 {
            roots.push(db.apply_block(&block(b, vec![(b, leaf(b))])).unwrap());
        }
        // A block without membership events keeps the window as it is.
        db.apply_block(&block(6, vec![])).unwrap();
    }
    let db = RlnDb::open(dir.path(), cfg).unwrap();
    let window: Vec<(Fr, u64)> = db
        .root_window()
        .entries()
        .map(|e| (e.root, e.block))
        .collect();
    assert_eq!(window, vec![(roots[2], 3), (roots[3], 4), (roots[4], 5)]);
    assert!(!db.is_root_acceptable(&roots[1]));
    assert!(db.is_root_acceptable(&roots[4]));
    assert_eq!(db.checkpoint().unwrap().number, 6);
}

#[test]
fn blocks_apply_in_order_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = RlnDb::open(dir.path(), config()).unwrap();
    db.apply_block(&block(5, vec![])).unwrap();
    let err = db.apply_block(&block(5, vec![])).unwrap_err();
    assert!(
        matches!(err, DbError::OutOfOrder { last: 5, got: 5 }),
        "{err}"
    );
}

#[test]
fn rollback_restores_the_common_ancestor() {
    let dir = tempfile::tempdir().unwrap();
    let db = RlnDb::open(dir.path(), config()).unwrap();
    let mut roots = Vec::new();
    for b in 1..=3u64 {
        roots.push(db.apply_block(&block(b, vec![(b - 1, leaf(b))])).unwrap());
    }
    // Blocks 4 and 5 add members and erase one from block 2.
    db.apply_block(&block(4, vec![(3, leaf(4)), (1, Fr::from(0u64))]))
        .unwrap();
    db.apply_block(&block(5, vec![(4, leaf(5))])).unwrap();
    db.rollback_to(3).unwrap();
    assert_eq!(db.root().unwrap(), roots[2]);
    assert_eq!(db.next_index().unwrap(), 3);
    assert_eq!(db.leaf(1).unwrap(), leaf(2));
    assert_eq!(db.leaves().unwrap().len(), 3);
    assert_eq!(db.root_window().latest().unwrap().root, roots[2]);
    assert_eq!(db.checkpoint().unwrap().number, 3);
    db.check_consistency().unwrap();
    // The new branch applies on top.
    let other = db.apply_block(&block(4, vec![(3, leaf(99))])).unwrap();
    drop(db);
    let db = RlnDb::open(dir.path(), config()).unwrap();
    assert_eq!(db.root().unwrap(), other);
    db.check_consistency().unwrap();
}

#[test]
fn rollback_beyond_history_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DbConfig {
        reorg_depth: 2,
        ..config()
    };
    let db = RlnDb::open(dir.path(), cfg).unwrap();
    for b in 1..=6u64 {
        db.apply_block(&block(b, vec![(b, leaf(b))])).unwrap();
    }
    let err = db.rollback_to(2).unwrap_err();
    assert!(
        matches!(err, DbError::ReorgTooDeep { target: 2, .. }),
        "{err}"
    );
    db.rollback_to(4).unwrap();
    assert_eq!(db.checkpoint().unwrap().number, 4);
}

#[test]
fn nullifier_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let db = RlnDb::open(dir.path(), config()).unwrap();
    let n = Fr::from(77u64);
    let first = NullifierRecord {
        x: Fr::from(1u64),
        y: Fr::from(2u64),
        message_hash: [1u8; 32],
        first_seen_ms: 1000,
    };
    assert_eq!(
        db.check_nullifier(9, &n, &first.x, &first.y).unwrap(),
        NullifierVerdict::New
    );
    assert_eq!(
        db.insert_nullifier(9, &n, &first).unwrap(),
        NullifierVerdict::New
    );
    assert_eq!(
        db.insert_nullifier(9, &n, &first).unwrap(),
        NullifierVerdict::Duplicate
    );
    let second = NullifierRecord {
        x: Fr::from(3u64),
        ..first
    };
    assert_eq!(
        db.insert_nullifier(9, &n, &second).unwrap(),
        NullifierVerdict::DoubleSignal { previous: first }
    );
    // Another epoch is another scope.
    assert_eq!(
        db.insert_nullifier(10, &n, &second).unwrap(),
        NullifierVerdict::New
    );
    assert_eq!(db.nullifier_count().unwrap(), 2);
    db.prune_nullifiers_before(10).unwrap();
    assert_eq!(db.nullifier(9, &n).unwrap(), None);
    assert_eq!(db.nullifier(10, &n).unwrap(), Some(second));
    // A late share of the pruned epoch is not taken for a first one.
    assert_eq!(
        db.insert_nullifier(9, &n, &second).unwrap(),
        NullifierVerdict::Pruned
    );
    assert_eq!(
        db.check_nullifier(9, &n, &second.x, &second.y).unwrap(),
        NullifierVerdict::Pruned
    );
    assert_eq!(db.nullifier(9, &n).unwrap(), None, "nothing was written");
    // The floor never goes down.
    db.prune_nullifiers_before(3).unwrap();
    assert_eq!(db.nullifier_floor(), 10);
}

#[test]
fn no_insert_slips_under_a_concurrent_prune() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(RlnDb::open(dir.path(), config()).unwrap());
    for round in 0..20u64 {
        let floor = (round + 1) * 100;
        let writers: Vec<_> = (0..4u64)
            .map(|t| {
                let db = Arc::clone(&db);
                std::thread::spawn(move || {
                    for k in 0..200u64 {
                        let record = NullifierRecord {
                            x: Fr::from(k),
                            y: Fr::from(t),
                            message_hash: [0; 32],
                            first_seen_ms: k,
                        };
                        // Epochs just below and above the floor being set.
                        let epoch = floor - 50 + (k * 7 + t) % 100;
                        db.insert_nullifier(epoch, &Fr::from(k * 4 + t), &record)
                            .unwrap();
                    }
                })
            })
            .collect();
        db.prune_nullifiers_before(floor).unwrap();
        for w in writers {
            w.join().unwrap();
        }
        for k in 0..800u64 {
            for epoch in floor - 50..floor {
                assert_eq!(
                    db.nullifier(epoch, &Fr::from(k)).unwrap(),
                    None,
                    "round {round}: a record of epoch {epoch} outlived the prune to {floor}"
                );
            }
        }
    }
}

#[test]
fn concurrent_inserts_yield_exactly_one_new() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(RlnDb::open(dir.path(), config()).unwrap());
    for round in 0..20u64 {
        let n = Fr::from(round);
        let handles: Vec<_> = (0..8u64)
            .map(|t| {
                let db = Arc::clone(&db);
                std::thread::spawn(move || {
                    let record = NullifierRecord {
                        x: Fr::from(t % 3),
                        y: Fr::from(t % 3),
                        message_hash: [t as u8; 32],
                        first_seen_ms: t,
                    };
                    db.insert_nullifier(1, &n, &record).unwrap()
                })
            })
            .collect();
        let verdicts: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let news = verdicts
            .iter()
            .filter(|v| **v == NullifierVerdict::New)
            .count();
        assert_eq!(news, 1, "round {round}: {verdicts:?}");
    }
}

#[test]
fn another_chain_contract_or_depth_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    drop(RlnDb::open(dir.path(), config()).unwrap());
    let cases = [
        DbConfig {
            chain_id: 1,
            ..config()
        },
        DbConfig {
            contract: [7u8; 20],
            ..config()
        },
        DbConfig {
            depth: 16,
            ..config()
        },
    ];
    for (cfg, what) in cases
        .into_iter()
        .zip(["chain id", "contract", "tree depth"])
    {
        let err = RlnDb::open(dir.path(), cfg.clone()).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, DbError::Mismatch { .. }), "{message}");
        assert!(
            message.contains(what) && message.contains("wipe this one"),
            "{message}"
        );
        // --reset wipes it and starts over.
        let db = RlnDb::reset(dir.path(), cfg.clone()).unwrap();
        assert_eq!(db.next_index().unwrap(), 0);
        drop(db);
        RlnDb::reset(dir.path(), config()).unwrap();
    }
}

#[test]
fn a_foreign_rocksdb_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        let other = rocksdb::DB::open(&options, dir.path()).unwrap();
        other.put(b"k", b"v").unwrap();
    }
    let err = RlnDb::open(dir.path(), config()).unwrap_err();
    assert!(matches!(err, DbError::MissingColumnFamily { .. }), "{err}");
    assert!(err.to_string().contains("wipe this one"));
}

/// Writes some state, flushes it to SST files and returns the files.
fn flushed_db(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let db = RlnDb::open(dir, config()).unwrap();
    for b in 1..=20u64 {
        let leaves = (0..50)
            .map(|j| ((b - 1) * 50 + j, leaf(b * 100 + j)))
            .collect();
        db.apply_block(&block(b, leaves)).unwrap();
    }
    db.flush().unwrap();
    drop(db);
    let mut ssts: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sst"))
        .collect();
    ssts.sort();
    assert!(!ssts.is_empty());
    ssts
}

/// Opening and reading a damaged database must end in an error, never a panic.
fn open_and_read(dir: &std::path::Path) -> Result<(), DbError> {
    let db = RlnDb::open(dir, config())?;
    db.check_consistency()?;
    Ok(())
}

#[test]
fn truncated_sst_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    for sst in flushed_db(dir.path()) {
        let len = std::fs::metadata(&sst).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(&sst).unwrap();
        file.set_len(len / 2).unwrap();
    }
    let err = open_and_read(dir.path()).unwrap_err();
    assert!(matches!(err, DbError::Rocks { .. }), "{err}");
}

#[test]
fn garbage_sst_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    for sst in flushed_db(dir.path()) {
        let len = std::fs::metadata(&sst).unwrap().len() as usize;
        std::fs::write(&sst, vec![0x5a; len]).unwrap();
    }
    let err = open_and_read(dir.path()).unwrap_err();
    assert!(
        matches!(err, DbError::Rocks { .. } | DbError::Corrupt(_)),
        "{err}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn batch_single_and_memory_trees_agree(
        ops in proptest::collection::vec((0u64..2048, prop_oneof![Just(0u64), 1u64..1000]), 1..120)
    ) {
        let leaves: Vec<(u64, Fr)> = ops.iter().map(|&(i, v)| (i, Fr::from(v))).collect();
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let batched = RlnDb::open(a.path(), config()).unwrap();
        let single = RlnDb::open(b.path(), config()).unwrap();
        let mut memory = MerkleTree::in_memory(TREE_DEPTH).unwrap();
        batched.set_leaves(&leaves).unwrap();
        for &(i, v) in &leaves {
            single.set_leaves(&[(i, v)]).unwrap();
            memory.set(i, v).unwrap();
        }
        let root = memory.root().unwrap();
        prop_assert_eq!(batched.root().unwrap(), root);
        prop_assert_eq!(single.root().unwrap(), root);
        let probe = leaves[0].0;
        prop_assert_eq!(batched.proof(probe).unwrap(), memory.proof(probe).unwrap());
    }
}

#[test]
fn rollback_across_blocks_without_records() {
    let dir = tempfile::tempdir().unwrap();
    let db = RlnDb::open(dir.path(), config()).unwrap();
    // Sync applies only blocks with events and the end of each range: numbers have gaps.
    let r1 = db.apply_block(&block(1, vec![(0, leaf(1))])).unwrap();
    let r5 = db.apply_block(&block(5, vec![(1, leaf(5))])).unwrap();
    db.apply_block(&block(9, vec![(2, leaf(9)), (0, Fr::from(0u64))]))
        .unwrap();
    db.apply_block(&block(12, vec![])).unwrap();
    let recent: Vec<u64> = db
        .recent_blocks()
        .unwrap()
        .iter()
        .map(|c| c.number)
        .collect();
    assert_eq!(recent, vec![12, 9, 5, 1]);
    db.rollback_to(5).unwrap();
    assert_eq!(db.root().unwrap(), r5);
    assert_eq!(db.leaf(0).unwrap(), leaf(1));
    assert_eq!(db.next_index().unwrap(), 2);
    db.rollback_to(1).unwrap();
    assert_eq!(db.root().unwrap(), r1);
    db.check_consistency().unwrap();
    assert!(matches!(
        db.rollback_to(0),
        Err(DbError::ReorgTooDeep { .. })
    ));
}

#[test]
fn revocations_survive_a_restart_and_a_reorged_erasure_gives_the_roots_back() {
    let dir = tempfile::tempdir().unwrap();
    let (roots, window, at_ms) = {
        let db = RlnDb::open(dir.path(), config()).unwrap();
        let roots: Vec<Fr> = (1..=3u64)
            .map(|b| db.apply_block(&block(b, vec![(b - 1, leaf(b))])).unwrap())
            .collect();
        let window = db.root_window();
        db.apply_block(&block(4, vec![(0, Fr::from(0u64))]))
            .unwrap();
        let at_ms = match db.root_status(&roots[1]) {
            RootStatus::Revoked { at_ms } => at_ms,
            other => panic!("revoked by the erasure, not {other:?}"),
        };
        (roots, window, at_ms)
    };
    // A restart remembers the revocation and its time (the grace runs from it).
    let db = RlnDb::open(dir.path(), config()).unwrap();
    for root in &roots {
        assert_eq!(db.root_status(root), RootStatus::Revoked { at_ms });
    }
    let erased_root = db.root_window().latest().unwrap().root;
    // The erasure's block is reorged away: the window it cleared is back, nothing revoked.
    db.rollback_to(3).unwrap();
    assert_eq!(db.root_window(), window);
    for root in &roots {
        assert_eq!(db.root_status(root), RootStatus::InWindow);
    }
    assert_eq!(db.root_status(&erased_root), RootStatus::Unknown);
    db.check_consistency().unwrap();
    drop(db);
    let db = RlnDb::open(dir.path(), config()).unwrap();
    assert_eq!(db.root_window(), window, "the restored window is on disk");
    assert_eq!(db.root_status(&roots[0]), RootStatus::InWindow);
    // The same erasure mined again revokes again.
    db.apply_block(&block(4, vec![(0, Fr::from(0u64))]))
        .unwrap();
    assert!(matches!(
        db.root_status(&roots[2]),
        RootStatus::Revoked { .. }
    ));
}

#[test]
fn the_erased_count_follows_blocks_rollbacks_restarts_and_tool_writes() {
    let dir = tempfile::tempdir().unwrap();
    let zero = Fr::from(0u64);
    {
        let db = RlnDb::open(dir.path(), config()).unwrap();
        for b in 1..=3u64 {
            db.apply_block(&block(b, vec![(b - 1, leaf(b))])).unwrap();
        }
        assert_eq!(db.erased_count(), 0);
        db.apply_block(&block(4, vec![(0, zero)])).unwrap();
        // Registered and erased in one block, and an erasure repeated: one more each time
        // a member's leaf goes to zero, never twice for one leaf.
        db.apply_block(&block(5, vec![(3, leaf(5)), (3, zero), (0, zero)]))
            .unwrap();
        assert_eq!(db.erased_count(), 2);
        db.rollback_to(4).unwrap();
        assert_eq!(db.erased_count(), 1, "the block that erased leaf 3 is gone");
    }
    let db = RlnDb::open(dir.path(), config()).unwrap();
    assert_eq!(db.erased_count(), 1, "kept on disk");
    db.rollback_to(3).unwrap();
    assert_eq!(db.erased_count(), 0);
    db.set_leaves(&[(1, zero), (2, zero)]).unwrap();
    assert_eq!(db.erased_count(), 2);
    db.append_leaves(&[leaf(9), zero]).unwrap();
    assert_eq!(
        db.erased_count(),
        3,
        "an appended zero is an empty, erased slot"
    );
}
