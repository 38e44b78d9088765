//! Feeding the message archive (a `rln_db::MessageArchive`: RocksDB or PostgreSQL) off the
//! validation path, and keeping it
//! within its retention.
//!
//! Validation workers and publishers only [`ArchiveSender::offer`]: a `try_send` on a bounded
//! queue, never a wait. One writer thread takes whatever is queued (up to a batch) and
//! stores it in one write (a RocksDB write batch, a PostgreSQL transaction); when the writer falls behind, the queue fills and
//! further messages are dropped from the history (counted), never delaying relay. A tokio
//! task prunes the archive back within its [`Retention`] every interval.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use rln_db::{ArchivedMessage, MessageArchive, Retention};
use tokio::sync::watch;

use crate::clock::now_nanos;
use crate::metrics::{Metrics, ResultLabel};
use crate::wire::WakuMessage;

/// How the archive is fed and bounded.
#[derive(Debug, Clone)]
pub struct ArchiveSettings {
    /// Messages waiting for the writer; more are dropped from the history.
    pub queue: usize,
    /// Messages per write batch at most.
    pub max_batch: usize,
    /// A message whose timestamp is further than this from the receive time is not stored.
    pub max_clock_gap: Duration,
    /// What to keep.
    pub retention: Retention,
    /// Store each message's RLN proof (what lets another rln-node check the history when it
    /// resumes from this one; about a third of a KiB per message).
    pub keep_proofs: bool,
    /// How often retention is enforced.
    pub prune_interval: Duration,
}

/// The offering side of the writer's queue.
#[derive(Debug, Clone)]
pub struct ArchiveSender {
    tx: Sender<ArchivedMessage>,
    max_clock_gap: Duration,
    keep_proofs: bool,
    metrics: Metrics,
}

impl ArchiveSender {
    fn count(&self, result: &str) {
        self.metrics
            .store_archived
            .get_or_create(&ResultLabel {
                result: result.to_string(),
            })
            .inc();
    }

    /// Offers a valid message for the archive. Ephemeral messages, and messages without a
    /// timestamp or with one outside the clock gap, are not stored; a full queue drops it.
    pub fn offer(&self, topic: &str, message: &WakuMessage, hash: [u8; 32]) {
        let gap = self.max_clock_gap.as_nanos().min(i64::MAX as u128) as i64;
        let storable = message.ephemeral != Some(true)
            && message
                .timestamp
                .is_some_and(|t| t.abs_diff(now_nanos()) <= gap as u64);
        if !storable {
            self.count("skipped");
            return;
        }
        let Some(entry) = archived(topic.to_string(), message.clone(), hash, self.keep_proofs)
        else {
            return;
        };
        if self.tx.try_send(entry).is_err() {
            self.count("dropped");
        }
    }
}

/// Starts the writer thread on `archive`; it stores what is queued and ends once `shutdown`
/// is set (or every sender is gone).
pub fn start_writer(
    archive: Arc<dyn MessageArchive>,
    settings: &ArchiveSettings,
    metrics: Metrics,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<(ArchiveSender, JoinHandle<()>)> {
    let (tx, rx) = bounded(settings.queue.max(1));
    let max_batch = settings.max_batch.max(1);
    let thread = {
        let metrics = metrics.clone();
        std::thread::Builder::new()
            .name("rln-archive".into())
            .spawn(move || write(archive.as_ref(), &rx, max_batch, &shutdown, &metrics))?
    };
    let sender = ArchiveSender {
        tx,
        max_clock_gap: settings.max_clock_gap,
        keep_proofs: settings.keep_proofs,
        metrics,
    };
    Ok((sender, thread))
}

/// The archive's form of a message relayed on `topic` (`None` without a timestamp, which
/// orders the archive).
pub fn archived(
    topic: String,
    message: WakuMessage,
    hash: [u8; 32],
    keep_proof: bool,
) -> Option<ArchivedMessage> {
    Some(ArchivedMessage {
        hash,
        pubsub_topic: topic,
        content_topic: message.content_topic,
        timestamp: message.timestamp?,
        payload: message.payload,
        version: message.version,
        meta: message.meta,
        proof: message.rate_limit_proof.filter(|_| keep_proof),
    })
}

fn write(
    archive: &dyn MessageArchive,
    rx: &Receiver<ArchivedMessage>,
    max_batch: usize,
    shutdown: &watch::Receiver<bool>,
    metrics: &Metrics,
) {
    let count = |result: &str, n: usize| {
        metrics
            .store_archived
            .get_or_create(&ResultLabel {
                result: result.to_string(),
            })
            .inc_by(n as u64);
    };
    loop {
        let first = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(first) => first,
            Err(RecvTimeoutError::Timeout) if !*shutdown.borrow() => continue,
            // Stopping with nothing queued, or every sender gone.
            Err(_) => return,
        };
        let mut batch = Vec::with_capacity(max_batch);
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        match archive.insert(&batch) {
            Ok(done) => {
                count("stored", done.stored);
                count("duplicate", done.duplicates);
                count("failed", done.collisions);
                if done.collisions > 0 {
                    tracing::warn!(
                        n = done.collisions,
                        "messages not archived: their topic's key collides with another topic's"
                    );
                }
            }
            Err(e) => {
                count("failed", batch.len());
                tracing::error!("archiving {} messages failed: {e}", batch.len());
            }
        }
        // Where counting is a scan (PostgreSQL), the pruning pass keeps the gauges.
        if let Some((count, bytes)) = archive.cached_counts() {
            metrics.store_messages.set(count as i64);
            metrics.store_bytes.set(bytes as i64);
        }
    }
}

/// Messages removed per write batch when pruning.
const PRUNE_BATCH: usize = 10_000;

/// Enforces `retention` on `archive` every `interval` until shutdown, and keeps the
/// archive's gauges current.
pub async fn prune(
    archive: Arc<dyn MessageArchive>,
    retention: Retention,
    interval: Duration,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(10)));
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let archive = archive.clone();
        let metrics = metrics.clone();
        let pass = tokio::task::spawn_blocking(move || -> Result<usize, rln_db::DbError> {
            let mut removed = 0;
            loop {
                let n = archive.prune(&retention, now_nanos(), PRUNE_BATCH)?;
                removed += n;
                if n < PRUNE_BATCH {
                    break;
                }
            }
            let stats = archive.stats()?;
            metrics.store_messages.set(stats.count as i64);
            metrics.store_bytes.set(stats.bytes as i64);
            metrics
                .store_oldest_seconds
                .set(stats.oldest.map_or(0, |t| t / 1_000_000_000));
            Ok(removed)
        })
        .await;
        match pass {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::debug!(removed = n, "archive pruned"),
            Ok(Err(e)) => tracing::error!("pruning the archive failed: {e}"),
            Err(_) => tracing::error!("the archive pruning pass panicked"),
        }
    }
}
