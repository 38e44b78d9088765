//! The message archive behind Store v3, on RocksDB in a temporary directory:
//!
//! - insert: 1 KiB payloads with a Waku-sized proof, in the writer's batches, against a
//!   baseline in the same run (the same bytes written as plain puts to one column family,
//!   no indexes); and what an offer costs the validation path (a queue push);
//! - query: one page of 20 by content topic and time range among 1,000,000 stored messages
//!   (p50, p99), against a point read of one hash;
//! - walk: every page of a content topic holding 10,000 messages; the first and the last
//!   pages take the same time when each page is a seek, not a re-scan;
//! - disk: bytes per stored message after compaction.
//!
//! `cargo bench --bench store` (release) runs the full sizes; under `cargo test
//! --all-targets` a small version runs once.

use std::time::{Duration, Instant};

use rand::{Rng, RngCore, SeedableRng};
use rln_db::{ArchiveQuery, ArchivedMessage, DbConfig, RlnDb, Selection};
use rln_relay::archive::{start_writer, ArchiveSettings};
use rln_relay::metrics::Metrics;
use rln_relay::WakuMessage;

const PUBSUB: &str = "/waku/2/rs/1/0";
/// An encoded `RateLimitProof`: seven 32-byte fields and the 128-byte proof, with tags.
const PROOF_BYTES: usize = 336;
use rln_testkit::archive::DAY_NS;

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn now_ns() -> i64 {
    rln_relay::clock::now_nanos()
}

struct Corpus {
    rng: rand::rngs::StdRng,
    n: u64,
}

impl Corpus {
    /// The next message: `topic`, a timestamp in the last two days, random payload.
    fn next(&mut self, topic: &str, timestamp: i64) -> ArchivedMessage {
        self.n += 1;
        let mut payload = vec![0u8; 1024];
        self.rng.fill_bytes(&mut payload);
        let mut proof = vec![0u8; PROOF_BYTES];
        self.rng.fill_bytes(&mut proof);
        let mut hash = [0u8; 32];
        self.rng.fill_bytes(&mut hash);
        ArchivedMessage {
            hash,
            pubsub_topic: PUBSUB.into(),
            content_topic: topic.into(),
            timestamp,
            payload,
            version: Some(1),
            meta: None,
            proof: Some(proof),
        }
    }
}

