//! The one way a node puts a message of its own on the network: REST, the CLI (through REST)
//! and light push all come here (ARCHITECTURE.md, "The path of a message").
//!
//! [`Outbox::publish`] checks that a peer relays the topic and that the message fits, stamps
//! it, proves it when asked (the node's membership, for itself or within a light client's
//! share), validates it through the same bounded pipeline as gossip (the node's own proofs
//! skip only the Groth16 check), publishes it, and delivers it locally: REST caches, the
//! archive and filter subscribers. Every way it can fail is a [`Refusal`]; light push and
//! REST each keep one mapping from it to what their wire says.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use libp2p::PeerId;
use rln_core::epoch_at;
use thiserror::Error;

use super::pipeline::Pipeline;
use super::publisher::{fits_with_proof, MessageIdChoice, Publisher};
use super::validation::{Candidate, Outcome, Reason};
use crate::clock::now_nanos;
use crate::error::RelayError;
use crate::handle::NetworkHandle;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::wire::WakuMessage;

/// Where a publication's proof comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// The node proves with its membership for itself (REST, CLI), choosing the message id
    /// as given. [`MessageIdChoice::Forced`] is a device for demonstrating spam detection:
    /// such a message is published without local validation (it is meant to be a double
    /// signal) and is not delivered locally.
    Own(MessageIdChoice),
    /// The node proves with its membership for a light client, within the client's share of
    /// the limit.
    ForClient(PeerId),
    /// The message carries its sender's proof, verified like any relayed one; `from` is
    /// blamed for a bad one.
    Carried {
        /// The peer that handed it over.
        from: Option<PeerId>,
    },
}

/// A message to publish.
#[derive(Debug, Clone)]
pub struct Publication {
    /// The pubsub topic.
    pub topic: String,
    /// The message (its timestamp is set to now when absent).
    pub message: WakuMessage,
    /// Where its proof comes from.
    pub proof: Proof,
}

/// A message that went out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The message as sent, with its timestamp and proof.
    pub message: WakuMessage,
    /// Its Waku message hash on the topic.
    pub hash: [u8; 32],
    /// Peers on the topic it was sent to.
    pub peers: usize,
}

/// Why a message was not published. Nothing after a refusal was sent; where a message id
/// was spent on it, the refusal says so only through the remaining count.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No connected peer relays the topic (checked before any proof).
    #[error("no connected peer relays {topic} yet")]
    NoPeers {
        /// The topic.
        topic: String,
    },
    /// The message (with its proof) would exceed the network's size limit.
    #[error("{0}")]
    TooLarge(String),
    /// The message is not acceptable as given (a negative timestamp, say).
    #[error("invalid message: {0}")]
    Invalid(String),
    /// The node has no membership to prove with.
    #[error("this node has no RLN membership; start it with a keystore to publish")]
    NoMembership,
    /// The node does not prove for light clients.
    #[error("the message has no proof and this node does not prove for light clients")]
    NoProofService,
    /// The message's timestamp is too far from the clock for a proof to be accepted.
    #[error(
        "the message's timestamp is {gap_secs} s from this node's clock; at most {max_secs} s \
         are accepted (leave it out and the node stamps the message)"
    )]
    ClockGap {
        /// Timestamp minus now, in seconds.
        gap_secs: i64,
        /// The rule.
        max_secs: u64,
    },
    /// A light client used its share of the limit in this epoch.
    #[error(
        "this client's share of {share} messages in epoch {epoch} is used; the next epoch \
         starts in {} s",
        next_epoch_in.as_secs().max(1)
    )]
    ShareUsed {
        /// The client's share.
        share: u64,
        /// The epoch.
        epoch: u64,
        /// Time until the next epoch.
        next_epoch_in: Duration,
    },
    /// Every message id of the epoch is used.
    #[error(
        "the message limit of {limit} per epoch is used up; the next epoch starts in {} s",
        next_epoch_in.as_secs().max(1)
    )]
    LimitReached {
        /// The membership's limit.
        limit: u64,
        /// Time until the next epoch.
        next_epoch_in: Duration,
    },
    /// The message-id ledger has no record of this epoch for the membership (see
    /// `RelayError::Unrecorded`, whose text, with the ledger's path, goes to the log).
    #[error(
        "the message-id ledger has no record of the ids this membership used in the current \
         epoch: to never use an id twice, publishing starts with the next epoch, in {} s",
        next_epoch_in.as_secs().max(1)
    )]
    Unrecorded {
        /// Time until the next epoch.
        next_epoch_in: Duration,
    },
    /// The membership's leaf is not in the synced tree.
    #[error("membership {index} is not in the synced tree ({why}); wait for sync or check the registration")]
    NotInTree {
        /// The leaf index.
        index: u64,
        /// What the tree holds there.
        why: String,
    },
    /// The proof's root is one this node has not synced.
    #[error("the node is not synced with the membership contract yet")]
    NotSynced,
    /// Validation refused the message.
    #[error("RLN validation failed: {}", .0.label())]
    Rejected(Reason),
    /// The same message was already seen.
    #[error("duplicate message")]
    Duplicate,
    /// A second share under a known nullifier: the member exceeded its limit.
    #[error(
        "RLN validation failed: the member exceeded its message limit in this epoch (double \
         signal; its secret is recovered)"
    )]
    Spam,
    /// The validation queue is full.
    #[error("the node is busy validating; try again shortly")]
    Busy,
    /// The node failed; the detail is for its log, not for clients.
    #[error("internal error: {0}")]
    Internal(String),
    /// The node is shutting down.
    #[error("the node is shutting down")]
    Stopped,
}

