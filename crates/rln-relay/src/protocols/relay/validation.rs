//! RLN validation of relayed messages, in the order ARCHITECTURE.md explains: cheap checks
//! first, state last.
//!
//! 1. timestamp within the clock gap and `proof.epoch == epoch(timestamp)`;
//! 2. root in the acceptable window (or revoked by an erasure after the message was stamped);
//! 3. read-only nullifier pre-check: an exact duplicate is ignored before any proof work;
//! 4. Groth16 verification, batched when several messages wait (grouped by the sender's
//!    standing, see `standing`);
//! 5. atomic insert of the nullifier; a different share under a known nullifier is spam
//!    (the sending peer is penalised only if it had already sent a share under that
//!    nullifier, which an honest relay never does: see [`Outcome::Spam`]).
//!
//! [`Outcome::acceptance`] is the one place where outcomes become gossipsub verdicts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libp2p::PeerId;
use rln_core::{
    epoch_at, fr_to_le_bytes, hash_to_field, recover_secret, FieldError, Fr, Identity,
    RlnIdentifier,
};
use rln_db::{NullifierRecord, NullifierVerdict, RlnDb, RootStatus, SpamEvidence};
use rln_zk::{ProofVerdict, RateLimitProof, Verifier};

use super::standing::{Standing, Standings};

use crate::metrics::Metrics;
use crate::wire::{decode_proof, ProofDecodeError, SignalMode, WakuMessage};

/// Why a message was not accepted. [`Reason::label`] is the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Not a `WakuMessage` protobuf.
    Malformed,
    /// Larger than the size limit.
    Oversize,
    /// No `rate_limit_proof`.
    MissingProof,
    /// The proof's protobuf or curve points are broken.
    MalformedProof,
    /// A field element is not canonical (≥ the modulus).
    NonCanonicalField,
    /// Another application's RLN identifier.
    WrongRlnIdentifier,
    /// No timestamp, or one further than the clock gap from now.
    StaleTimestamp,
    /// The proof's epoch is not the epoch of the message's timestamp.
    WrongEpoch,
    /// `x` is not the hash of the message's signal.
    WrongSignal,
    /// The root is not in the acceptable window.
    UnknownRoot,
    /// The root was revoked by an erasure (a slash, say) before the message was stamped.
    RevokedRoot,
    /// The Groth16 proof does not verify.
    InvalidProof,
    /// The same share was already seen.
    Duplicate,
    /// A different share under a known nullifier: the member exceeded its limit.
    Spam,
    /// The validation queue was full.
    QueueFull,
    /// Its epoch's nullifier log was pruned while it waited for validation.
    Expired,
    /// Another encoding of a message already seen (see `reencoded`).
    Reencoded,
    /// The node failed (storage error); not the sender's fault.
    Internal,
}

impl Reason {
    /// Reasons a message is rejected for (the sender is penalised).
    pub const REJECTED: [Reason; 13] = [
        Reason::Malformed,
        Reason::Oversize,
        Reason::MissingProof,
        Reason::MalformedProof,
        Reason::NonCanonicalField,
        Reason::WrongRlnIdentifier,
        Reason::StaleTimestamp,
        Reason::WrongEpoch,
        Reason::WrongSignal,
        Reason::UnknownRoot,
        Reason::RevokedRoot,
        Reason::InvalidProof,
        Reason::Spam,
    ];

    /// Reasons a message is ignored for (no penalty).
    pub const IGNORED: [Reason; 7] = [
        Reason::Duplicate,
        Reason::QueueFull,
        Reason::Expired,
        Reason::Reencoded,
        Reason::UnknownRoot,
        Reason::Spam,
        Reason::Internal,
    ];

