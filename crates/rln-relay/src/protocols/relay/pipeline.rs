//! The worker pool between the swarm task and the validator: a bounded queue (a full queue
//! makes the swarm ignore the message instead of blocking), blocking worker threads that take
//! whatever is waiting (up to a batch) and verify it together, and results sent back to the
//! swarm task as commands. Workers never touch the swarm.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};
use libp2p::gossipsub::MessageId;
use libp2p::PeerId;
use rln_db::{MessageArchive, RlnDb, SpamEvidence};
use tokio::sync::mpsc;

use super::validation::{Candidate, Outcome, Reason, Validator};
use crate::hub::Hub;
use crate::metrics::Metrics;

/// A message waiting for validation.
#[derive(Debug)]
pub struct Job {
    /// Gossipsub's id of it.
    pub id: MessageId,
    /// The peer it came from.
    pub source: PeerId,
    /// The decoded message.
    pub candidate: Candidate,
}

/// A validated message, on its way back to the swarm task.
#[derive(Debug)]
pub struct Validated {
    /// Gossipsub's id.
    pub id: MessageId,
    /// The peer it came from.
    pub source: PeerId,
    /// What validation found.
    pub outcome: Outcome,
}

/// Where the workers send what they find.
#[derive(Debug, Clone)]
pub struct Sinks {
    /// Results for the swarm task (bounded: a slow swarm task slows the workers down).
    pub verdicts: mpsc::Sender<Validated>,
    /// Valid messages for local subscribers.
    pub hub: Arc<Hub>,
    /// Woken when new spam evidence is stored (none when slashing is off): the slasher reads
    /// its work from the stored evidence, so nothing is lost when it is behind or restarted.
    pub spam: Option<Arc<tokio::sync::Notify>>,
    /// Where evidence is persisted.
    pub db: Arc<RlnDb>,
    /// The message archive (the Store's history; `db` itself unless `store.db_url` names a
    /// PostgreSQL server).
    pub archive: Arc<dyn MessageArchive>,
    /// Metrics.
    pub metrics: Metrics,
}

/// The submitting side of the queue.
#[derive(Debug, Clone)]
pub struct Pipeline {
    tx: Sender<Job>,
    metrics: Metrics,
}

impl Pipeline {
    /// Starts `workers` threads over a queue of `capacity` jobs; each takes up to
    /// `max_batch` waiting jobs at a time. The threads end when every `Pipeline` clone is
    /// dropped.
    pub fn start(
        validator: Arc<Validator>,
        workers: usize,
        capacity: usize,
        max_batch: usize,
        sinks: Sinks,
    ) -> std::io::Result<(Self, Vec<JoinHandle<()>>)> {
        let (tx, rx) = bounded::<Job>(capacity.max(1));
        let mut handles = Vec::with_capacity(workers);
        for n in 0..workers.max(1) {
            let rx = rx.clone();
            let validator = validator.clone();
            let sinks = sinks.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("rln-validate-{n}"))
                    .spawn(move || work(&validator, &rx, max_batch.max(1), &sinks))?,
            );
        }
        let metrics = sinks.metrics.clone();
        Ok((Self { tx, metrics }, handles))
    }

    /// Queues a job. A full queue (or workers gone) never blocks the caller: the message is
    /// ignored, and the outcome saying so (already counted in the metrics) comes back.
    pub fn submit(&self, job: Job) -> Result<(), Outcome> {
        let queued = self.tx.try_send(job);
        self.metrics.queue_depth.set(self.tx.len() as i64);
        queued.map_err(|_| {
            let outcome = Outcome::Ignored(Reason::QueueFull);
            outcome.record(&self.metrics);
            outcome
        })
    }
}

fn work(validator: &Validator, rx: &Receiver<Job>, max_batch: usize, sinks: &Sinks) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        sinks.metrics.queue_depth.set(rx.len() as i64);
        let candidates: Vec<Candidate> = jobs.iter().map(|j| j.candidate.clone()).collect();
        let outcomes = validator.validate_batch(&candidates);
        for (job, outcome) in jobs.into_iter().zip(outcomes) {
            outcome.record(&sinks.metrics);
            match &outcome {
                Outcome::Valid => sinks
                    .hub
                    .deliver(&job.candidate.topic, job.candidate.message.clone()),
                Outcome::Spam { evidence, .. } => handle_spam(evidence.as_ref(), sinks),
                _ => {}
            }
            // The swarm task is gone only at shutdown.
            let _ = sinks.verdicts.blocking_send(Validated {
                id: job.id,
                source: job.source,
                outcome,
            });
        }
    }
}

/// Persists spam evidence and hands it to the slasher, once per member and epoch.
pub(crate) fn handle_spam(evidence: &SpamEvidence, sinks: &Sinks) {
    tracing::warn!(
        epoch = evidence.epoch,
        member = %rln_core::fr_to_hex(&evidence.id_commitment),
        "double signal: a member exceeded its limit; secret recovered"
    );
    match sinks.db.record_spam(evidence) {
        Ok(true) => {
            if let Some(slasher) = &sinks.spam {
                slasher.notify_one();
            }
        }
        Ok(false) => {}
        Err(e) => tracing::error!("cannot persist spam evidence: {e}"),
    }
}
