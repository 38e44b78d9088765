//! The message archive in PostgreSQL, for operators who run several store nodes over one
//! history (`store.db_url`). Every node inserts what it relays into one table keyed by the
//! message hash, so a message relayed by every node is stored once, and a query to any node
//! sees what all of them stored.
//!
//! - One table, `rln_archive`: the hash (primary key), topics, timestamp, payload, version,
//!   meta, proof, and the message's size as the embedded archive counts it, so that `size:`
//!   retention means the same on both backends. Two indexes serve the two query shapes:
//!   `(timestamp, hash)` for unfiltered queries and retention, `(pubsub_topic, content_topic,
//!   timestamp, hash)` for content-filtered ones. `bytea` compares bytes unsigned, as the
//!   embedded archive orders hashes.
//! - A batch is one `INSERT … SELECT FROM unnest(…) ON CONFLICT (hash) DO NOTHING`, in hash order:
//!   two nodes writing the same message never store it twice, neither loses one, and two
//!   overlapping batches cannot deadlock.
//! - Pruning holds a transaction-scoped advisory lock, so two nodes pruning at once do not
//!   both delete for the same excess.
//! - Counting is a scan (`count(*)`), done by the pruning pass, not after every write.
//!
//! The client is the synchronous `postgres` crate; every method blocks (see
//! [`crate::backend`]). A lost connection is reopened on the next call. The connection has
//! no TLS: reach the server over a private network, a Unix socket or a tunnel.

use std::str::FromStr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use postgres::config::Host;
use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Row};

use crate::archive::{
    entry_size, ArchivePage, ArchiveQuery, ArchiveStats, ArchivedMessage, Inserted, Retention,
    Selection,
};
use crate::backend::MessageArchive;
use crate::error::DbError;

/// The schema this build writes and reads (in `rln_archive_meta`).
const SCHEMA_VERSION: i64 = 1;
/// Advisory lock key serialising schema creation and pruning across nodes ("rlnarchv").
const LOCK_KEY: i64 = 0x726c_6e61_7263_6876;
/// Connections for queries (the writer has its own).
const READERS: usize = 2;
/// Connect timeout when the URL sets none.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rln_archive_meta (
    key   TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS rln_archive (
    hash          BYTEA  PRIMARY KEY,
    pubsub_topic  TEXT   NOT NULL,
    content_topic TEXT   NOT NULL,
    timestamp     BIGINT NOT NULL,
    payload       BYTEA  NOT NULL,
    version       BIGINT,
    meta          BYTEA,
    proof         BYTEA,
    size          BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS rln_archive_by_time ON rln_archive (timestamp, hash);
CREATE INDEX IF NOT EXISTS rln_archive_by_topic
    ON rln_archive (pubsub_topic, content_topic, timestamp, hash);
";

const COLUMNS: &str = "hash, pubsub_topic, content_topic, timestamp, payload, version, meta, proof";

/// A PostgreSQL message archive.
pub struct PgArchive {
    config: Config,
    server: String,
    writer: Mutex<Option<Client>>,
    readers: Vec<Mutex<Option<Client>>>,
}

impl std::fmt::Debug for PgArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgArchive")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// `user@host:port/dbname` of a client configuration: what logs and errors show (never the
/// password).
pub fn describe_url(url: &str) -> String {
    match Config::from_str(url) {
        Ok(config) => describe(&config),
        Err(_) => "an unparsable PostgreSQL URL".into(),
    }
}

/// Checks that `url` is a PostgreSQL connection string naming a database; the error says
/// what is wrong without quoting the URL (it may hold a password).
pub fn check_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err("must be a postgres:// (or postgresql://) URL".into());
    }
    let config = Config::from_str(url).map_err(|e| format!("is not a PostgreSQL URL: {e}"))?;
    if config.get_dbname().is_none() {
        return Err("names no database (postgres://user@host:port/DATABASE)".into());
    }
    Ok(())
}

fn describe(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        config.get_user().unwrap_or("?"),
        config.get_dbname().unwrap_or("?")
    )
}