    /// Creates every counter at zero, so dashboards show 0 rather than no data.
    pub fn register_all(metrics: &Metrics) {
        for r in Self::REJECTED {
            Metrics::reason(&metrics.invalid, r.label());
        }
        for r in Self::IGNORED {
            Metrics::reason(&metrics.ignored, r.label());
        }
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::Oversize => "oversize",
            Reason::MissingProof => "missing_proof",
            Reason::MalformedProof => "malformed_proof",
            Reason::NonCanonicalField => "non_canonical_field",
            Reason::WrongRlnIdentifier => "wrong_rln_identifier",
            Reason::StaleTimestamp => "stale_timestamp",
            Reason::WrongEpoch => "wrong_epoch",
            Reason::WrongSignal => "wrong_signal",
            Reason::UnknownRoot => "unknown_root",
            Reason::RevokedRoot => "revoked_root",
            Reason::InvalidProof => "invalid_proof",
            Reason::Duplicate => "duplicate",
            Reason::Spam => "spam",
            Reason::QueueFull => "queue_full",
            Reason::Expired => "expired",
            Reason::Reencoded => "reencoded",
            Reason::Internal => "internal",
        }
    }
}

/// What gossipsub is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    /// Valid: deliver and forward.
    Accept,
    /// Drop without penalising the peer.
    Ignore,
    /// Drop and penalise the peer.
    Reject,
}

/// The result of validating one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Valid and recorded in the nullifier log.
    Valid,
    /// Dropped without blame.
    Ignored(Reason),
    /// Dropped and the sender blamed.
    Rejected(Reason),
    /// A double signal: not relayed, and the spammer's secret recovered.
    Spam {
        /// Both shares and the secret.
        evidence: Box<SpamEvidence>,
        /// The peer that sent this share had already sent another share under the same
        /// nullifier. An honest relay forwards at most one share per nullifier (it refuses
        /// the second itself), so only then is the peer the spammer and penalised; a relay
        /// that forwarded the share it saw first while this node saw another is not.
        same_sender: bool,
    },
}

impl Outcome {
    /// The gossipsub verdict and the reason label (empty for valid messages).
    pub fn acceptance(&self) -> (Acceptance, &'static str) {
        match self {
            Outcome::Valid => (Acceptance::Accept, ""),
            Outcome::Ignored(r) => (Acceptance::Ignore, r.label()),
            Outcome::Rejected(r) => (Acceptance::Reject, r.label()),
            Outcome::Spam {
                same_sender: true, ..
            } => (Acceptance::Reject, Reason::Spam.label()),
            Outcome::Spam { .. } => (Acceptance::Ignore, Reason::Spam.label()),
        }
    }

    /// Counts the outcome in the metrics.
    pub fn record(&self, metrics: &Metrics) {
        match self {
            Outcome::Valid => {
                metrics.valid.inc();
            }
            Outcome::Ignored(r) => {
                Metrics::reason(&metrics.ignored, r.label()).inc();
            }
            Outcome::Rejected(r) => {
                Metrics::reason(&metrics.invalid, r.label()).inc();
            }
            Outcome::Spam { .. } => {
                metrics.spam.inc();
                metrics.secrets_recovered.inc();
                Metrics::reason(&metrics.invalid, Reason::Spam.label()).inc();
            }
        }
    }
}

/// The rules every node of a network shares.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Epoch length in seconds.
    pub epoch_secs: u64,
    /// Largest accepted |timestamp − receive time|.
    pub max_clock_gap: Duration,
    /// How far another honest node's view of the membership may trail or lead this node's
    /// (confirmations, poll intervals, the clock gap). The roots an erasure revoked still
    /// pass for messages stamped this long after it (the sender's node may not have seen
    /// it), and an unknown root counts against its sender only once this node has synced
    /// this long after the message was stamped (it may be a root this node has yet to see).
    pub chain_lag: Duration,
    /// The application's RLN identifier.
    pub rln_identifier: RlnIdentifier,
    /// What the signal covers.
    pub signal: SignalMode,
}

/// A decoded message waiting for validation.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Its pubsub topic.
    pub topic: String,
    /// The message.
    pub message: WakuMessage,
    /// When it arrived.
    pub received: SystemTime,
    /// The peer it came from (none for local checks).
    pub source: Option<PeerId>,
    /// Its Waku message hash on `topic`, computed once (see [`Candidate::new`]).
    pub hash: [u8; 32],
    /// The proof was made by this node a moment ago: every check but the Groth16
    /// verification applies (see [`Candidate::own_proof`]).
    pub own_proof: bool,
}

impl Candidate {
    /// A candidate, with its message hash computed here so no later step hashes it again.
    pub fn new(
        topic: String,
        message: WakuMessage,
        received: SystemTime,
        source: Option<PeerId>,
    ) -> Self {
        let hash = message.hash(&topic);
        Self {
            topic,
            message,
            received,
            source,
            hash,
            own_proof: false,
        }
    }

