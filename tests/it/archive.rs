//! The message archive, on both backends (the embedded RocksDB one and a real PostgreSQL
//! server): page walks against a model of the Store's order (timestamp, then hash), hash and
//! presence lookups, retention by age, count and size; two writers sharing one PostgreSQL
//! database; and, for RocksDB, reopening and `kill -9` during archive writes.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rln_db::{
    ArchiveQuery, ArchivedMessage, DbConfig, DbError, MessageArchive, PgArchive, Retention, RlnDb,
    Selection,
};
use rln_testkit::postgres::PgServer;

const PUBSUB: &str = "/waku/2/rs/1/0";

fn config() -> DbConfig {
    DbConfig {
        sync_writes: false,
        ..DbConfig::default()
    }
}

fn message(n: u64, content: &str, timestamp: i64, payload_len: usize) -> ArchivedMessage {
    let mut hash = [0u8; 32];
    // Hash order unrelated to n, so that ties on the timestamp are broken by the hash.
    let mixed = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    hash[..8].copy_from_slice(&mixed.to_be_bytes());
    hash[8..16].copy_from_slice(&n.to_be_bytes());
    ArchivedMessage {
        hash,
        pubsub_topic: PUBSUB.to_string(),
        content_topic: content.to_string(),
        timestamp,
        payload: vec![(n % 251) as u8; payload_len],
        version: n.is_multiple_of(2).then_some(1),
        meta: n.is_multiple_of(3).then(|| vec![7u8; 5]),
        proof: (!n.is_multiple_of(4)).then(|| vec![n as u8; 40]),
    }
}

fn topics_query(content: &[&str], forward: bool, limit: usize) -> ArchiveQuery {
    ArchiveQuery {
        selection: Selection::Topics {
            pubsub: PUBSUB.to_string(),
            content: content.iter().map(|c| c.to_string()).collect(),
        },
        start: None,
        end: None,
        cursor: None,
        forward,
        limit,
    }
}

/// Every page of `query`, following the client's rule (next cursor: the last entry's hash
/// going forward, the first going backward; stop on an empty page), in walk order.
fn walk(db: &dyn MessageArchive, mut query: ArchiveQuery) -> Vec<ArchivedMessage> {
    let mut pages: Vec<Vec<ArchivedMessage>> = Vec::new();
    for _ in 0..10_000 {
        let page = db.query(&query).expect("query");
        if page.messages.is_empty() {
            assert!(!page.more, "an empty page says more follow");
            break;
        }
        assert!(page.messages.len() <= query.limit);
        assert!(
            page.messages
                .windows(2)
                .all(|w| (w[0].timestamp, w[0].hash) < (w[1].timestamp, w[1].hash)),
            "a page is not in ascending order"
        );
        query.cursor = Some(if query.forward {
            page.messages[page.messages.len() - 1].hash
        } else {
            page.messages[0].hash
        });
        pages.push(page.messages);
    }
    if !query.forward {
        pages.reverse();
    }
    pages.into_iter().flatten().collect()
}

fn keyed(messages: &[ArchivedMessage]) -> Vec<(i64, [u8; 32])> {
    messages.iter().map(|m| (m.timestamp, m.hash)).collect()
}

/// Each test of the shared suite, once per backend: `name::rocksdb` on a fresh data
/// directory, `name::postgres` on a fresh database of a server of its own.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn rocksdb() {
                let dir = tempfile::tempdir().unwrap();
                let db = rln_db::RlnDb::open(dir.path(), super::config()).unwrap();
                super::$name(&db);
            }

            #[test]
            fn postgres() {
                let (_server, archive) = super::postgres_archive();
                super::$name(&archive);
            }
        }
    )*};
}

on_both_backends!(
    page_walks_match_the_model,
    pages_say_whether_more_follow_and_cursors_are_exclusive,
    an_unknown_cursor_is_an_error,
    hash_lookups_and_duplicates,
    retention_by_age_count_and_size_holds_after_pruning,
);

