//! The message archive behind the Store protocol: messages that passed RLN validation (or
//! that the node published), queryable by (pubsub topic, content topics, time range) with
//! exclusive hash cursors, by message hash, and pruned by age, count and size.
//!
//! Layout (every integer big-endian, times as sign-flipped `i64` so byte order is time order):
//! - `archive_messages`: `topic (8) ‖ time (8) ‖ hash (32)` → the record. A content-filtered
//!   query is one range scan per content topic; a cursor is a seek.
//! - `archive_time`: `time (8) ‖ hash (32)` → `topic (8) ‖ size (u32)`: the global order, for
//!   unfiltered queries and for retention (the oldest entries are at the front).
//! - `archive_hash`: `hash (32)` → `topic (8) ‖ time (8)`: hash lookups and cursors.
//! - `archive_topics`: `topic (8)` → the pubsub and content topic names. A topic key is the
//!   first 8 bytes of `sha256(pubsub ‖ 0x00 ‖ content)`; two names with one key are detected
//!   when the second arrives, and its messages are refused rather than mixed.
//!
//! The count and the size (keys and values of all three entries of a message) are kept in
//! `meta` and change in the same write batch as the entries, so a crash never leaves them
//! apart. Archive writes go to the write-ahead log without an fsync: a killed process loses
//! nothing, a power loss may lose the last moments of history (never the membership state).

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions};
use sha2::{Digest, Sha256};

use crate::db::RlnDb;
use crate::error::{rocks, DbError};
use crate::schema::*;

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedMessage {
    /// The deterministic message hash (the store's key and cursor).
    pub hash: [u8; 32],
    /// The pubsub topic it was relayed on.
    pub pubsub_topic: String,
    /// Its content topic.
    pub content_topic: String,
    /// Its timestamp, Unix nanoseconds.
    pub timestamp: i64,
    /// The payload.
    pub payload: Vec<u8>,
    /// The payload version, if the message carried one.
    pub version: Option<u32>,
    /// Application metadata.
    pub meta: Option<Vec<u8>>,
    /// The encoded `RateLimitProof` (kept so that whoever reads the history can check it).
    pub proof: Option<Vec<u8>>,
}

/// Which messages a query walks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Messages of one pubsub topic with one of these content topics.
    Topics {
        /// The pubsub topic.
        pubsub: String,
        /// The content topics (at least one).
        content: Vec<String>,
    },
    /// Every message.
    All,
}

/// A page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveQuery {
    /// Which messages.
    pub selection: Selection,
    /// Earliest timestamp, inclusive (Unix ns).
    pub start: Option<i64>,
    /// Latest timestamp, exclusive (Unix ns).
    pub end: Option<i64>,
    /// Hash of the entry the page follows (forward) or precedes (backward), exclusive.
    pub cursor: Option<[u8; 32]>,
    /// Walk towards newer entries.
    pub forward: bool,
    /// Entries in the page (at least 1).
    pub limit: usize,
}

/// One page, in ascending (timestamp, hash) order whichever the direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivePage {
    /// The entries.
    pub messages: Vec<ArchivedMessage>,
    /// Whether more entries follow in the walk's direction.
    pub more: bool,
}

/// How much history to keep; every bound set applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Oldest timestamp kept, as an age in nanoseconds.
    pub max_age_ns: Option<u64>,
    /// Messages kept.
    pub max_count: Option<u64>,
    /// Bytes of stored keys and values kept.
    pub max_bytes: Option<u64>,
}

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Inserted {
    /// New entries.
    pub stored: usize,
    /// Already stored (same hash), skipped.
    pub duplicates: usize,
    /// Refused because their topic key collides with another topic's.
    pub collisions: usize,
}

/// The archive's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ArchiveStats {
    /// Stored messages.
    pub count: u64,
    /// Bytes of their keys and values.
    pub bytes: u64,
    /// Timestamp of the oldest one.
    pub oldest: Option<i64>,
}

/// Topic key → (pubsub topic, content topic).
type TopicNames = HashMap<u64, (String, String)>;