fn config() -> DbConfig {
    DbConfig {
        sync_writes: false,
        ..DbConfig::default()
    }
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let (total, walk_topic_size) = if measuring {
        (1_000_000u64, 10_000u64)
    } else {
        (4_000, 200)
    };
    let batch = 1_024usize;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = RlnDb::open(dir.path().join("archive"), config()).expect("the database opens");
    let mut corpus = Corpus {
        rng: rand::rngs::StdRng::seed_from_u64(7),
        n: 0,
    };
    let start = now_ns() - 2 * DAY_NS;
    let step = (2 * DAY_NS) / total as i64;
    // 64 content topics share the traffic; every (total / walk) message goes to the walked one.
    let walk_every = total / walk_topic_size;

    // --- insert
    let mut batch_times = Vec::new();
    let mut pending = Vec::with_capacity(batch);
    let started = Instant::now();
    for i in 0..total {
        let topic = if i % walk_every == 0 {
            "/bench/1/walk/proto".to_string()
        } else {
            format!("/bench/1/t{}/proto", i % 64)
        };
        pending.push(corpus.next(&topic, start + i as i64 * step));
        if pending.len() == batch || i + 1 == total {
            let t = Instant::now();
            db.archive_insert(&pending).expect("insert");
            batch_times.push((t.elapsed(), pending.len()));
            pending.clear();
        }
        if measuring && i % 200_000 == 199_999 {
            eprintln!("… {} messages stored", i + 1);
        }
    }
    let insert_wall = started.elapsed();
    let per_message: Vec<Duration> = batch_times.iter().map(|(t, n)| *t / *n as u32).collect();
    let insert_median = percentile(per_message, 0.5);

    // Baseline: the same bytes as plain puts into one column family of another database.
    let base_dir = dir.path().join("baseline");
    let raw = rocksdb::DB::open_default(&base_dir).expect("the baseline opens");
    let mut base_times = Vec::new();
    let baseline_n = (total / 10).max(batch as u64 * 2);
    for chunk in 0..baseline_n / batch as u64 {
        let mut wb = rocksdb::WriteBatch::default();
        for j in 0..batch as u64 {
            let m = corpus.next(
                "/bench/1/base/proto",
                start + (chunk * batch as u64 + j) as i64,
            );
            let mut key = m.timestamp.to_be_bytes().to_vec();
            key.extend_from_slice(&m.hash);
            let mut value = m.payload;
            value.extend_from_slice(&m.proof.unwrap_or_default());
            wb.put(key, value);
        }
        let t = Instant::now();
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(false);
        raw.write_opt(wb, &wo).expect("baseline write");
        base_times.push(t.elapsed() / batch as u32);
    }
    let base_median = percentile(base_times, 0.5);

    // The validation path's share: an offer is a queue push; the writer stores behind it.
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let offer_db = std::sync::Arc::new(
        RlnDb::open(dir.path().join("offers"), config()).expect("the database opens"),
    );
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry);
    let (sender, _writer) = start_writer(
        offer_db,
        &ArchiveSettings {
            queue: 16_384,
            max_batch: batch,
            max_clock_gap: Duration::from_secs(20),
            retention: rln_db::Retention::default(),
            keep_proofs: true,
            prune_interval: Duration::from_secs(30),
        },
        metrics,
        stop_rx,
    )
    .expect("the writer starts");
    let offers = if measuring { 50_000 } else { 2_000 };
    let sample = WakuMessage {
        payload: vec![5u8; 1024],
        content_topic: "/bench/1/offer/proto".into(),
        timestamp: Some(now_ns()),
        rate_limit_proof: Some(vec![9u8; PROOF_BYTES]),
        ..Default::default()
    };
    let mut offer_times = Vec::with_capacity(offers);
    for i in 0..offers {
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let t = Instant::now();
        sender.offer(PUBSUB, &sample, hash);
        offer_times.push(t.elapsed());
    }
    let offer_median = percentile(offer_times, 0.5);

    // --- query: pages of 20, content topic + a random one-hour range; idle, then while a
    // writer stores 20,000 messages/s (the insert target) on another topic.
    let queries = if measuring { 2_000 } else { 100 };
    let run_queries = |seed: u64| {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut times = Vec::with_capacity(queries);
        let mut full = 0;
        for _ in 0..queries {
            let topic = format!("/bench/1/t{}/proto", rng.gen_range(1..64));
            let q = rln_testkit::archive::hour_page(&mut rng, start, PUBSUB, topic);
            let t = Instant::now();
            let page = db.archive_query(&q).expect("query");
            times.push(t.elapsed());
            if page.messages.len() == 20 {
                full += 1;
            }
        }
        (times, full)
    };
    let (query_times, non_empty) = run_queries(11);
    let (q50, q99) = (
        percentile(query_times.clone(), 0.5),
        percentile(query_times, 0.99),
    );
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut live = Corpus {
        rng: rand::rngs::StdRng::seed_from_u64(13),
        n: 0,
    };
    let (busy_times, live_written) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut written = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let tick = Instant::now();
                let batch: Vec<ArchivedMessage> = (0..1_000)
                    .map(|_| live.next("/bench/1/live/proto", now_ns()))
                    .collect();
                db.archive_insert(&batch).expect("live insert");
                written += 1_000;
                // 1,000 every 50 ms: 20,000 messages/s.
                std::thread::sleep(Duration::from_millis(50).saturating_sub(tick.elapsed()));
            }
            written
        });
        let (times, _) = run_queries(12);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (times, writer.join().expect("the writer thread"))
    });
    let (b50, b99) = (
        percentile(busy_times.clone(), 0.5),
        percentile(busy_times, 0.99),
    );
    let mut lookup_times = Vec::new();
    let probe = corpus_hashes(&db, 200);
    for h in &probe {
        let t = Instant::now();
        assert!(db.archive_contains(h).expect("lookup"));
        lookup_times.push(t.elapsed());
    }
    let lookup_median = percentile(lookup_times, 0.5);

    // --- walk every page of the walked topic.
    let mut q = ArchiveQuery {
        selection: Selection::Topics {
            pubsub: PUBSUB.into(),
            content: vec!["/bench/1/walk/proto".into()],
        },
        start: None,
        end: None,
        cursor: None,
        forward: true,
        limit: 20,
    };
    let mut page_times = Vec::new();
    let mut walked = 0;
    let walk_started = Instant::now();
    loop {
        let t = Instant::now();
        let page = db.archive_query(&q).expect("walk");
        page_times.push(t.elapsed());
        walked += page.messages.len();
        match page.messages.last() {
            Some(last) if page.more => q.cursor = Some(last.hash),
            _ => break,
        }
    }
    let walk_wall = walk_started.elapsed();
    assert_eq!(
        walked as u64, walk_topic_size,
        "the walk sees every message once"
    );
    let tenth = (page_times.len() / 10).max(1);
    let first = percentile(page_times[..tenth].to_vec(), 0.5);
    let last = percentile(page_times[page_times.len() - tenth..].to_vec(), 0.5);

    // --- disk
    db.archive_compact().expect("compaction");
    let disk = db.archive_disk_bytes().expect("size");
    let stats = db.archive_stats().expect("stats");
    assert_eq!(stats.count, total + live_written);
    let per_message = disk as f64 / stats.count as f64;

    // The same without proofs (`store.keep_proofs = false`, what nwaku stores), on a tenth.
    let bare_db = RlnDb::open(dir.path().join("bare"), config()).expect("the database opens");
    let bare_total = (total / 10).max(batch as u64);
    let mut pending = Vec::with_capacity(batch);
    for i in 0..bare_total {
        let mut m = corpus.next(
            &format!("/bench/1/t{}/proto", i % 64),
            start + i as i64 * step * 10,
        );
        m.proof = None;
        pending.push(m);
        if pending.len() == batch || i + 1 == bare_total {
            bare_db.archive_insert(&pending).expect("insert");
            pending.clear();
        }
    }
    bare_db.archive_compact().expect("compaction");
    let bare_per_message = bare_db.archive_disk_bytes().expect("size") as f64 / bare_total as f64;

    println!(
        "store archive, {total} messages of 1 KiB payload + {PROOF_BYTES}-byte proof, medians"
    );
    println!(
        "  insert          {:>9.2} µs/message = {:>7.0} messages/s (batches of {batch}; whole run {:.0}/s)",
        insert_median.as_secs_f64() * 1e6,
        1.0 / insert_median.as_secs_f64(),
        total as f64 / insert_wall.as_secs_f64()
    );
    println!(
        "  baseline put    {:>9.2} µs/message (one column family, no indexes); insert/baseline = {:.2}",
        base_median.as_secs_f64() * 1e6,
        insert_median.as_secs_f64() / base_median.as_secs_f64()
    );
    println!(
        "  offer (validation path) {:>6.0} ns/message",
        offer_median.as_secs_f64() * 1e9
    );
    println!(
        "  query page of 20 p50 {:>7.3} ms, p99 {:>7.3} ms ({non_empty}/{queries} full pages); point lookup {:.3} ms; p50/lookup = {:.1}",
        q50.as_secs_f64() * 1e3,
        q99.as_secs_f64() * 1e3,
        lookup_median.as_secs_f64() * 1e3,
        q50.as_secs_f64() / lookup_median.as_secs_f64()
    );
    println!(
        "  the same while 20,000 messages/s are stored: p50 {:>7.3} ms, p99 {:>7.3} ms",
        b50.as_secs_f64() * 1e3,
        b99.as_secs_f64() * 1e3
    );
    println!(
        "  walk {walk_topic_size} messages: {} pages in {:.1} ms; first tenth {:.3} ms/page, last tenth {:.3} ms/page (ratio {:.2})",
        page_times.len(),
        walk_wall.as_secs_f64() * 1e3,
        first.as_secs_f64() * 1e3,
        last.as_secs_f64() * 1e3,
        last.as_secs_f64() / first.as_secs_f64()
    );
    println!(
        "  disk {:.0} bytes/message = {:.2} KiB (counted bytes {:.0}/message); without proofs {:.0} bytes = {:.2} KiB",
        per_message,
        per_message / 1024.0,
        stats.bytes as f64 / stats.count as f64,
        bare_per_message,
        bare_per_message / 1024.0
    );
}

/// Hashes of some stored messages, read back through a walk of the global order.
fn corpus_hashes(db: &RlnDb, n: usize) -> Vec<[u8; 32]> {
    let page = db
        .archive_query(&ArchiveQuery {
            selection: Selection::All,
            start: None,
            end: None,
            cursor: None,
            forward: true,
            limit: n,
        })
        .expect("a page");
    page.messages.into_iter().map(|m| m.hash).collect()
}
