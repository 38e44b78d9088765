//! Benchmarks of rln-db on RocksDB: batched and single tree inserts at depth 20, proof reads,
//! nullifier insert-if-absent, and cold open of a database holding 1M leaves.
//!
//! Reference on the project machine: zerokit v2.0.2 (pmtree) single insert 0.39 ms.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use rln_core::Fr;
use rln_db::{DbConfig, NullifierRecord, RlnDb};

fn config() -> DbConfig {
    DbConfig {
        sync_writes: false,
        ..DbConfig::default()
    }
}

fn leaves(start: u64, n: u64) -> Vec<Fr> {
    (start..start + n).map(|i| Fr::from(i * 7 + 3)).collect()
}

fn tree(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = RlnDb::open(dir.path(), config()).unwrap();
    let mut group = c.benchmark_group("db tree depth 20");
    group.sample_size(20);
    // 100 batches of 1000 leaves = 100k leaves per sample; time reported per batch.
    group.bench_function("append batch of 1000 leaves", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let next = db.next_index().unwrap();
                let batch = leaves(next, 1000);
                let start = Instant::now();
                db.append_leaves(&batch).unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    group.bench_function("append single leaf", |b| {
        b.iter(|| {
            let next = db.next_index().unwrap();
            db.append_leaves(&leaves(next, 1)).unwrap()
        })
    });
    let n = db.next_index().unwrap();
    let mut i = 0u64;
    group.bench_function("proof read", |b| {
        b.iter(|| {
            i = (i + 7919) % n;
            db.proof(i).unwrap()
        })
    });
    group.finish();

    let mut epoch_key = 0u64;
    c.bench_function("db nullifier insert-if-absent (new keys)", |b| {
        b.iter(|| {
            epoch_key += 1;
            let record = NullifierRecord {
                x: Fr::from(epoch_key),
                y: Fr::from(epoch_key),
                message_hash: [0u8; 32],
                first_seen_ms: epoch_key,
            };
            db.insert_nullifier(1, &Fr::from(epoch_key), &record)
                .unwrap()
        })
    });
}

fn cold_open(c: &mut Criterion) {
    // `cargo test --all-targets` runs each benchmark once without `--bench`: keep that quick.
    let measuring = std::env::args().any(|a| a == "--bench");
    let members: u64 = std::env::var("RLN_BENCH_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 1_000_000 } else { 10_000 });
    let dir = tempfile::tempdir().unwrap();
    {
        let db = RlnDb::open(dir.path(), config()).unwrap();
        let started = Instant::now();
        let mut next = 0;
        while next < members {
            let n = (members - next).min(10_000);
            db.append_leaves(&leaves(next, n)).unwrap();
            next += n;
        }
        db.flush().unwrap();
        eprintln!(
            "built a database of {members} leaves in {:.1} s ({:.1} µs per leaf)",
            started.elapsed().as_secs_f64(),
            started.elapsed().as_secs_f64() * 1e6 / members as f64
        );
    }
    let mut group = c.benchmark_group("db cold open");
    group.sample_size(10);
    group.bench_function(format!("open + root + proof with {members} leaves"), |b| {
        b.iter(|| {
            let db = RlnDb::open(dir.path(), config()).unwrap();
            let root = db.root().unwrap();
            let proof = db.proof(members / 2).unwrap();
            (root, proof.siblings.len())
        })
    });
    group.finish();
}

criterion_group!(benches, tree, cold_open);
criterion_main!(benches);