/// The archive's counters, behind the lock that serialises its writers (inserts, prunes).
#[derive(Debug, Default)]
pub(crate) struct ArchiveState {
    count: u64,
    bytes: u64,
    loaded: bool,
}

/// The archive's in-memory state: counters under the writers' lock, and topic names under a
/// lock of their own, so that queries never wait for a write batch.
#[derive(Debug, Default)]
pub(crate) struct ArchiveLock {
    state: Mutex<ArchiveState>,
    topics: RwLock<TopicNames>,
}

/// The bookkeeping bytes of one message besides its record: the three keys and the two
/// index values.
const ENTRY_OVERHEAD: u64 = 48 + 40 + 12 + 32 + 16;

const FLAG_VERSION: u8 = 1;
const FLAG_META: u8 = 2;
const FLAG_PROOF: u8 = 4;

/// The key of a (pubsub, content) topic pair.
pub fn topic_key(pubsub: &str, content: &str) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(pubsub.as_bytes());
    hasher.update([0u8]);
    hasher.update(content.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

fn time_bytes(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

fn time_from(bytes: &[u8]) -> Result<i64, DbError> {
    Ok((decode_u64_be(bytes, "archive time")? ^ (1 << 63)) as i64)
}

fn message_key(topic: u64, time: i64, hash: &[u8; 32]) -> [u8; 48] {
    let mut key = [0u8; 48];
    key[..8].copy_from_slice(&topic.to_be_bytes());
    key[8..16].copy_from_slice(&time_bytes(time));
    key[16..].copy_from_slice(hash);
    key
}

fn time_key(time: i64, hash: &[u8; 32]) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..8].copy_from_slice(&time_bytes(time));
    key[8..].copy_from_slice(hash);
    key
}

/// The bytes one message counts for in the archive's size (and so in `size:` retention): its
/// record and its index entries, as the RocksDB archive stores them. The PostgreSQL archive
/// counts messages the same way, so one retention setting means the same on both.
pub fn entry_size(m: &ArchivedMessage) -> u64 {
    encode_record(m).len() as u64 + ENTRY_OVERHEAD
}

fn encode_record(m: &ArchivedMessage) -> Vec<u8> {
    let mut flags = 0u8;
    let mut out = Vec::with_capacity(m.payload.len() + 16);
    out.push(0);
    if let Some(version) = m.version {
        flags |= FLAG_VERSION;
        out.extend_from_slice(&version.to_be_bytes());
    }
    if let Some(meta) = &m.meta {
        flags |= FLAG_META;
        out.extend_from_slice(&(meta.len() as u32).to_be_bytes());
        out.extend_from_slice(meta);
    }
    if let Some(proof) = &m.proof {
        flags |= FLAG_PROOF;
        out.extend_from_slice(&(proof.len() as u32).to_be_bytes());
        out.extend_from_slice(proof);
    }
    out[0] = flags;
    out.extend_from_slice(&m.payload);
    out
}

struct Record {
    version: Option<u32>,
    meta: Option<Vec<u8>>,
    proof: Option<Vec<u8>>,
    payload: Vec<u8>,
}