    /// Marks the proof as this node's own, made by its prover for this very message: the
    /// Groth16 check is skipped (it would only verify the prover), while the epoch, root,
    /// signal and nullifier checks still run, so a message of the node's own never passes
    /// where another node would refuse it.
    pub fn own_proof(mut self) -> Self {
        self.own_proof = true;
        self
    }
}

/// A message that passed the cheap checks and waits for proof verification.
struct Checked {
    proof: RateLimitProof,
    epoch: u64,
    hash: [u8; 32],
}

/// What the validator knows of the membership sync: whether it is caught up, and when it last
/// was (Unix milliseconds).
#[derive(Debug, Default)]
pub struct SyncView {
    synced: AtomicBool,
    synced_at_ms: AtomicU64,
}

impl SyncView {
    /// A view with the sync caught up (`synced_at_ms`) or not.
    pub fn new(synced: bool, synced_at_ms: u64) -> Self {
        Self {
            synced: AtomicBool::new(synced),
            synced_at_ms: AtomicU64::new(synced_at_ms),
        }
    }

    /// Records the outcome of a sync pass that ended at `now_ms`.
    pub fn update(&self, synced: bool, now_ms: u64) {
        if synced {
            self.synced_at_ms.fetch_max(now_ms, Ordering::Relaxed);
        }
        self.synced.store(synced, Ordering::Relaxed);
    }

    /// Whether the last pass caught up with the chain.
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Relaxed)
    }

    /// When a pass last caught up (0: never).
    pub fn synced_at_ms(&self) -> u64 {
        self.synced_at_ms.load(Ordering::Relaxed)
    }
}

/// Validates messages against the node's state. Shared by the worker threads.
pub struct Validator {
    db: Arc<RlnDb>,
    verifier: Verifier,
    rules: Rules,
    sync: Arc<SyncView>,
    metrics: Metrics,
    /// Who sent shares under each recent `(epoch, nullifier)`.
    share_senders: Mutex<ShareSenders>,
    /// Whose proofs verified lately, and whose failed.
    standings: Standings,
    /// Whether proofs are grouped by their sender's standing (off: one batch).
    group_by_standing: bool,
}

/// The peers that sent a share under each recent nullifier, for the current and the previous
/// epochs only.
#[derive(Debug, Default)]
struct ShareSenders {
    latest_epoch: u64,
    by_nullifier: HashMap<(u64, [u8; 32]), Vec<PeerId>>,
}

/// Senders remembered per nullifier: far more than honest relays can account for (each sends
/// one share), and a bound on what a flood of peers can make this map hold.
const MAX_SENDERS_PER_NULLIFIER: usize = 64;