/// A PostgreSQL server of the test's own and an archive on a new database of it.
fn postgres_archive() -> (PgServer, PgArchive) {
    let server = PgServer::start();
    let archive = PgArchive::connect(&server.create_database()).unwrap();
    (server, archive)
}

/// Empties an archive between proptest cases.
fn clear(archive: &dyn MessageArchive) {
    let everything = Retention {
        max_count: Some(0),
        ..Retention::default()
    };
    while archive.prune(&everything, 0, 10_000).unwrap() > 0 {}
}

type WalkCase = (
    Vec<(u8, i64)>,
    std::collections::BTreeSet<u8>,
    Option<i64>,
    Option<i64>,
    usize,
);

fn walk_cases() -> impl Strategy<Value = WalkCase> {
    (
        proptest::collection::vec((0u8..4, 0i64..12), 1..160),
        proptest::collection::btree_set(0u8..4, 1..4),
        proptest::option::of(0i64..12),
        proptest::option::of(0i64..12),
        1usize..9,
    )
}

/// Forward and backward walks over pages with many equal timestamps give exactly the model's
/// entries (time range start inclusive, end exclusive), each once, in order.
fn page_walks_match_the_model(archive: &dyn MessageArchive) {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(24));
    runner
        .run(&walk_cases(), |case| {
            clear(archive);
            walks_match(archive, case)
        })
        .unwrap();
}

fn walks_match(
    db: &dyn MessageArchive,
    (entries, wanted, start, span, limit): WalkCase,
) -> Result<(), TestCaseError> {
    let mut model: BTreeMap<(i64, [u8; 32]), ArchivedMessage> = BTreeMap::new();
    let all: Vec<ArchivedMessage> = entries
        .iter()
        .enumerate()
        .map(|(n, (topic, t))| message(n as u64, &format!("/app/1/t{topic}/proto"), 1_000 + t, 8))
        .collect();
    for chunk in all.chunks(37) {
        db.insert(chunk).unwrap();
    }
    for m in &all {
        model.insert((m.timestamp, m.hash), m.clone());
    }
    let content: Vec<String> = wanted
        .iter()
        .map(|t| format!("/app/1/t{t}/proto"))
        .collect();
    let start = start.map(|s| 1_000 + s);
    let end = match (start, span) {
        (Some(s), Some(d)) => Some(s + d),
        (None, Some(d)) => Some(1_000 + d),
        _ => None,
    };
    let expected: Vec<(i64, [u8; 32])> = model
        .values()
        .filter(|m| content.contains(&m.content_topic))
        .filter(|m| start.is_none_or(|s| m.timestamp >= s))
        .filter(|m| end.is_none_or(|e| m.timestamp < e))
        .map(|m| (m.timestamp, m.hash))
        .collect();
    for forward in [true, false] {
        let query = ArchiveQuery {
            selection: Selection::Topics {
                pubsub: PUBSUB.to_string(),
                content: content.clone(),
            },
            start,
            end,
            cursor: None,
            forward,
            limit,
        };
        let walked = walk(db, query);
        prop_assert_eq!(keyed(&walked), expected.clone(), "forward: {}", forward);
        for m in &walked {
            prop_assert_eq!(m, &model[&(m.timestamp, m.hash)]);
        }
    }
    // The unfiltered walk sees everything in the range.
    let everything: Vec<(i64, [u8; 32])> = model
        .keys()
        .filter(|(t, _)| start.is_none_or(|s| *t >= s) && end.is_none_or(|e| *t < e))
        .copied()
        .collect();
    for forward in [true, false] {
        let query = ArchiveQuery {
            selection: Selection::All,
            start,
            end,
            cursor: None,
            forward,
            limit,
        };
        prop_assert_eq!(keyed(&walk(db, query)), everything.clone());
    }
    Ok(())
}

