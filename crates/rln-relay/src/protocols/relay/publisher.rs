//! Proving the node's messages: the epoch, a message id that is never reused (see
//! `rln_db::ledger`), the Merkle path of the member's leaf and the Groth16 proof. Publishing
//! itself is the outbox's (`outbox`).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rln_core::{epoch_at, epoch_to_fr, Identity, RlnIdentifier};
use rln_db::{Allocation, MessageIdLedger, RlnDb};
use rln_zk::{MessageRequest, PreparedMembership, Prover};

use crate::clock::now_nanos;
use crate::error::RelayError;
use crate::metrics::Metrics;
use crate::wire::{encode_proof, SignalMode, WakuMessage};

/// The membership a node publishes with.
#[derive(Debug, Clone)]
pub struct Member {
    /// The identity (its secret never leaves the node).
    pub identity: Identity,
    /// Messages per epoch.
    pub limit: u64,
    /// Leaf index in the tree.
    pub index: u64,
}

/// Proves and stamps outgoing messages.
pub struct Publisher {
    member: Member,
    db: Arc<RlnDb>,
    ledger: Arc<MessageIdLedger>,
    prover: Arc<Prover>,
    epoch_secs: u64,
    rln_identifier: RlnIdentifier,
    signal: SignalMode,
    metrics: Metrics,
    /// The membership part of the proofs, kept until the Merkle path changes.
    prepared: Mutex<Option<Arc<PreparedMembership>>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("index", &self.member.index)
            .field("limit", &self.member.limit)
            .finish_non_exhaustive()
    }
}

/// How the message id of a publication is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageIdChoice {
    /// The next unused id of the epoch (the only safe choice).
    Next,
    /// This id, whether used or not. Proving two messages with one id reveals the member's
    /// secret: this exists to exercise spam detection in tests and demonstrations.
    Forced(u64),
}

/// What a `RateLimitProof` and its framing add to a message, at most (seven fields of at most
/// 128 bytes, with tags and lengths): checked before proving so a message id is not spent on a
/// message the network would refuse.
const PROOF_OVERHEAD_BYTES: usize = 400;

/// Whether `message` stays within `max_bytes` once a proof is attached: checked before
/// proving, so that no message id is spent on a message the network would refuse.
pub(crate) fn fits_with_proof(message: &WakuMessage, max_bytes: usize) -> Result<(), RelayError> {
    if message.encode().len() + PROOF_OVERHEAD_BYTES > max_bytes {
        return Err(RelayError::InvalidMessage(format!(
            "with its proof the message would exceed the limit of {max_bytes} bytes"
        )));
    }
    Ok(())
}

