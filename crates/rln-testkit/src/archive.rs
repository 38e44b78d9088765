//! Store archive queries the benchmarks share.

use rand::Rng;
use rln_db::{ArchiveQuery, Selection};

/// A day in nanoseconds.
pub const DAY_NS: i64 = 86_400_000_000_000;

/// A page of 20 over `content` in `pubsub`, in a random one-hour window of the two days from
/// `start` (Unix ns), in a random direction: the query a client catching up asks most.
pub fn hour_page(rng: &mut impl Rng, start: i64, pubsub: &str, content: String) -> ArchiveQuery {
    let from = start + rng.gen_range(0..2 * DAY_NS - DAY_NS / 24);
    ArchiveQuery {
        selection: Selection::Topics {
            pubsub: pubsub.into(),
            content: vec![content],
        },
        start: Some(from),
        end: Some(from + DAY_NS / 24),
        cursor: None,
        forward: rng.gen_bool(0.5),
        limit: 20,
    }
}