fn pages_say_whether_more_follow_and_cursors_are_exclusive(db: &dyn MessageArchive) {
    let all: Vec<ArchivedMessage> = (0..5).map(|n| message(n, "/a/1/x/p", 50, 4)).collect();
    db.insert(&all).unwrap();
    let mut sorted = keyed(&all);
    sorted.sort();
    let first = db.query(&topics_query(&["/a/1/x/p"], true, 2)).unwrap();
    assert!(first.more);
    assert_eq!(keyed(&first.messages), sorted[..2].to_vec());
    let mut q = topics_query(&["/a/1/x/p"], true, 3);
    q.cursor = Some(sorted[1].1);
    let rest = db.query(&q).unwrap();
    assert!(!rest.more, "the last page says nothing follows");
    assert_eq!(keyed(&rest.messages), sorted[2..].to_vec());
    q.cursor = Some(sorted[4].1);
    let past = db.query(&q).unwrap();
    assert!(past.messages.is_empty() && !past.more);
    // Backward with no cursor: the newest entries, in ascending order.
    let newest = db.query(&topics_query(&["/a/1/x/p"], false, 2)).unwrap();
    assert_eq!(keyed(&newest.messages), sorted[3..].to_vec());
    assert!(newest.more);
    // A topic never seen: an empty page, not an error.
    let none = db.query(&topics_query(&["/other/1/x/p"], true, 2)).unwrap();
    assert!(none.messages.is_empty());
}

fn an_unknown_cursor_is_an_error(db: &dyn MessageArchive) {
    db.insert(&[message(1, "/a/1/x/p", 5, 4)]).unwrap();
    let mut q = topics_query(&["/a/1/x/p"], true, 20);
    q.cursor = Some([9u8; 32]);
    assert!(matches!(db.query(&q), Err(DbError::UnknownCursor)));
}

fn ten_messages() -> Vec<ArchivedMessage> {
    (0..10)
        .map(|n| {
            message(
                n,
                if n % 2 == 0 { "/a/1/x/p" } else { "/a/1/y/p" },
                100 - n as i64,
                16,
            )
        })
        .collect()
}

fn hash_lookups_and_duplicates(db: &dyn MessageArchive) {
    let all = ten_messages();
    let hashes: Vec<[u8; 32]> = all.iter().map(|m| m.hash).collect();
    let first = db.insert(&all[..6]).unwrap();
    assert_eq!((first.stored, first.duplicates), (6, 0));
    // The batch repeats stored entries and one of its own.
    let mut again = all.clone();
    again.push(all[9].clone());
    let second = db.insert(&again).unwrap();
    assert_eq!((second.stored, second.duplicates), (4, 7));
    let stats = db.stats().unwrap();
    assert_eq!(stats.count, 10);
    assert_eq!(stats.oldest, Some(91));
    assert_eq!(db.newest().unwrap(), Some(100));
    let found = db
        .lookup(&[hashes[3], [1u8; 32], hashes[8], hashes[3]])
        .unwrap();
    assert_eq!(
        found.len(),
        2,
        "unknown hashes are absent, repeats answered once"
    );
    assert_eq!(found[0], all[8], "ascending timestamp order");
    assert_eq!(found[1], all[3]);
    assert!(db.contains(&hashes[0]).unwrap());
    assert!(!db.contains(&[1u8; 32]).unwrap());
}

