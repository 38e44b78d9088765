//! The Store archive on its two backends in one run: the embedded RocksDB archive and a
//! PostgreSQL server of the bench's own (Debian's, on loopback, fsync off for both). The same
//! corpus (1 KiB payloads with a Waku-sized proof, 64 content topics over two days) goes into
//! each in the writer's batches of 1,024, then the same queries run on each: a page of 20 by
//! content topic and a one-hour range, and a lookup of 20 hashes. Medians and p99, and each
//! PostgreSQL figure as a ratio to RocksDB's.
//!
//! `cargo bench --bench store_backends` (release) stores 100,000 messages; under `cargo test
//! --all-targets` a small version runs once.

use std::time::{Duration, Instant};

use rand::{Rng, RngCore, SeedableRng};
use rln_db::{ArchivedMessage, DbConfig, MessageArchive, PgArchive, RlnDb};
use rln_testkit::postgres::PgServer;

const PUBSUB: &str = "/waku/2/rs/1/0";
const PROOF_BYTES: usize = 336;
use rln_testkit::archive::DAY_NS;
const BATCH: usize = 1_024;

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn corpus(total: u64, start: i64) -> Vec<ArchivedMessage> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let step = (2 * DAY_NS) / total as i64;
    (0..total)
        .map(|i| {
            let mut payload = vec![0u8; 1024];
            rng.fill_bytes(&mut payload);
            let mut proof = vec![0u8; PROOF_BYTES];
            rng.fill_bytes(&mut proof);
            let mut hash = [0u8; 32];
            rng.fill_bytes(&mut hash);
            ArchivedMessage {
                hash,
                pubsub_topic: PUBSUB.into(),
                content_topic: format!("/bench/1/t{}/proto", i % 64),
                timestamp: start + i as i64 * step,
                payload,
                version: Some(1),
                meta: None,
                proof: Some(proof),
            }
        })
        .collect()
}

struct Figures {
    insert: Duration,
    page: (Duration, Duration),
    lookup: (Duration, Duration),
}

fn measure(
    archive: &dyn MessageArchive,
    all: &[ArchivedMessage],
    queries: usize,
    start: i64,
) -> Figures {
    let mut per_message = Vec::new();
    for chunk in all.chunks(BATCH) {
        let t = Instant::now();
        let done = archive.insert(chunk).expect("insert");
        assert_eq!(done.stored, chunk.len());
        per_message.push(t.elapsed() / chunk.len() as u32);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let (mut pages, mut lookups) = (Vec::new(), Vec::new());
    for _ in 0..queries {
        let topic = format!("/bench/1/t{}/proto", rng.gen_range(0..64));
        let q = rln_testkit::archive::hour_page(&mut rng, start, PUBSUB, topic);
        let t = Instant::now();
        let page = archive.query(&q).expect("query");
        pages.push(t.elapsed());
        assert!(page.messages.len() <= 20);
        let hashes: Vec<[u8; 32]> = (0..20)
            .map(|_| all[rng.gen_range(0..all.len())].hash)
            .collect();
        let t = Instant::now();
        let found = archive.lookup(&hashes).expect("lookup");
        lookups.push(t.elapsed());
        assert!(!found.is_empty());
    }
    Figures {
        insert: percentile(per_message, 0.5),
        page: (percentile(pages.clone(), 0.5), percentile(pages, 0.99)),
        lookup: (percentile(lookups.clone(), 0.5), percentile(lookups, 0.99)),
    }
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let (total, queries) = if measuring {
        (100_000u64, 2_000)
    } else {
        (3_000, 50)
    };
    let start = rln_relay::clock::now_nanos() - 2 * DAY_NS;
    let all = corpus(total, start);

    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = RlnDb::open(
        dir.path(),
        DbConfig {
            sync_writes: false,
            ..DbConfig::default()
        },
    )
    .expect("the database opens");
    let server = PgServer::start();
    let pg = PgArchive::connect(&server.create_database()).expect("the server answers");

    eprintln!("storing {total} messages in each backend…");
    let rocks = measure(&db, &all, queries, start);
    let postgres = measure(&pg, &all, queries, start);
    let ratio = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64().max(1e-12);
    println!("store backends, {total} messages, {queries} queries (medians; p99 in brackets)");
    println!("| operation | RocksDB | PostgreSQL | PostgreSQL / RocksDB |");
    println!("|---|---|---|---|");
    println!(
        "| insert, per message (batches of {BATCH}) | {:.1?} | {:.1?} | {:.1}× |",
        rocks.insert,
        postgres.insert,
        ratio(rocks.insert, postgres.insert)
    );
    println!(
        "| page of 20, content topic + 1 h range | {:.1?} ({:.1?}) | {:.1?} ({:.1?}) | {:.1}× |",
        rocks.page.0,
        rocks.page.1,
        postgres.page.0,
        postgres.page.1,
        ratio(rocks.page.0, postgres.page.0)
    );
    println!(
        "| lookup of 20 hashes | {:.1?} ({:.1?}) | {:.1?} ({:.1?}) | {:.1}× |",
        rocks.lookup.0,
        rocks.lookup.1,
        postgres.lookup.0,
        postgres.lookup.1,
        ratio(rocks.lookup.0, postgres.lookup.0)
    );
    drop(pg);
}