impl PgArchive {
    /// Connects to `url` (`postgres://user:password@host:port/dbname`, or the key=value
    /// form) and creates the archive's tables if they are missing. Blocks.
    pub fn connect(url: &str) -> Result<Self, DbError> {
        let mut config = Config::from_str(url).map_err(|e| DbError::Postgres {
            server: "the configured URL".into(),
            context: "parsing the URL",
            reason: e.to_string(),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let archive = Self {
            server: describe(&config),
            config,
            writer: Mutex::new(None),
            readers: (0..READERS).map(|_| Mutex::new(None)).collect(),
        };
        archive.create_schema()?;
        Ok(archive)
    }

    fn error(&self, context: &'static str) -> impl Fn(postgres::Error) -> DbError + '_ {
        move |e| DbError::Postgres {
            server: self.server.clone(),
            context,
            reason: e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().into()),
        }
    }

    fn not_connected(&self) -> DbError {
        DbError::Postgres {
            server: self.server.clone(),
            context: "connecting",
            reason: "no connection".into(),
        }
    }

    /// A live connection in `slot`, opened (again) when there is none or it was lost.
    fn open<'a>(
        &self,
        slot: &'a Mutex<Option<Client>>,
    ) -> Result<MutexGuard<'a, Option<Client>>, DbError> {
        let mut guard = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.as_ref().is_none_or(Client::is_closed) {
            let old = guard.take();
            drop_off_runtime(old);
            *guard = Some(
                self.config
                    .connect(NoTls)
                    .map_err(self.error("connecting"))?,
            );
        }
        Ok(guard)
    }

    /// Runs `f` on the connection in `slot`. After a failure the connection is dropped, so
    /// that the next call opens a new one (a server restarted, a connection cut).
    fn with<T>(
        &self,
        slot: &Mutex<Option<Client>>,
        f: impl FnOnce(&mut Client) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let mut guard = self.open(slot)?;
        let result = match guard.as_mut() {
            Some(client) => f(client),
            None => Err(self.not_connected()),
        };
        if matches!(result, Err(DbError::Postgres { .. })) {
            drop_off_runtime(guard.take());
        }
        result
    }

    /// Runs `f` on the writer's connection.
    fn write<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, DbError>) -> Result<T, DbError> {
        self.with(&self.writer, f)
    }

    /// Runs `f` on a reader connection: a free one if any, else the first.
    fn read<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, DbError>) -> Result<T, DbError> {
        let slot = self
            .readers
            .iter()
            .find(|slot| slot.try_lock().is_ok())
            .unwrap_or(&self.readers[0]);
        self.with(slot, f)
    }

    fn create_schema(&self) -> Result<(), DbError> {
        self.write(|client| {
            let mut tx = client
                .transaction()
                .map_err(self.error("creating the schema"))?;
            // Nodes starting together would race on CREATE TABLE IF NOT EXISTS.
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
                .map_err(self.error("creating the schema"))?;
            tx.batch_execute(SCHEMA)
                .map_err(self.error("creating the schema"))?;
            let found: Option<i64> = tx
                .query_opt(
                    "SELECT value FROM rln_archive_meta WHERE key = 'schema'",
                    &[],
                )
                .map_err(self.error("reading the schema version"))?
                .map(|row| row.try_get(0))
                .transpose()
                .map_err(self.error("reading the schema version"))?;
            match found {
                Some(SCHEMA_VERSION) => {}
                Some(other) => {
                    return Err(DbError::Postgres {
                        server: self.server.clone(),
                        context: "checking the schema",
                        reason: format!(
                            "the archive has schema {other}; this rln-node reads schema \
                             {SCHEMA_VERSION}; use another database"
                        ),
                    })
                }
                None => {
                    tx.execute(
                        "INSERT INTO rln_archive_meta (key, value) VALUES ('schema', $1)",
                        &[&SCHEMA_VERSION],
                    )
                    .map_err(self.error("writing the schema version"))?;
                }
            }
            tx.commit().map_err(self.error("creating the schema"))
        })
    }

    /// Drops every archived message (for tests and benchmarks starting from nothing).
    pub fn clear(&self) -> Result<(), DbError> {
        self.write(|client| {
            client
                .batch_execute("TRUNCATE rln_archive")
                .map_err(self.error("clearing the archive"))
        })
    }
}

/// Drops a client on a thread of its own: the synchronous client owns a small tokio runtime,
/// which must not be dropped on an async task (tokio panics), and the last reference to the
/// archive may well go there.
fn drop_off_runtime(client: Option<Client>) {
    if let Some(client) = client {
        let _ = std::thread::Builder::new()
            .name("rln-pg-close".into())
            .spawn(move || drop(client));
    }
}

impl Drop for PgArchive {
    fn drop(&mut self) {
        let writer = self
            .writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop_off_runtime(writer);
        for slot in &mut self.readers {
            drop_off_runtime(
                slot.get_mut()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take(),
            );
        }
    }
}

fn message_of(row: &Row) -> Result<ArchivedMessage, postgres::Error> {
    let hash: Vec<u8> = row.try_get(0)?;
    let version: Option<i64> = row.try_get(5)?;
    Ok(ArchivedMessage {
        // A hash of another length cannot come from rln-node's inserts; it reads as zeros,
        // which no query matches again.
        hash: hash.try_into().unwrap_or([0u8; 32]),
        pubsub_topic: row.try_get(1)?,
        content_topic: row.try_get(2)?,
        timestamp: row.try_get(3)?,
        payload: row.try_get(4)?,
        version: version.and_then(|v| u32::try_from(v).ok()),
        meta: row.try_get(6)?,
        proof: row.try_get(7)?,
    })
}