fn decode_record(bytes: &[u8]) -> Result<Record, DbError> {
    let corrupt = |what: &str| DbError::Corrupt(format!("archive record: {what}"));
    let (&flags, mut rest) = bytes.split_first().ok_or_else(|| corrupt("empty"))?;
    let mut take = |n: usize| -> Result<&[u8], DbError> {
        if rest.len() < n {
            return Err(corrupt("truncated"));
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let u32_of = |b: &[u8]| -> u32 {
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        u32::from_be_bytes(a)
    };
    let version = if flags & FLAG_VERSION != 0 {
        Some(u32_of(take(4)?))
    } else {
        None
    };
    let meta = if flags & FLAG_META != 0 {
        let n = u32_of(take(4)?) as usize;
        Some(take(n)?.to_vec())
    } else {
        None
    };
    let proof = if flags & FLAG_PROOF != 0 {
        let n = u32_of(take(4)?) as usize;
        Some(take(n)?.to_vec())
    } else {
        None
    };
    Ok(Record {
        version,
        meta,
        proof,
        payload: rest.to_vec(),
    })
}

fn decode_names(bytes: &[u8]) -> Result<(String, String), DbError> {
    let corrupt = || DbError::Corrupt("archive topic names".into());
    if bytes.len() < 4 {
        return Err(corrupt());
    }
    let mut n = [0u8; 4];
    n.copy_from_slice(&bytes[..4]);
    let n = u32::from_be_bytes(n) as usize;
    let names = &bytes[4..];
    if names.len() < n {
        return Err(corrupt());
    }
    let pubsub = std::str::from_utf8(&names[..n]).map_err(|_| corrupt())?;
    let content = std::str::from_utf8(&names[n..]).map_err(|_| corrupt())?;
    Ok((pubsub.to_string(), content.to_string()))
}

fn encode_names(pubsub: &str, content: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + pubsub.len() + content.len());
    out.extend_from_slice(&(pubsub.len() as u32).to_be_bytes());
    out.extend_from_slice(pubsub.as_bytes());
    out.extend_from_slice(content.as_bytes());
    out
}

/// A position in the (time, hash) order.
type Position = (i64, [u8; 32]);

/// One entry found by a scan, before its record is read.
struct Found {
    position: Position,
    topic: u64,
    record: Option<Vec<u8>>,
}

impl RlnDb {
    fn archive_state(&self) -> Result<MutexGuard<'_, ArchiveState>, DbError> {
        let mut state = self
            .archive
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !state.loaded {
            let count = self.archive_meta(META_ARCHIVE_COUNT)?;
            let bytes = self.archive_meta(META_ARCHIVE_BYTES)?;
            let mut topics = HashMap::new();
            for item in self
                .db
                .iterator_cf(self.cf(CF_ARCHIVE_TOPICS)?, IteratorMode::Start)
            {
                let (key, value) = item.map_err(rocks("reading the archive's topics"))?;
                topics.insert(
                    decode_u64_be(&key, "archive topic key")?,
                    decode_names(&value)?,
                );
            }
            *self.topic_names_mut() = topics;
            *state = ArchiveState {
                count,
                bytes,
                loaded: true,
            };
        }
        Ok(state)
    }

    fn topic_names_mut(&self) -> RwLockWriteGuard<'_, TopicNames> {
        self.archive
            .topics
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The topic names (loaded with the counters on first use).
    fn topic_names(&self) -> Result<RwLockReadGuard<'_, TopicNames>, DbError> {
        drop(self.archive_state()?);
        Ok(self
            .archive
            .topics
            .read()
            .unwrap_or_else(PoisonError::into_inner))
    }

    fn archive_meta(&self, key: &[u8]) -> Result<u64, DbError> {
        match self
            .db
            .get_cf(self.cf(CF_META)?, key)
            .map_err(rocks("reading the archive's counters"))?
        {
            Some(bytes) => decode_u64(&bytes, "archive counter"),
            None => Ok(0),
        }
    }

    fn archive_write(&self, batch: WriteBatch) -> Result<(), DbError> {
        // History is not worth an fsync per batch: the write-ahead log survives a killed
        // process, and a batch is applied whole or not at all.
        let mut options = WriteOptions::default();
        options.set_sync(false);
        self.db
            .write_opt(batch, &options)
            .map_err(rocks("writing to the message archive"))
    }

    /// Stores `messages` (one write batch); entries already stored are skipped.
    pub fn archive_insert(&self, messages: &[ArchivedMessage]) -> Result<Inserted, DbError> {
        let mut state = self.archive_state()?;
        let names = self
            .archive
            .topics
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let by_hash = self.cf(CF_ARCHIVE_HASH)?;
        let present = self
            .db
            .multi_get_cf(messages.iter().map(|m| (by_hash, m.hash)));
        let mut batch = WriteBatch::default();
        let mut seen = HashSet::with_capacity(messages.len());
        let mut new_topics: TopicNames = HashMap::new();
        let mut done = Inserted::default();
        let (mut count, mut bytes) = (state.count, state.bytes);
        for (m, present) in messages.iter().zip(present) {
            if present
                .map_err(rocks("looking up archived hashes"))?
                .is_some()
                || !seen.insert(m.hash)
            {
                done.duplicates += 1;
                continue;
            }
            let topic = topic_key(&m.pubsub_topic, &m.content_topic);
            let known = names.get(&topic).or_else(|| new_topics.get(&topic));
            match known {
                Some((p, c)) if p != &m.pubsub_topic || c != &m.content_topic => {
                    done.collisions += 1;
                    continue;
                }
                Some(_) => {}
                None => {
                    batch.put_cf(
                        self.cf(CF_ARCHIVE_TOPICS)?,
                        topic.to_be_bytes(),
                        encode_names(&m.pubsub_topic, &m.content_topic),
                    );
                    new_topics.insert(topic, (m.pubsub_topic.clone(), m.content_topic.clone()));
                }
            }
            let record = encode_record(m);
            let size = record.len() as u64 + ENTRY_OVERHEAD;
            let mut time_value = [0u8; 12];
            time_value[..8].copy_from_slice(&topic.to_be_bytes());
            time_value[8..].copy_from_slice(&(size as u32).to_be_bytes());
            let mut hash_value = [0u8; 16];
            hash_value[..8].copy_from_slice(&topic.to_be_bytes());
            hash_value[8..].copy_from_slice(&time_bytes(m.timestamp));
            batch.put_cf(
                self.cf(CF_ARCHIVE_MESSAGES)?,
                message_key(topic, m.timestamp, &m.hash),
                record,
            );
            batch.put_cf(
                self.cf(CF_ARCHIVE_TIME)?,
                time_key(m.timestamp, &m.hash),
                time_value,
            );
            batch.put_cf(by_hash, m.hash, hash_value);
            count += 1;
            bytes += size;
            done.stored += 1;
        }
        if done.stored == 0 {
            return Ok(done);
        }
        drop(names);
        let meta = self.cf(CF_META)?;
        batch.put_cf(meta, META_ARCHIVE_COUNT, count.to_le_bytes());
        batch.put_cf(meta, META_ARCHIVE_BYTES, bytes.to_le_bytes());
        // Names first: a query that finds the new entries finds their names too.
        self.topic_names_mut().extend(new_topics);
        self.archive_write(batch)?;
        state.count = count;
        state.bytes = bytes;
        Ok(done)
    }

    /// The archive's message count and bytes (cheap: kept in memory).
    pub fn archive_counts(&self) -> Result<(u64, u64), DbError> {
        let state = self.archive_state()?;
        Ok((state.count, state.bytes))
    }

    /// The archive's size and oldest entry.
    pub fn archive_stats(&self) -> Result<ArchiveStats, DbError> {
        let (count, bytes) = {
            let state = self.archive_state()?;
            (state.count, state.bytes)
        };
        let oldest = match self
            .db
            .iterator_cf(self.cf(CF_ARCHIVE_TIME)?, IteratorMode::Start)
            .next()
        {
            Some(item) => {
                let (key, _) = item.map_err(rocks("reading the archive"))?;
                Some(time_from(&key[..8])?)
            }
            None => None,
        };
        Ok(ArchiveStats {
            count,
            bytes,
            oldest,
        })
    }

    /// Timestamp of the newest archived message.
    pub fn archive_newest(&self) -> Result<Option<i64>, DbError> {
        match self
            .db
            .iterator_cf(self.cf(CF_ARCHIVE_TIME)?, IteratorMode::End)
            .next()
        {
            Some(item) => {
                let (key, _) = item.map_err(rocks("reading the archive"))?;
                Ok(Some(time_from(&key[..8])?))
            }
            None => Ok(None),
        }
    }

    /// Where the entry with this hash sits, if stored: its topic key and position.
    fn archive_locate(&self, hash: &[u8; 32]) -> Result<Option<(u64, i64)>, DbError> {
        let Some(value) = self
            .db
            .get_cf(self.cf(CF_ARCHIVE_HASH)?, hash)
            .map_err(rocks("looking up an archived hash"))?
        else {
            return Ok(None);
        };
        if value.len() != 16 {
            return Err(DbError::Corrupt(
                "archive hash entry is not 16 bytes".into(),
            ));
        }
        Ok(Some((
            decode_u64_be(&value[..8], "archive topic key")?,
            time_from(&value[8..])?,
        )))
    }

    /// Whether a message with this hash is stored.
    pub fn archive_contains(&self, hash: &[u8; 32]) -> Result<bool, DbError> {
        Ok(self.archive_locate(hash)?.is_some())
    }

    /// One page of `query`. A cursor that names no stored entry is
    /// [`DbError::UnknownCursor`].
    pub fn archive_query(&self, query: &ArchiveQuery) -> Result<ArchivePage, DbError> {
        let limit = query.limit.max(1);
        let cursor = match &query.cursor {
            Some(hash) => match self.archive_locate(hash)? {
                Some((_, time)) => Some((time, *hash)),
                None => return Err(DbError::UnknownCursor),
            },
            None => None,
        };
        let mut found = Vec::new();
        match &query.selection {
            Selection::Topics { pubsub, content } => {
                let unique: HashSet<u64> = content.iter().map(|c| topic_key(pubsub, c)).collect();
                for topic in unique {
                    self.scan(Some(topic), query, cursor, limit + 1, &mut found)?;
                }
            }
            Selection::All => self.scan(None, query, cursor, limit + 1, &mut found)?,
        }
        found.sort_by_key(|a| a.position);
        if !query.forward {
            found.reverse();
        }
        let more = found.len() > limit;
        found.truncate(limit);
        if !query.forward {
            found.reverse();
        }
        let messages = self.materialise(found)?;
        Ok(ArchivePage { messages, more })
    }

    /// Scans one topic (or the global order) in the query's direction, adding at most `take`
    /// entries to `out`.
    fn scan(
        &self,
        topic: Option<u64>,
        query: &ArchiveQuery,
        cursor: Option<Position>,
        take: usize,
        out: &mut Vec<Found>,
    ) -> Result<(), DbError> {
        let (cf, prefix): (_, Vec<u8>) = match topic {
            Some(t) => (self.cf(CF_ARCHIVE_MESSAGES)?, t.to_be_bytes().to_vec()),
            None => (self.cf(CF_ARCHIVE_TIME)?, Vec::new()),
        };
        let key_of = |time: i64, hash: &[u8; 32]| {
            let mut k = prefix.clone();
            k.extend_from_slice(&time_bytes(time));
            k.extend_from_slice(hash);
            k
        };
        // Bounds as keys: [lower, upper) on the full key.
        let lower = key_of(query.start.unwrap_or(i64::MIN), &[0u8; 32]);
        let upper = match query.end {
            Some(end) => {
                let mut k = prefix.clone();
                k.extend_from_slice(&time_bytes(end));
                k
            }
            None => key_of(i64::MAX, &[0xff; 32]),
        };
        let cursor_key = cursor.map(|(time, hash)| key_of(time, &hash));
        let in_range = |key: &[u8]| {
            key.len() == prefix.len() + 40
                && key.starts_with(&prefix)
                && key >= lower.as_slice()
                && (key < upper.as_slice() || (query.end.is_none() && key == upper.as_slice()))
        };
        let from = if query.forward {
            match &cursor_key {
                Some(c) if c.as_slice() >= lower.as_slice() => c.clone(),
                _ => lower.clone(),
            }
        } else {
            match &cursor_key {
                Some(c) if c.as_slice() <= upper.as_slice() => c.clone(),
                _ => upper.clone(),
            }
        };
        let direction = if query.forward {
            Direction::Forward
        } else {
            Direction::Reverse
        };
        let mut added = 0;
        for item in self
            .db
            .iterator_cf(cf, IteratorMode::From(&from, direction))
        {
            let (key, value) = item.map_err(rocks("reading the message archive"))?;
            if cursor_key.as_deref() == Some(&key[..]) {
                continue;
            }
            if !in_range(&key) {
                // Past the bound in the walk's direction (or outside the topic): done. A
                // reverse walk from `upper` may start on `upper` itself or above it.
                let past = if query.forward {
                    true
                } else {
                    key.as_ref() < lower.as_slice() || !key.starts_with(&prefix)
                };
                if past {
                    break;
                }
                continue;
            }
            let p = prefix.len();
            let time = time_from(&key[p..p + 8])?;
            let hash = decode_hash(&key[p + 8..], "archive key hash")?;
            let (topic, record) = match topic {
                Some(t) => (t, Some(value.to_vec())),
                None => (
                    decode_u64_be(&value[..8.min(value.len())], "archive topic key")?,
                    None,
                ),
            };
            out.push(Found {
                position: (time, hash),
                topic,
                record,
            });
            added += 1;
            if added == take {
                break;
            }
        }
        Ok(())
    }

    /// Reads the records (where the scan did not) and the topic names of `found`.
    fn materialise(&self, found: Vec<Found>) -> Result<Vec<ArchivedMessage>, DbError> {
        let messages_cf = self.cf(CF_ARCHIVE_MESSAGES)?;
        let missing: Vec<[u8; 48]> = found
            .iter()
            .filter(|f| f.record.is_none())
            .map(|f| message_key(f.topic, f.position.0, &f.position.1))
            .collect();
        let mut fetched = self
            .db
            .multi_get_cf(missing.iter().map(|k| (messages_cf, k)))
            .into_iter();
        let topics = self.archive_topics_of(found.iter().map(|f| f.topic))?;
        let mut out = Vec::with_capacity(found.len());
        for f in found {
            let record = match f.record {
                Some(r) => r,
                None => match fetched.next() {
                    Some(Ok(Some(r))) => r,
                    // Pruned between the index read and this one.
                    Some(Ok(None)) | None => continue,
                    Some(Err(e)) => {
                        return Err(DbError::Rocks {
                            context: "reading archived messages",
                            source: e,
                        })
                    }
                },
            };
            let Some((pubsub, content)) = topics.get(&f.topic) else {
                continue;
            };
            let r = decode_record(&record)?;
            out.push(ArchivedMessage {
                hash: f.position.1,
                pubsub_topic: pubsub.clone(),
                content_topic: content.clone(),
                timestamp: f.position.0,
                payload: r.payload,
                version: r.version,
                meta: r.meta,
                proof: r.proof,
            });
        }
        Ok(out)
    }

    fn archive_topics_of(&self, keys: impl Iterator<Item = u64>) -> Result<TopicNames, DbError> {
        let names = self.topic_names()?;
        Ok(keys
            .filter_map(|k| names.get(&k).map(|n| (k, n.clone())))
            .collect())
    }

    /// The stored messages among `hashes`, in ascending (timestamp, hash) order.
    pub fn archive_lookup(&self, hashes: &[[u8; 32]]) -> Result<Vec<ArchivedMessage>, DbError> {
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        for hash in hashes {
            if !seen.insert(*hash) {
                continue;
            }
            if let Some((topic, time)) = self.archive_locate(hash)? {
                found.push(Found {
                    position: (time, *hash),
                    topic,
                    record: None,
                });
            }
        }
        found.sort_by_key(|a| a.position);
        self.materialise(found)
    }

    /// Deletes the oldest entries until every bound of `retention` holds at `now_ns`, at most
    /// `max_removed` of them in one write batch; returns how many went. Call it until it
    /// returns 0 (the pruning task does, once per interval).
    pub fn archive_prune(
        &self,
        retention: &Retention,
        now_ns: i64,
        max_removed: usize,
    ) -> Result<usize, DbError> {
        let mut state = self.archive_state()?;
        let cutoff_time = retention
            .max_age_ns
            .map(|age| now_ns.saturating_sub(age.min(i64::MAX as u64) as i64));
        let time_cf = self.cf(CF_ARCHIVE_TIME)?;
        let (mut count, mut bytes) = (state.count, state.bytes);
        let mut doomed: Vec<(i64, [u8; 32], u64)> = Vec::new();
        let mut first_kept: Option<Vec<u8>> = None;
        for item in self.db.iterator_cf(time_cf, IteratorMode::Start) {
            let (key, value) = item.map_err(rocks("reading the message archive"))?;
            let time = time_from(&key[..8])?;
            let too_old = cutoff_time.is_some_and(|cut| time < cut);
            let too_many = retention.max_count.is_some_and(|max| count > max);
            let too_big = retention.max_bytes.is_some_and(|max| bytes > max);
            if !(too_old || too_many || too_big) || doomed.len() == max_removed {
                first_kept = Some(key.to_vec());
                break;
            }
            if value.len() != 12 {
                return Err(DbError::Corrupt(
                    "archive time entry is not 12 bytes".into(),
                ));
            }
            let topic = decode_u64_be(&value[..8], "archive topic key")?;
            let mut size = [0u8; 4];
            size.copy_from_slice(&value[8..]);
            count = count.saturating_sub(1);
            bytes = bytes.saturating_sub(u64::from(u32::from_be_bytes(size)));
            doomed.push((time, decode_hash(&key[8..], "archive key hash")?, topic));
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        let mut batch = WriteBatch::default();
        let first = time_key(i64::MIN, &[0u8; 32]);
        let end = first_kept.unwrap_or_else(|| time_key(i64::MAX, &[0xff; 32]).to_vec());
        batch.delete_range_cf(time_cf, first.as_slice(), end.as_slice());
        if end == time_key(i64::MAX, &[0xff; 32]) {
            batch.delete_cf(time_cf, &end);
        }
        // Per topic, everything up to and including its newest doomed entry goes: entries
        // of a topic are doomed in the same order they sit in its range.
        let mut newest: HashMap<u64, Position> = HashMap::new();
        for (time, hash, topic) in &doomed {
            newest.insert(*topic, (*time, *hash));
        }
        let messages_cf = self.cf(CF_ARCHIVE_MESSAGES)?;
        let hash_cf = self.cf(CF_ARCHIVE_HASH)?;
        for (topic, (time, hash)) in &newest {
            let from = message_key(*topic, i64::MIN, &[0u8; 32]);
            let to = message_key(*topic, *time, hash);
            batch.delete_range_cf(messages_cf, from, to);
            batch.delete_cf(messages_cf, to);
        }
        for (_, hash, _) in &doomed {
            batch.delete_cf(hash_cf, hash);
        }
        let meta = self.cf(CF_META)?;
        batch.put_cf(meta, META_ARCHIVE_COUNT, count.to_le_bytes());
        batch.put_cf(meta, META_ARCHIVE_BYTES, bytes.to_le_bytes());
        // Topics left without messages are forgotten.
        let mut emptied = Vec::new();
        for (topic, (time, hash)) in &newest {
            let after = message_key(*topic, *time, hash);
            let next = self
                .db
                .iterator_cf(messages_cf, IteratorMode::From(&after, Direction::Forward))
                .find(|item| item.as_ref().map_or(true, |(k, _)| k.as_ref() != after));
            let still_used = match next {
                Some(item) => {
                    let (key, _) = item.map_err(rocks("reading the message archive"))?;
                    key.starts_with(&topic.to_be_bytes())
                }
                None => false,
            };
            if !still_used {
                batch.delete_cf(self.cf(CF_ARCHIVE_TOPICS)?, topic.to_be_bytes());
                emptied.push(*topic);
            }
        }
        self.archive_write(batch)?;
        state.count = count;
        state.bytes = bytes;
        let mut names = self.topic_names_mut();
        for topic in emptied {
            names.remove(&topic);
        }
        Ok(doomed.len())
    }

    /// Compacts the archive's column families (after large prunes, so range deletions free
    /// their space; and for measurements).
    pub fn archive_compact(&self) -> Result<(), DbError> {
        for name in ARCHIVE_COLUMN_FAMILIES {
            self.db
                .compact_range_cf(self.cf(name)?, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    /// Bytes of the archive's SST files on disk.
    pub fn archive_disk_bytes(&self) -> Result<u64, DbError> {
        let mut total = 0;
        for name in ARCHIVE_COLUMN_FAMILIES {
            total += self
                .db
                .property_int_value_cf(self.cf(name)?, "rocksdb.total-sst-files-size")
                .map_err(rocks("reading the archive's size"))?
                .unwrap_or(0);
        }
        Ok(total)
    }
}