impl Refusal {
    /// The refusal for a proof that could not be made.
    fn of_proving(e: RelayError) -> Self {
        match e {
            RelayError::NoMembership => Refusal::NoMembership,
            RelayError::LimitReached {
                limit,
                next_epoch_in,
            } => Refusal::LimitReached {
                limit,
                next_epoch_in,
            },
            RelayError::Unrecorded { next_epoch_in, .. } => {
                tracing::warn!("{e}");
                Refusal::Unrecorded { next_epoch_in }
            }
            RelayError::NotInTree { index, why } => Refusal::NotInTree { index, why },
            RelayError::InvalidMessage(why) => Refusal::Invalid(why),
            RelayError::Stopped => Refusal::Stopped,
            other => Refusal::Internal(other.to_string()),
        }
    }

    /// The refusal for a validation outcome, or `None` when the message is valid.
    pub fn of_outcome(outcome: &Outcome) -> Option<Self> {
        Some(match outcome {
            Outcome::Valid => return None,
            Outcome::Spam { .. } => Refusal::Spam,
            Outcome::Ignored(Reason::Duplicate) => Refusal::Duplicate,
            Outcome::Ignored(Reason::UnknownRoot) => Refusal::NotSynced,
            Outcome::Ignored(Reason::QueueFull) => Refusal::Busy,
            Outcome::Ignored(r) => Refusal::Internal(format!("validation: {}", r.label())),
            Outcome::Rejected(Reason::Oversize) => {
                Refusal::TooLarge("the message is too large".into())
            }
            Outcome::Rejected(Reason::Malformed) => Refusal::Invalid("malformed message".into()),
            Outcome::Rejected(r) => Refusal::Rejected(*r),
        })
    }
}

/// How the node proves for light clients.
#[derive(Debug, Clone)]
pub struct OutboxSettings {
    /// Epoch length in seconds.
    pub epoch_secs: u64,
    /// Largest accepted |timestamp − now| for a message the node proves.
    pub max_clock_gap: Duration,
    /// Largest message.
    pub max_message_bytes: usize,
    /// Whether the node proves for light clients at all.
    pub client_proofs: bool,
    /// Messages each client may have proved per epoch; `None`: an equal share of the
    /// membership's limit among the clients active in this epoch and the previous one.
    pub client_share: Option<u64>,
}

/// Message ids proved for each client, in the current and the previous epoch.
#[derive(Debug, Default)]
pub(crate) struct ClientQuota {
    used: HashMap<(u64, PeerId), u64>,
}