fn messages_of(rows: &[Row]) -> Result<Vec<ArchivedMessage>, postgres::Error> {
    rows.iter().map(message_of).collect()
}

impl MessageArchive for PgArchive {
    fn insert(&self, messages: &[ArchivedMessage]) -> Result<Inserted, DbError> {
        // Each hash once, in hash order: two nodes inserting overlapping batches then take
        // the rows' locks in one order, so neither waits on the other in a cycle (PostgreSQL
        // would abort one with "deadlock detected").
        let mut ordered: Vec<&ArchivedMessage> = messages.iter().collect();
        ordered.sort_by_key(|m| m.hash);
        ordered.dedup_by_key(|m| m.hash);
        if ordered.is_empty() {
            return Ok(Inserted::default());
        }
        // One statement per batch: the columns go as arrays and `unnest` turns them into
        // rows, so a batch costs one round trip instead of one per message.
        let hashes: Vec<&[u8]> = ordered.iter().map(|m| &m.hash[..]).collect();
        let pubsub: Vec<&str> = ordered.iter().map(|m| m.pubsub_topic.as_str()).collect();
        let content: Vec<&str> = ordered.iter().map(|m| m.content_topic.as_str()).collect();
        let times: Vec<i64> = ordered.iter().map(|m| m.timestamp).collect();
        let payloads: Vec<&[u8]> = ordered.iter().map(|m| m.payload.as_slice()).collect();
        let versions: Vec<Option<i64>> = ordered.iter().map(|m| m.version.map(i64::from)).collect();
        let metas: Vec<Option<&[u8]>> = ordered.iter().map(|m| m.meta.as_deref()).collect();
        let proofs: Vec<Option<&[u8]>> = ordered.iter().map(|m| m.proof.as_deref()).collect();
        let sizes: Vec<i64> = ordered.iter().map(|m| entry_size(m) as i64).collect();
        self.write(|client| {
            let stored = client
                .execute(
                    "INSERT INTO rln_archive (hash, pubsub_topic, content_topic, timestamp, \
                     payload, version, meta, proof, size) \
                     SELECT * FROM unnest($1::BYTEA[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], \
                     $5::BYTEA[], $6::BIGINT[], $7::BYTEA[], $8::BYTEA[], $9::BIGINT[]) \
                     ON CONFLICT (hash) DO NOTHING",
                    &[
                        &hashes, &pubsub, &content, &times, &payloads, &versions, &metas, &proofs,
                        &sizes,
                    ],
                )
                .map_err(self.error("storing messages"))? as usize;
            Ok(Inserted {
                stored,
                duplicates: messages.len() - stored,
                collisions: 0,
            })
        })
    }

    fn query(&self, query: &ArchiveQuery) -> Result<ArchivePage, DbError> {
        let context = "answering a store query";
        let limit = query.limit.max(1);
        self.read(|client| {
            let cursor = match &query.cursor {
                Some(hash) => {
                    let row = client
                        .query_opt(
                            "SELECT timestamp FROM rln_archive WHERE hash = $1",
                            &[&&hash[..]],
                        )
                        .map_err(self.error(context))?
                        .ok_or(DbError::UnknownCursor)?;
                    let time: i64 = row.try_get(0).map_err(self.error(context))?;
                    Some((time, hash.to_vec()))
                }
                None => None,
            };
            let mut sql = format!("SELECT {COLUMNS} FROM rln_archive WHERE TRUE");
            let mut params: Vec<Box<dyn ToSql + Sync>> = Vec::new();
            let mut bind = |sql: &mut String, clause: &str, value: Box<dyn ToSql + Sync>| {
                params.push(value);
                sql.push_str(&clause.replace('?', &format!("${}", params.len())));
            };
            if let Selection::Topics { pubsub, content } = &query.selection {
                bind(&mut sql, " AND pubsub_topic = ?", Box::new(pubsub.clone()));
                bind(
                    &mut sql,
                    " AND content_topic = ANY(?)",
                    Box::new(content.clone()),
                );
            }
            if let Some(start) = query.start {
                bind(&mut sql, " AND timestamp >= ?", Box::new(start));
            }
            if let Some(end) = query.end {
                bind(&mut sql, " AND timestamp < ?", Box::new(end));
            }
            let (compare, order) = if query.forward {
                (">", "ASC")
            } else {
                ("<", "DESC")
            };
            if let Some((time, hash)) = cursor {
                bind(
                    &mut sql,
                    &format!(" AND (timestamp, hash) {compare} (?"),
                    Box::new(time),
                );
                bind(&mut sql, ", ?)", Box::new(hash));
            }
            let take = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
            bind(
                &mut sql,
                &format!(" ORDER BY timestamp {order}, hash {order} LIMIT ?"),
                Box::new(take),
            );
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
            let rows = client.query(&sql, &refs).map_err(self.error(context))?;
            let mut messages = messages_of(&rows).map_err(self.error(context))?;
            let more = messages.len() > limit;
            messages.truncate(limit);
            if !query.forward {
                messages.reverse();
            }
            Ok(ArchivePage { messages, more })
        })
    }

