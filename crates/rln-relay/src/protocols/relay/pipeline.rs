//! The worker pool between the swarm task and the validator: a bounded queue (a full queue
//! makes the swarm ignore the message instead of blocking), blocking worker threads that take
//! whatever is waiting (up to a batch) and verify it together, and results sent back to the
//! swarm task as commands. Workers never touch the swarm.
//!
//! The node's own publications (REST, light push) queue here too ([`Pipeline::check`]), so
//! that every message the node lets out shares one bound and one batch with gossip; their
//! outcome goes back to the caller instead of the swarm task.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};
use libp2p::gossipsub::MessageId;
use libp2p::PeerId;
use rln_db::{MessageArchive, RlnDb, SpamEvidence};
use tokio::sync::{mpsc, oneshot};

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

/// What waits in the queue: gossip for the swarm task, or a local publication whose caller
/// waits for the outcome.
#[derive(Debug)]
enum Work {
    Gossip(Job),
    Local(Candidate, oneshot::Sender<Outcome>),
}

impl Work {
    fn candidate(&self) -> &Candidate {
        match self {
            Work::Gossip(job) => &job.candidate,
            Work::Local(candidate, _) => candidate,
        }
    }
}

/// The submitting side of the queue.
#[derive(Debug, Clone)]
pub struct Pipeline {
    tx: Sender<Work>,
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
        let (tx, rx) = bounded::<Work>(capacity.max(1));
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
        self.queue(Work::Gossip(job))
    }

    /// Queues one of the node's own publications; the outcome arrives on the receiver. Valid
    /// messages are recorded (nullifier) but not delivered: the caller delivers once the
    /// message is out. A full queue refuses at once, as for gossip.
    pub fn check(&self, candidate: Candidate) -> Result<oneshot::Receiver<Outcome>, Outcome> {
        let (reply, outcome) = oneshot::channel();
        self.queue(Work::Local(candidate, reply))?;
        Ok(outcome)
    }

    fn queue(&self, work: Work) -> Result<(), Outcome> {
        let queued = self.tx.try_send(work);
        self.metrics.queue_depth.set(self.tx.len() as i64);
        queued.map_err(|_| {
            let outcome = Outcome::Ignored(Reason::QueueFull);
            outcome.record(&self.metrics);
            outcome
        })
    }
}

fn work(validator: &Validator, rx: &Receiver<Work>, max_batch: usize, sinks: &Sinks) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(work) => batch.push(work),
                Err(_) => break,
            }
        }
        sinks.metrics.queue_depth.set(rx.len() as i64);
        let candidates: Vec<Candidate> = batch.iter().map(|w| w.candidate().clone()).collect();
        let outcomes = validator.validate_batch(&candidates);
        for (work, outcome) in batch.into_iter().zip(outcomes) {
            outcome.record(&sinks.metrics);
            if let Outcome::Spam { evidence, .. } = &outcome {
                handle_spam(evidence.as_ref(), sinks);
            }
            match work {
                Work::Gossip(job) => {
                    if outcome == Outcome::Valid {
                        let c = &job.candidate;
                        sinks
                            .hub
                            .deliver_hashed(&c.topic, c.message.clone(), c.hash);
                    }
                    // The swarm task is gone only at shutdown.
                    let _ = sinks.verdicts.blocking_send(Validated {
                        id: job.id,
                        source: job.source,
                        outcome,
                    });
                }
                // A caller that gave up waiting is not an error.
                Work::Local(_, reply) => {
                    let _ = reply.send(outcome);
                }
            }
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