impl ClientQuota {
    /// Takes one message of `peer`'s share in `epoch`; `Err(share)` when it is used up.
    pub(crate) fn take(
        &mut self,
        peer: PeerId,
        epoch: u64,
        limit: u64,
        fixed: Option<u64>,
    ) -> Result<(), u64> {
        self.used.retain(|(e, _), _| e + 1 >= epoch);
        let share = match fixed {
            Some(share) => share,
            None => {
                let mut active: std::collections::HashSet<PeerId> = self
                    .used
                    .keys()
                    .filter(|(e, _)| *e == epoch || *e + 1 == epoch)
                    .map(|(_, p)| *p)
                    .collect();
                active.insert(peer);
                (limit / active.len() as u64).max(1)
            }
        };
        let used = self.used.entry((epoch, peer)).or_insert(0);
        if *used >= share {
            return Err(share);
        }
        *used += 1;
        Ok(())
    }

    /// Gives back a message taken for a proof that was not made.
    pub(crate) fn give_back(&mut self, peer: PeerId, epoch: u64) {
        if let Some(used) = self.used.get_mut(&(epoch, peer)) {
            *used = used.saturating_sub(1);
        }
    }
}

/// The node's local publishing.
pub struct Outbox {
    settings: OutboxSettings,
    net: NetworkHandle,
    /// The validation queue; taken out by [`Outbox::close`], so that the workers, which end
    /// when the last sender is gone, can stop.
    pipeline: Mutex<Option<Pipeline>>,
    hub: Arc<Hub>,
    publisher: Option<Arc<Publisher>>,
    metrics: Metrics,
    quota: Mutex<ClientQuota>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// The outbox of a node whose membership is `publisher` (none: only messages that carry
    /// a proof can be published).
    pub fn new(
        settings: OutboxSettings,
        net: NetworkHandle,
        pipeline: Pipeline,
        hub: Arc<Hub>,
        publisher: Option<Arc<Publisher>>,
        metrics: Metrics,
    ) -> Self {
        Self {
            settings,
            net,
            pipeline: Mutex::new(Some(pipeline)),
            hub,
            publisher,
            metrics,
            quota: Mutex::new(ClientQuota::default()),
        }
    }