    fn lookup(&self, hashes: &[[u8; 32]]) -> Result<Vec<ArchivedMessage>, DbError> {
        let context = "looking up messages";
        let keys: Vec<Vec<u8>> = hashes.iter().map(|h| h.to_vec()).collect();
        self.read(|client| {
            let rows = client
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM rln_archive WHERE hash = ANY($1) \
                         ORDER BY timestamp, hash"
                    ),
                    &[&keys],
                )
                .map_err(self.error(context))?;
            messages_of(&rows).map_err(self.error(context))
        })
    }

    fn contains(&self, hash: &[u8; 32]) -> Result<bool, DbError> {
        let context = "looking up a message";
        self.read(|client| {
            Ok(client
                .query_opt("SELECT 1 FROM rln_archive WHERE hash = $1", &[&&hash[..]])
                .map_err(self.error(context))?
                .is_some())
        })
    }

    fn newest(&self) -> Result<Option<i64>, DbError> {
        let context = "reading the newest message";
        self.read(|client| {
            let row = client
                .query_one("SELECT max(timestamp) FROM rln_archive", &[])
                .map_err(self.error(context))?;
            row.try_get(0).map_err(self.error(context))
        })
    }

    fn prune(
        &self,
        retention: &Retention,
        now_ns: i64,
        max_removed: usize,
    ) -> Result<usize, DbError> {
        let context = "enforcing the retention";
        if max_removed == 0 {
            return Ok(0);
        }
        let cutoff = retention
            .max_age_ns
            .map(|age| now_ns.saturating_sub(age.min(i64::MAX as u64) as i64));
        self.write(|client| {
            let mut tx = client.transaction().map_err(self.error(context))?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
                .map_err(self.error(context))?;
            let totals = tx
                .query_one(
                    "SELECT count(*), coalesce(sum(size), 0)::BIGINT FROM rln_archive",
                    &[],
                )
                .map_err(self.error(context))?;
            let count: i64 = totals.try_get(0).map_err(self.error(context))?;
            let bytes: i64 = totals.try_get(1).map_err(self.error(context))?;
            let (mut count, mut bytes) = (count as u64, bytes as u64);
            let take = i64::try_from(max_removed).unwrap_or(i64::MAX);
            let oldest = tx
                .query(
                    "SELECT hash, timestamp, size FROM rln_archive \
                     ORDER BY timestamp, hash LIMIT $1",
                    &[&take],
                )
                .map_err(self.error(context))?;
            let mut doomed: Vec<Vec<u8>> = Vec::new();
            for row in &oldest {
                let time: i64 = row.try_get(1).map_err(self.error(context))?;
                let too_old = cutoff.is_some_and(|cut| time < cut);
                let too_many = retention.max_count.is_some_and(|max| count > max);
                let too_big = retention.max_bytes.is_some_and(|max| bytes > max);
                if !(too_old || too_many || too_big) {
                    break;
                }
                let size: i64 = row.try_get(2).map_err(self.error(context))?;
                count = count.saturating_sub(1);
                bytes = bytes.saturating_sub(size.max(0) as u64);
                doomed.push(row.try_get(0).map_err(self.error(context))?);
            }
            if doomed.is_empty() {
                return Ok(0);
            }
            let removed = tx
                .execute("DELETE FROM rln_archive WHERE hash = ANY($1)", &[&doomed])
                .map_err(self.error(context))?;
            tx.commit().map_err(self.error(context))?;
            Ok(removed as usize)
        })
    }

    fn stats(&self) -> Result<ArchiveStats, DbError> {
        let context = "counting the archive";
        self.read(|client| {
            let row = client
                .query_one(
                    "SELECT count(*), coalesce(sum(size), 0)::BIGINT, min(timestamp) \
                     FROM rln_archive",
                    &[],
                )
                .map_err(self.error(context))?;
            let count: i64 = row.try_get(0).map_err(self.error(context))?;
            let bytes: i64 = row.try_get(1).map_err(self.error(context))?;
            Ok(ArchiveStats {
                count: count.max(0) as u64,
                bytes: bytes.max(0) as u64,
                oldest: row.try_get(2).map_err(self.error(context))?,
            })
        })
    }

    fn cached_counts(&self) -> Option<(u64, u64)> {
        None
    }

    fn describe(&self) -> String {
        format!("PostgreSQL ({})", self.server)
    }
}