impl Publisher {
    /// A publisher for `member`, whose used message ids are in `ledger`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        member: Member,
        db: Arc<RlnDb>,
        ledger: Arc<MessageIdLedger>,
        prover: Arc<Prover>,
        epoch_secs: u64,
        rln_identifier: RlnIdentifier,
        signal: SignalMode,
        metrics: Metrics,
    ) -> Self {
        Self {
            member,
            db,
            ledger,
            prover,
            epoch_secs,
            rln_identifier,
            signal,
            metrics,
            prepared: Mutex::new(None),
        }
    }

    /// The ledger of used message ids.
    pub fn ledger(&self) -> &MessageIdLedger {
        &self.ledger
    }

    /// The membership.
    pub fn member(&self) -> &Member {
        &self.member
    }

    /// The current epoch and the time until the next one.
    pub fn current_epoch(&self) -> (u64, Duration) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let epoch = epoch_at(now.as_secs(), self.epoch_secs);
        let next = Duration::from_secs((epoch + 1) * self.epoch_secs).saturating_sub(now);
        (epoch, next)
    }

    /// Message ids left in the current epoch.
    pub fn remaining(&self) -> Result<u64, RelayError> {
        let (epoch, _) = self.current_epoch();
        let left = self
            .ledger
            .left(&self.member.identity.commitment(), epoch, self.member.limit);
        self.metrics.remaining_proofs.set(left as i64);
        Ok(left)
    }

    /// Stamps `message` (timestamp now unless set), allocates a message id and attaches a
    /// proof. Blocking: proving takes a noticeable fraction of a second.
    pub fn prove(
        &self,
        mut message: WakuMessage,
        choice: MessageIdChoice,
    ) -> Result<WakuMessage, RelayError> {
        let timestamp = *message.timestamp.get_or_insert_with(now_nanos);
        if timestamp < 0 {
            return Err(RelayError::InvalidMessage("negative timestamp".into()));
        }
        let epoch = epoch_at(timestamp as u64 / 1_000_000_000, self.epoch_secs);
        self.prove_in(message, epoch, choice)
    }

    /// [`Self::prove`] of a stamped message whose epoch the caller derived from its
    /// timestamp. Blocking.
    pub fn prove_in(
        &self,
        mut message: WakuMessage,
        epoch: u64,
        choice: MessageIdChoice,
    ) -> Result<WakuMessage, RelayError> {
        let timestamp = message.timestamp.unwrap_or_default();
        let index = self.member.index;
        let leaf = self.db.leaf(index)?;
        let expected = self
            .member
            .identity
            .rate_commitment(self.member.limit)
            .map_err(|e| RelayError::InvalidMessage(format!("the membership's limit: {e}")))?;
        if leaf != expected {
            let why = if leaf == rln_core::Fr::from(0u64) {
                "the leaf is empty: not synced yet, or erased".to_string()
            } else {
                "the leaf belongs to another identity or limit".to_string()
            };
            return Err(RelayError::NotInTree { index, why });
        }
        let message_id = match choice {
            MessageIdChoice::Forced(id) => id,
            MessageIdChoice::Next => match self.ledger.allocate(
                &self.member.identity.commitment(),
                epoch,
                self.member.limit,
            )? {
                Allocation::Id(id) => id,
                Allocation::Exhausted { limit } => {
                    let next_start = Duration::from_secs((epoch + 1) * self.epoch_secs);
                    let now = Duration::from_nanos(timestamp as u64);
                    return Err(RelayError::LimitReached {
                        limit,
                        next_epoch_in: next_start.saturating_sub(now),
                    });
                }
                Allocation::EpochInPast { latest } => {
                    return Err(RelayError::ClockBehind { latest })
                }
                Allocation::Unrecorded { .. } => {
                    let next_start = Duration::from_secs((epoch + 1) * self.epoch_secs);
                    let now = Duration::from_nanos(timestamp as u64);
                    return Err(RelayError::Unrecorded {
                        ledger: self.ledger.path().display().to_string(),
                        next_epoch_in: next_start.saturating_sub(now),
                    });
                }
            },
        };
        let signal = message.signal(self.signal);
        let request = MessageRequest::for_signal(
            message_id,
            &signal,
            epoch_to_fr(epoch),
            self.rln_identifier,
        );
        let started = Instant::now();
        let prepared = self.prepared()?;
        let proof = self
            .prover
            .prove_message(&prepared, &request, &mut rand::rngs::OsRng)?;
        self.metrics
            .generation_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.generated.inc();
        message.rate_limit_proof = Some(encode_proof(&proof));
        let _ = self.remaining();
        Ok(message)
    }

    /// The membership part for the current Merkle path: kept from the last proof while the
    /// path is unchanged, computed again (about one proof's work) after the tree changed.
    /// Call it after a sync to take that cost off the next publication.
    pub fn prepared(&self) -> Result<Arc<PreparedMembership>, RelayError> {
        let path = self.db.proof(self.member.index)?;
        // A poisoned lock only means a panic elsewhere; the cached value is whole or absent.
        let mut slot = self.prepared.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(prepared) = slot.as_ref() {
            if prepared.matches(&self.member.identity, self.member.limit, &path) {
                return Ok(Arc::clone(prepared));
            }
        }
        let prepared = Arc::new(self.prover.prepare(
            &self.member.identity,
            self.member.limit,
            &path,
        )?);
        tracing::debug!(root = %rln_core::fr_to_hex(&prepared.root()), "membership part of proofs prepared");
        *slot = Some(Arc::clone(&prepared));
        Ok(prepared)
    }
}