#[test]
fn two_writers_on_one_postgres_database_store_every_message_once() {
    let server = PgServer::start();
    let url = server.create_database();
    let writers = [
        PgArchive::connect(&url).unwrap(),
        PgArchive::connect(&url).unwrap(),
    ];
    // Each writer sees 3,000 messages in batches of 50, in its own order; 1,000 of them are
    // seen by both (as two store nodes relay the same traffic), and one writer prunes by age
    // meanwhile, which must take only messages old enough.
    let union: Vec<ArchivedMessage> = (0..5_000)
        .map(|n| message(n, &format!("/a/1/t{}/p", n % 3), 10_000 + n as i64, 64))
        .collect();
    let mine = |w: usize| -> Vec<ArchivedMessage> {
        let mut own: Vec<ArchivedMessage> = union
            .iter()
            .filter(|m| {
                let n = m.timestamp - 10_000;
                n % 5 == 0 || (n % 5 < 3) == (w == 0)
            })
            .cloned()
            .collect();
        if w == 1 {
            own.reverse();
        }
        own
    };
    let totals: Vec<(usize, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|w| {
                let writer = &writers[w];
                let own = mine(w);
                scope.spawn(move || {
                    let (mut stored, mut duplicates) = (0, 0);
                    for (k, batch) in own.chunks(50).enumerate() {
                        let done = writer.insert(batch).unwrap();
                        stored += done.stored;
                        duplicates += done.duplicates;
                        if w == 0 && k % 10 == 0 {
                            // Keep timestamps ≥ 10_000: nothing goes.
                            let age = Retention {
                                max_age_ns: Some(1_000),
                                ..Retention::default()
                            };
                            assert_eq!(writer.prune(&age, 11_000, 500).unwrap(), 0);
                        }
                    }
                    (stored, duplicates)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let seen_by_both = union.len() / 5;
    assert_eq!(mine(0).len() + mine(1).len(), union.len() + seen_by_both);
    let stored: usize = totals.iter().map(|t| t.0).sum();
    let duplicates: usize = totals.iter().map(|t| t.1).sum();
    assert_eq!(
        stored,
        union.len(),
        "each message stored by exactly one writer"
    );
    assert_eq!(duplicates, seen_by_both, "the other writer skipped it");
    // Either writer's view: every message, once, whole, in order.
    for w in &writers {
        assert_eq!(w.stats().unwrap().count as usize, union.len());
        let walked = everything(w, 700);
        assert_eq!(walked, union);
    }
    // Two nodes pruning at once take exactly the excess between them.
    let keep = Retention {
        max_count: Some(1_234),
        ..Retention::default()
    };
    let removed: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = writers
            .iter()
            .map(|w| {
                scope.spawn(move || {
                    let mut removed = 0;
                    loop {
                        let n = w.prune(&keep, 0, 97).unwrap();
                        if n == 0 {
                            break removed;
                        }
                        removed += n;
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(removed, union.len() - 1_234);
    let stats = writers[1].stats().unwrap();
    assert_eq!(stats.count, 1_234);
    assert_eq!(stats.oldest, Some(union[union.len() - 1_234].timestamp));
}

#[test]
fn a_postgres_archive_reports_a_server_that_went_away_and_recovers_when_it_is_back() {
    let mut server = PgServer::start();
    let url = server.create_database();
    let archive = PgArchive::connect(&url).unwrap();
    archive.insert(&[message(1, "/a/1/x/p", 5, 4)]).unwrap();
    let port = url
        .rsplit(':')
        .next()
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_string();
    server.kill();
    let err = archive.insert(&[message(2, "/a/1/x/p", 6, 4)]).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DbError::Postgres { .. }), "{text}");
    assert!(
        text.contains(&format!("127.0.0.1:{port}")),
        "names the server: {text}"
    );
    assert!(archive.stats().is_err());
    // The server comes back: the next call reconnects, and nothing stored before is lost.
    server.restart();
    archive.insert(&[message(2, "/a/1/x/p", 6, 4)]).unwrap();
    assert_eq!(archive.stats().unwrap().count, 2);
    // A bad URL is refused with a sentence, never a panic.
    for bad in ["mysql://x@y/z", "postgres://", "postgres://u@h:notaport/db"] {
        let err = PgArchive::connect(bad).unwrap_err().to_string();
        assert!(!err.is_empty(), "{bad}");
    }
    assert!(rln_db::postgres::check_url("postgres://rln:secret@h/db").is_ok());
    assert!(rln_db::postgres::check_url("postgres://rln:secret@h")
        .unwrap_err()
        .contains("names no database"));
}

#[test]
fn the_embedded_archives_counters_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let all = ten_messages();
    {
        let db = RlnDb::open(dir.path(), config()).unwrap();
        db.archive_insert(&all).unwrap();
    }
    let db = RlnDb::open(dir.path(), config()).unwrap();
    assert_eq!(
        db.archive_counts().unwrap().0,
        10,
        "counters survive a reopen"
    );
    assert_eq!(db.archive_stats().unwrap().count, 10);
    assert_eq!(stored_everywhere(&db), 10);
}

/// Every stored message, walked in pages of `limit`.
fn everything(db: &dyn MessageArchive, limit: usize) -> Vec<ArchivedMessage> {
    let q = ArchiveQuery {
        selection: Selection::All,
        start: None,
        end: None,
        cursor: None,
        forward: true,
        limit,
    };
    walk(db, q)
}

fn stored_everywhere(db: &dyn MessageArchive) -> usize {
    everything(db, 100).len()
}

fn retention_by_age_count_and_size_holds_after_pruning(db: &dyn MessageArchive) {
    let all: Vec<ArchivedMessage> = (0..300)
        .map(|n| message(n, &format!("/a/1/t{}/p", n % 7), n as i64 * 10, 100))
        .collect();
    db.insert(&all).unwrap();
    let bytes_before = db.stats().unwrap().bytes;
    assert!(bytes_before > 300 * 100);

    // By age: at "now" = 3000, keep timestamps ≥ 1000 (ages ≤ 2000).
    let by_age = Retention {
        max_age_ns: Some(2_000),
        ..Retention::default()
    };
    let mut removed = 0;
    loop {
        // Small passes, to cover a prune that stops part way.
        let n = db.prune(&by_age, 3_000, 37).unwrap();
        if n == 0 {
            break;
        }
        removed += n;
    }
    assert_eq!(removed, 100);
    let stats = db.stats().unwrap();
    assert_eq!(stats.count, 200);
    assert_eq!(stats.oldest, Some(1_000));
    assert_eq!(stored_everywhere(db), 200);
    assert!(!db.contains(&all[99].hash).unwrap());
    assert!(db.contains(&all[100].hash).unwrap());

    // By count.
    let by_count = Retention {
        max_count: Some(120),
        ..Retention::default()
    };
    assert_eq!(db.prune(&by_count, 3_000, 10_000).unwrap(), 80);
    assert_eq!(db.stats().unwrap().count, 120);
    assert_eq!(stored_everywhere(db), 120);
    assert_eq!(db.stats().unwrap().oldest, Some(1_800));

    // By size: the bound holds after pruning, and nothing more than needed went.
    let per_entry = db.stats().unwrap().bytes / 120;
    let by_size = Retention {
        max_bytes: Some(per_entry * 50 + per_entry / 2),
        ..Retention::default()
    };
    db.prune(&by_size, 3_000, 10_000).unwrap();
    let stats = db.stats().unwrap();
    assert!(stats.bytes <= per_entry * 50 + per_entry / 2);
    assert_eq!(stats.count, 50);
    assert_eq!(stored_everywhere(db), 50);
    // Every remaining topic walk agrees with the global one.
    let by_topic: usize = (0..7)
        .map(|t| walk(db, topics_query(&[&format!("/a/1/t{t}/p")], true, 9)).len())
        .sum();
    assert_eq!(by_topic, 50);

    // Everything goes; the topics go with it, and the archive starts over cleanly.
    let nothing = Retention {
        max_count: Some(0),
        ..Retention::default()
    };
    assert_eq!(db.prune(&nothing, 3_000, 10_000).unwrap(), 50);
    let stats = db.stats().unwrap();
    assert_eq!((stats.count, stats.bytes, stats.oldest), (0, 0, None));
    db.insert(&all[..3]).unwrap();
    assert_eq!(stored_everywhere(db), 3);
}

#[test]
fn a_data_directory_without_the_archive_gets_one() {
    // A directory made by an rln-node before the archive existed: the other column
    // families only.
    let dir = tempfile::tempdir().unwrap();
    {
        let db = RlnDb::open(dir.path(), config()).unwrap();
        db.archive_insert(&[message(1, "/a/1/x/p", 1, 1)]).unwrap();
    }
    {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(false);
        let names = rocksdb::DB::list_cf(&options, dir.path()).unwrap();
        let mut db = rocksdb::DB::open_cf(&options, dir.path(), &names).unwrap();
        for name in rln_db::ARCHIVE_COLUMN_FAMILIES {
            db.drop_cf(name).unwrap();
        }
    }
    let db = RlnDb::open(dir.path(), config()).unwrap();
    assert_eq!(stored_everywhere(&db), 0);
    db.archive_insert(&[message(2, "/a/1/x/p", 2, 1)]).unwrap();
    assert_eq!(stored_everywhere(&db), 1);
}

const CHILD_ENV: &str = "RLN_ARCHIVE_CRASH_CHILD_DIR";
const TEST_NAME: &str = "archive::sigkill_during_archive_writes_leaves_a_consistent_archive";

/// Inserts batches of 64 forever, pruning now and then, until it is killed.
fn child(dir: &std::path::Path) -> ! {
    let db = match RlnDb::open(dir, config()) {
        Ok(db) => db,
        Err(err) => {
            eprintln!("child cannot open: {err}");
            std::process::exit(3)
        }
    };
    let mut n =
        db.archive_stats().map_or(0, |s| s.count) * 7 + 1_000_000 * rand::random::<u16>() as u64;
    let retention = Retention {
        max_count: Some(3_000),
        ..Retention::default()
    };
    loop {
        let batch: Vec<ArchivedMessage> = (0..64)
            .map(|i| {
                n += 1;
                message(n, &format!("/a/1/t{}/p", i % 5), (n % 10_000) as i64, 512)
            })
            .collect();
        if let Err(e) = db.archive_insert(&batch) {
            eprintln!("child insert failed: {e}");
            std::process::exit(4)
        }
        if n % 640 < 64 {
            if let Err(e) = db.archive_prune(&retention, 0, 500) {
                eprintln!("child prune failed: {e}");
                std::process::exit(5)
            }
        }
    }
}

#[test]
fn sigkill_during_archive_writes_leaves_a_consistent_archive() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(std::path::Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5707e);
    let mut last = 0;
    for round in 0..6 {
        crate::common::run_then_sigkill(
            TEST_NAME,
            CHILD_ENV,
            dir.path(),
            Duration::from_millis(rng.gen_range(300..900)),
        );

        let db = RlnDb::open(dir.path(), config()).unwrap();
        let stats = db.archive_stats().unwrap();
        let everything = everything(&db, 100);
        // The counter and the entries were written in one batch each time: they agree.
        assert_eq!(stats.count as usize, everything.len(), "round {round}");
        // Every entry is whole, and the per-topic and hash indexes hold the same set.
        let mut per_topic = 0;
        for t in 0..5 {
            let walked = walk(&db, topics_query(&[&format!("/a/1/t{t}/p")], true, 100));
            for m in &walked {
                assert_eq!(m.payload.len(), 512, "a torn record");
                assert_eq!(
                    m.payload[0],
                    (u64::from_be_bytes(m.hash[8..16].try_into().unwrap()) % 251) as u8
                );
            }
            per_topic += walked.len();
        }
        assert_eq!(per_topic, everything.len());
        let hashes: Vec<[u8; 32]> = everything.iter().map(|m| m.hash).collect();
        assert_eq!(db.archive_lookup(&hashes).unwrap().len(), hashes.len());
        last = everything.len();
    }
    assert!(last > 0, "the child never wrote anything");
}