impl ShareSenders {
    /// Notes that `peer` sent a share under `(epoch, nullifier)`; `true` if it had sent one
    /// before.
    fn note(&mut self, epoch: u64, nullifier: &Fr, peer: PeerId) -> bool {
        if epoch > self.latest_epoch {
            self.latest_epoch = epoch;
            self.by_nullifier.retain(|(e, _), _| e + 2 > epoch);
        }
        let senders = self
            .by_nullifier
            .entry((epoch, fr_to_le_bytes(nullifier)))
            .or_default();
        if senders.contains(&peer) {
            return true;
        }
        if senders.len() < MAX_SENDERS_PER_NULLIFIER {
            senders.push(peer);
        }
        false
    }
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

fn unix_nanos(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

impl Validator {
    /// A validator over `db`. `sync` tells whether (and when) the membership sync caught up:
    /// an unknown root is the sender's fault only when it did, well after the message.
    pub fn new(
        db: Arc<RlnDb>,
        verifier: Verifier,
        rules: Rules,
        sync: Arc<SyncView>,
        metrics: Metrics,
    ) -> Self {
        Self {
            db,
            verifier,
            rules,
            sync,
            metrics,
            share_senders: Mutex::new(ShareSenders::default()),
            standings: Standings::default(),
            group_by_standing: true,
        }
    }

    /// Groups proofs by their sender's standing (the default) or not (every waiting proof in
    /// one batch).
    pub fn grouping_by_standing(mut self, on: bool) -> Self {
        self.group_by_standing = on;
        self
    }

    /// The rules in force.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    fn cheap_checks(&self, c: &Candidate, history: bool) -> Result<Checked, Outcome> {
        use Outcome::{Ignored, Rejected};
        let bytes = c
            .message
            .rate_limit_proof
            .as_deref()
            .ok_or(Rejected(Reason::MissingProof))?;
        let proof = decode_proof(bytes).map_err(|e| match e {
            ProofDecodeError::Field {
                source: FieldError::NonCanonical,
                ..
            } => Rejected(Reason::NonCanonicalField),
            _ => Rejected(Reason::MalformedProof),
        })?;
        if proof.rln_identifier != self.rules.rln_identifier {
            return Err(Rejected(Reason::WrongRlnIdentifier));
        }
        let timestamp = c
            .message
            .timestamp
            .ok_or(Rejected(Reason::StaleTimestamp))?;
        let gap = (i128::from(timestamp) - unix_nanos(c.received)).unsigned_abs();
        if gap > self.rules.max_clock_gap.as_nanos() || timestamp < 0 {
            return Err(Rejected(Reason::StaleTimestamp));
        }
        let epoch = epoch_at(timestamp as u64 / 1_000_000_000, self.rules.epoch_secs);
        if proof.epoch_number() != Some(epoch) {
            return Err(Rejected(Reason::WrongEpoch));
        }
        if proof.share_x != hash_to_field(&c.message.signal(self.rules.signal)) {
            return Err(Rejected(Reason::WrongSignal));
        }
        match self.db.root_status(&proof.merkle_root) {
            RootStatus::InWindow => {}
            // An erasure revoked this root. Messages stamped before the node saw it, or up to
            // the grace after (their sender's node may lag), still pass; later ones are from
            // a member proving against a tree it should know is stale.
            RootStatus::Revoked { at_ms } => {
                let grace_ms = self.rules.chain_lag.as_millis() as i64;
                if timestamp / 1_000_000 > at_ms as i64 + grace_ms {
                    return Err(Rejected(Reason::RevokedRoot));
                }
            }
            // A root this node does not know may be one it has not synced yet: honest nodes
            // poll at different moments and with different confirmation depths. Only once
            // this node caught up with the chain well after the message was stamped is the
            // root surely not a real one, and the sender to blame.
            RootStatus::Unknown => {
                let lag_ms = self.rules.chain_lag.as_millis() as i64;
                let caught_up_after = self.sync.synced()
                    && self.sync.synced_at_ms() as i64 >= timestamp / 1_000_000 + lag_ms;
                return Err(if caught_up_after {
                    Rejected(Reason::UnknownRoot)
                } else {
                    Ignored(Reason::UnknownRoot)
                });
            }
        }
        match self
            .db
            .check_nullifier(epoch, &proof.nullifier, &proof.share_x, &proof.share_y)
        {
            Ok(NullifierVerdict::Duplicate) => return Err(Ignored(Reason::Duplicate)),
            // It waited in the queue while its epoch was pruned: too old to compare.
            Ok(NullifierVerdict::Pruned) if !history => return Err(Ignored(Reason::Expired)),
            Ok(_) => {}
            Err(_) => return Err(Ignored(Reason::Internal)),
        }
        Ok(Checked {
            proof,
            epoch,
            hash: c.hash,
        })
    }

    /// Validates a batch of messages; one outcome per message, in order. Proofs that pass
    /// the cheap checks are verified together.
    pub fn validate_batch(&self, candidates: &[Candidate]) -> Vec<Outcome> {
        self.validate(candidates, false)
    }

    /// [`Self::validate_batch`] for history fetched from a store node: a message from an
    /// epoch the nullifier log no longer covers is valid if everything else holds (there is
    /// no share left to compare it with); live traffic from such an epoch is ignored.
    pub fn validate_history(&self, candidates: &[Candidate]) -> Vec<Outcome> {
        self.validate(candidates, true)
    }

    fn validate(&self, candidates: &[Candidate], history: bool) -> Vec<Outcome> {
        let mut outcomes: Vec<Option<Outcome>> = vec![None; candidates.len()];
        let mut checked: Vec<(usize, Checked)> = Vec::with_capacity(candidates.len());
        for (i, c) in candidates.iter().enumerate() {
            self.metrics.messages.inc();
            match self.cheap_checks(c, history) {
                Ok(ok) => checked.push((i, ok)),
                Err(outcome) => outcomes[i] = Some(outcome),
            }
        }
        let (own, checked): (Vec<_>, Vec<_>) = checked
            .into_iter()
            .partition(|(i, _)| candidates[*i].own_proof);
        for (i, c) in own {
            outcomes[i] = Some(self.record(c, &candidates[i], history));
        }
        if !checked.is_empty() {
            let verdicts = self.verify(&checked, candidates);
            for ((i, c), verdict) in checked.into_iter().zip(verdicts) {
                outcomes[i] = Some(if verdict.is_valid() {
                    self.record(c, &candidates[i], history)
                } else {
                    Outcome::Rejected(Reason::InvalidProof)
                });
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Ignored(Reason::Internal)))
            .collect()
    }

    /// Step 4: the proofs of established senders verified in one batch, those of newcomers
    /// in another, those of suspects one by one; one verdict per proof, in order.
    fn verify(&self, checked: &[(usize, Checked)], candidates: &[Candidate]) -> Vec<ProofVerdict> {
        let now = Instant::now();
        let senders = || checked.iter().map(|(i, _)| candidates[*i].source);
        let standings = if self.group_by_standing {
            self.standings.of(senders(), now)
        } else {
            vec![Standing::Established; checked.len()]
        };
        let mut verdicts = vec![ProofVerdict::Invalid; checked.len()];
        for group in [Standing::Established, Standing::Newcomer, Standing::Suspect] {
            let members: Vec<usize> = (0..checked.len())
                .filter(|&j| standings[j] == group)
                .collect();
            if members.is_empty() {
                continue;
            }
            let started = Instant::now();
            if group == Standing::Suspect {
                for &j in &members {
                    verdicts[j] = self.verifier.verify(&checked[j].1.proof);
                    self.metrics.batch_size.observe(1.0);
                }
            } else {
                let proofs: Vec<&RateLimitProof> =
                    members.iter().map(|&j| &checked[j].1.proof).collect();
                let found = self.verifier.verify_proofs(&proofs, &mut rand::rngs::OsRng);
                for (&j, verdict) in members.iter().zip(found) {
                    verdicts[j] = verdict;
                }
                self.metrics.batch_size.observe(proofs.len() as f64);
            }
            let per_proof = started.elapsed().as_secs_f64() / members.len() as f64;
            for _ in 0..members.len() {
                self.metrics.proof_verifications.inc();
                self.metrics.verification_seconds.observe(per_proof);
            }
        }
        self.standings
            .record(senders().zip(verdicts.iter().map(|v| v.is_valid())), now);
        verdicts
    }

    /// Step 5: the atomic nullifier insert, and spam evidence on a double signal.
    fn record(&self, c: Checked, candidate: &Candidate, history: bool) -> Outcome {
        let record = NullifierRecord {
            x: c.proof.share_x,
            y: c.proof.share_y,
            message_hash: c.hash,
            first_seen_ms: unix_nanos(candidate.received).max(0) as u64 / 1_000_000,
        };
        // The map lock is taken only around map operations, never around the disk write.
        // In the narrow race where a second share is checked before the first one's sender
        // is noted, the sender is not penalised (the safe direction).
        let note_sender = |peer: Option<PeerId>| {
            peer.is_some_and(|peer| {
                self.share_senders
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .note(c.epoch, &c.proof.nullifier, peer)
            })
        };
        match self
            .db
            .insert_nullifier(c.epoch, &c.proof.nullifier, &record)
        {
            Ok(NullifierVerdict::New) => {
                note_sender(candidate.source);
                Outcome::Valid
            }
            Ok(NullifierVerdict::Duplicate) => Outcome::Ignored(Reason::Duplicate),
            Ok(NullifierVerdict::Pruned) if history => Outcome::Valid,
            Ok(NullifierVerdict::Pruned) => Outcome::Ignored(Reason::Expired),
            Ok(NullifierVerdict::DoubleSignal { previous }) => {
                let same_sender = note_sender(candidate.source);
                match spam_evidence(c.epoch, c.proof.nullifier, previous, record) {
                    Some(evidence) => Outcome::Spam {
                        evidence: Box::new(evidence),
                        same_sender,
                    },
                    None => Outcome::Rejected(Reason::InvalidProof),
                }
            }
            Err(_) => Outcome::Ignored(Reason::Internal),
        }
    }
}

/// The evidence two shares under one nullifier give: the secret and the member it belongs to.
/// `None` when the shares have the same `x` (no secret can be recovered).
pub fn spam_evidence(
    epoch: u64,
    nullifier: Fr,
    first: NullifierRecord,
    second: NullifierRecord,
) -> Option<SpamEvidence> {
    let share = |r: &NullifierRecord| rln_core::Share { x: r.x, y: r.y };
    let secret = recover_secret(share(&first), share(&second)).ok()?;
    Some(SpamEvidence {
        epoch,
        nullifier,
        first,
        second,
        secret,
        id_commitment: Identity::from_secret(secret).commitment(),
        slash_status: rln_db::evidence::NOT_SUBMITTED.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_a_distinct_label_and_a_verdict() {
        let all: std::collections::HashSet<Reason> = Reason::REJECTED
            .iter()
            .chain(&Reason::IGNORED)
            .copied()
            .collect();
        assert_eq!(all.len(), 18, "every reason is listed");
        let labels: std::collections::HashSet<_> = all.iter().map(|r| r.label()).collect();
        assert_eq!(labels.len(), all.len());
    }

    #[test]
    fn outcomes_map_to_verdicts() {
        assert_eq!(Outcome::Valid.acceptance(), (Acceptance::Accept, ""));
        assert_eq!(
            Outcome::Ignored(Reason::Duplicate).acceptance(),
            (Acceptance::Ignore, "duplicate")
        );
        assert_eq!(
            Outcome::Rejected(Reason::WrongEpoch).acceptance(),
            (Acceptance::Reject, "wrong_epoch")
        );
    }

    #[test]
    fn a_peer_is_blamed_for_its_second_share_under_a_nullifier_only() {
        let mut senders = ShareSenders::default();
        let (honest, other_honest, spammer) =
            (PeerId::random(), PeerId::random(), PeerId::random());
        let n = Fr::from(9u64);
        // Each honest relay forwards the one share it accepted: no blame, whoever was first.
        assert!(!senders.note(10, &n, honest));
        assert!(!senders.note(10, &n, other_honest));
        // The spammer's first share here is not told apart from an honest one; its second is.
        assert!(!senders.note(10, &n, spammer));
        assert!(senders.note(10, &n, spammer));
        assert!(senders.note(10, &n, spammer));
        // Another nullifier, or the same one in another epoch, starts afresh.
        assert!(!senders.note(10, &Fr::from(8u64), spammer));
        assert!(!senders.note(11, &n, spammer));
        // Epochs older than the previous one are forgotten.
        assert!(!senders.note(13, &n, honest));
        assert!(!senders.by_nullifier.contains_key(&(10, fr_to_le_bytes(&n))));
        assert!(senders.by_nullifier.len() <= 2);
        // The list per nullifier is bounded.
        for _ in 0..2 * MAX_SENDERS_PER_NULLIFIER {
            senders.note(13, &Fr::from(7u64), PeerId::random());
        }
        assert_eq!(
            senders.by_nullifier[&(13, fr_to_le_bytes(&Fr::from(7u64)))].len(),
            MAX_SENDERS_PER_NULLIFIER
        );
    }

    #[test]
    fn two_shares_reveal_the_secret() {
        let identity = Identity::from_secret(Fr::from(123_456u64));
        let a1 = Fr::from(777u64);
        let rec = |x: u64| {
            let x = Fr::from(x);
            NullifierRecord {
                x,
                y: identity.secret() + a1 * x,
                message_hash: [0; 32],
                first_seen_ms: 0,
            }
        };
        let evidence = spam_evidence(3, Fr::from(1u64), rec(5), rec(9)).unwrap();
        assert_eq!(evidence.secret, identity.secret());
        assert_eq!(evidence.id_commitment, identity.commitment());
        assert!(spam_evidence(3, Fr::from(1u64), rec(5), rec(5)).is_none());
    }
}