    /// Refuses every publication from now on and lets go of the validation queue: the
    /// node calls it first when it shuts down.
    pub fn close(&self) {
        self.pipeline
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// The node's membership, when it has one.
    pub fn publisher(&self) -> Option<&Arc<Publisher>> {
        self.publisher.as_ref()
    }

    /// Proves (when asked), validates, publishes and delivers locally one message.
    pub async fn publish(&self, p: Publication) -> Result<Published, Refusal> {
        let Publication {
            topic,
            mut message,
            proof,
        } = p;
        // A timestamp the node would prove for must be within the clock gap, checked before
        // anything else (a future one would spend an id of a future epoch).
        if !matches!(proof, Proof::Carried { .. }) {
            self.stamp(&mut message)?;
        }
        // The node's own publishing needs its membership first (light push
        // tells a client about missing peers first, as nwaku does).
        if matches!(proof, Proof::Own(_)) && self.publisher.is_none() {
            return Err(Refusal::NoMembership);
        }
        // Before any proof: a message id, once used, is never handed out again.
        if !self.net.has_peer_on(&topic).await {
            return Err(Refusal::NoPeers { topic });
        }
        let max = self.settings.max_message_bytes;
        match proof {
            Proof::Carried { .. } if message.encode().len() > max => {
                return Err(Refusal::TooLarge(format!(
                    "the message is larger than the limit of {max} bytes"
                )))
            }
            Proof::Carried { .. } => {}
            Proof::Own(_) | Proof::ForClient(_) => {
                fits_with_proof(&message, max).map_err(|e| Refusal::TooLarge(e.to_string()))?;
                message = self.prove(message, proof).await?;
            }
        }
        let candidate = Candidate::new(topic, message, SystemTime::now(), self.blamed(proof));
        let candidate = match proof {
            Proof::Carried { .. } => candidate,
            _ => candidate.own_proof(),
        };
        // A forced message id is meant to double-signal: other nodes are to catch it, not
        // this one (which would also record evidence against its own membership).
        if !is_forced(proof) {
            let pipeline = self
                .pipeline
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
                .ok_or(Refusal::Stopped)?;
            let outcome = pipeline
                .check(candidate.clone())
                .map_err(|_| Refusal::Busy)?
                .await
                .map_err(|_| Refusal::Stopped)?;
            if let Some(refusal) = Refusal::of_outcome(&outcome) {
                return Err(refusal);
            }
        }
        let Candidate {
            topic,
            message,
            hash,
            ..
        } = candidate;
        let peers = match self.net.publish_bytes(&topic, message.encode()).await {
            Ok(peers) => peers,
            Err(RelayError::NoPeers(topic)) => return Err(Refusal::NoPeers { topic }),
            Err(RelayError::Stopped) => return Err(Refusal::Stopped),
            Err(e) => return Err(Refusal::Internal(e.to_string())),
        };
        if !is_forced(proof) {
            self.hub.deliver_hashed(&topic, message.clone(), hash);
        }
        Ok(Published {
            message,
            hash,
            peers,
        })
    }

    /// The peer a bad proof counts against: only one that handed over its own proof.
    fn blamed(&self, proof: Proof) -> Option<PeerId> {
        match proof {
            Proof::Carried { from } => from,
            _ => None,
        }
    }

    /// Stamps `message` and proves it with the node's membership: its epoch from the
    /// timestamp (derived once, here), within a light client's share when it is for one.
    async fn prove(&self, mut message: WakuMessage, proof: Proof) -> Result<WakuMessage, Refusal> {
        let publisher = match (&self.publisher, proof) {
            (None, _) => return Err(Refusal::NoMembership),
            (Some(_), Proof::ForClient(_)) if !self.settings.client_proofs => {
                return Err(Refusal::NoProofService)
            }
            (Some(p), _) => Arc::clone(p),
        };
        let timestamp = self.stamp(&mut message)?;
        let now = now_nanos();
        let epoch_secs = self.settings.epoch_secs;
        let epoch = epoch_at(timestamp as u64 / 1_000_000_000, epoch_secs);
        let client = match proof {
            Proof::ForClient(peer) => Some(peer),
            _ => None,
        };
        if let Some(peer) = client {
            let limit = publisher.member().limit;
            let taken = self
                .quota()
                .take(peer, epoch, limit, self.settings.client_share);
            if let Err(share) = taken {
                self.metrics.lightpush_quota_refusals.inc();
                let next = Duration::from_secs((epoch + 1) * epoch_secs)
                    .saturating_sub(Duration::from_nanos(now.max(0) as u64));
                return Err(Refusal::ShareUsed {
                    share,
                    epoch,
                    next_epoch_in: next,
                });
            }
        }
        let choice = match proof {
            Proof::Own(choice) => choice,
            _ => MessageIdChoice::Next,
        };
        let proved =
            tokio::task::spawn_blocking(move || publisher.prove_in(message, epoch, choice))
                .await
                .unwrap_or(Err(RelayError::Stopped));
        match proved {
            Ok(message) => {
                if client.is_some() {
                    self.metrics.lightpush_proofs.inc();
                }
                Ok(message)
            }
            Err(e) => {
                if let Some(peer) = client {
                    self.quota().give_back(peer, epoch);
                }
                Err(Refusal::of_proving(e))
            }
        }
    }

    /// Sets the timestamp to now when absent, and refuses one that is negative or further
    /// than the clock gap from now; returns it.
    fn stamp(&self, message: &mut WakuMessage) -> Result<i64, Refusal> {
        let now = now_nanos();
        let timestamp = *message.timestamp.get_or_insert(now);
        if timestamp < 0 {
            return Err(Refusal::Invalid("negative timestamp".into()));
        }
        let gap = i128::from(timestamp) - i128::from(now);
        if gap.unsigned_abs() > self.settings.max_clock_gap.as_nanos() {
            return Err(Refusal::ClockGap {
                gap_secs: (gap / 1_000_000_000) as i64,
                max_secs: self.settings.max_clock_gap.as_secs(),
            });
        }
        Ok(timestamp)
    }

    fn quota(&self) -> std::sync::MutexGuard<'_, ClientQuota> {
        self.quota.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn is_forced(proof: Proof) -> bool {
    matches!(proof, Proof::Own(MessageIdChoice::Forced(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_equal_share_among_the_clients_of_this_epoch_and_the_last() {
        let mut q = ClientQuota::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        // Alone, a client may use the whole limit.
        assert!((0..4).all(|_| q.take(a, 10, 4, None).is_ok()));
        assert_eq!(q.take(a, 10, 4, None), Err(4));
        // Next epoch a second client arrives: each gets half.
        assert!(q.take(b, 11, 4, None).is_ok());
        assert!(q.take(a, 11, 4, None).is_ok());
        assert!(q.take(a, 11, 4, None).is_ok());
        assert_eq!(q.take(a, 11, 4, None), Err(2));
        // A failed proof gives its message back.
        q.give_back(a, 11);
        assert!(q.take(a, 11, 4, None).is_ok());
        // A fixed share ignores the number of clients; old epochs are forgotten.
        assert!(q.take(a, 20, 100, Some(1)).is_ok());
        assert_eq!(q.take(a, 20, 100, Some(1)), Err(1));
        assert!(q.used.keys().all(|(e, _)| *e >= 19));
        // Never below one message per client.
        let mut many = ClientQuota::default();
        for _ in 0..10 {
            assert!(many.take(PeerId::random(), 1, 3, None).is_ok());
        }
    }

    #[test]
    fn every_validation_outcome_but_valid_is_a_refusal() {
        assert_eq!(Refusal::of_outcome(&Outcome::Valid), None);
        assert_eq!(
            Refusal::of_outcome(&Outcome::Ignored(Reason::Duplicate)),
            Some(Refusal::Duplicate)
        );
        assert_eq!(
            Refusal::of_outcome(&Outcome::Ignored(Reason::UnknownRoot)),
            Some(Refusal::NotSynced)
        );
        assert_eq!(
            Refusal::of_outcome(&Outcome::Ignored(Reason::QueueFull)),
            Some(Refusal::Busy)
        );
        for r in Reason::REJECTED {
            let refusal = Refusal::of_outcome(&Outcome::Rejected(r));
            assert!(refusal.is_some(), "{r:?}");
        }
        for r in Reason::IGNORED {
            assert!(Refusal::of_outcome(&Outcome::Ignored(r)).is_some(), "{r:?}");
        }
        assert!(matches!(
            Refusal::of_outcome(&Outcome::Rejected(Reason::Oversize)),
            Some(Refusal::TooLarge(_))
        ));
    }

    #[test]
    fn a_proof_that_cannot_be_made_is_refused_with_its_kind() {
        let next = Duration::from_secs(7);
        assert_eq!(
            Refusal::of_proving(RelayError::LimitReached {
                limit: 3,
                next_epoch_in: next
            }),
            Refusal::LimitReached {
                limit: 3,
                next_epoch_in: next
            }
        );
        // The ledger's path stays out of the refusal's text.
        let unrecorded = Refusal::of_proving(RelayError::Unrecorded {
            ledger: "/secret/path/ledger".into(),
            next_epoch_in: next,
        });
        assert_eq!(
            unrecorded,
            Refusal::Unrecorded {
                next_epoch_in: next
            }
        );
        assert!(!unrecorded.to_string().contains("/secret"));
        assert!(matches!(
            Refusal::of_proving(RelayError::NotInTree {
                index: 1,
                why: "empty".into()
            }),
            Refusal::NotInTree { index: 1, .. }
        ));
        assert_eq!(
            Refusal::of_proving(RelayError::InvalidMessage("x".into())),
            Refusal::Invalid("x".into())
        );
        assert_eq!(Refusal::of_proving(RelayError::Stopped), Refusal::Stopped);
        assert!(matches!(
            Refusal::of_proving(RelayError::Network("boom".into())),
            Refusal::Internal(_)
        ));
    }
}
