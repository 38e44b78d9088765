//! Spam evidence: when a member signals twice under one nullifier, both shares, the secret
//! they reveal and what became of the slash are kept, so an operator can audit (and a
//! restarted node can finish) every slash.

use rln_core::{fr_to_le_bytes, Fr};

use crate::db::RlnDb;
use crate::error::{rocks, DbError};
use crate::nullifiers::NullifierRecord;
use crate::schema::*;

/// What a double signal proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpamEvidence {
    /// The epoch of both messages.
    pub epoch: u64,
    /// Their common nullifier.
    pub nullifier: Fr,
    /// The share seen first.
    pub first: NullifierRecord,
    /// The share that broke the limit.
    pub second: NullifierRecord,
    /// The secret recovered from the two shares.
    pub secret: Fr,
    /// `Poseidon(secret)`: the member that spammed.
    pub id_commitment: Fr,
    /// What happened on chain: "not submitted", "slashed in block N", an error, …
    pub slash_status: String,
}

const FIXED: usize = 8 + 32 + 104 + 104 + 32 + 32;

/// The status of evidence nobody tried to slash yet.
pub const NOT_SUBMITTED: &str = "not submitted";
/// Status prefix of a completed slash.
pub const SLASHED: &str = "slashed";
/// Status prefix of a completed slash: `slashed in block N …`.
pub const SLASHED_IN_BLOCK: &str = "slashed in block";
/// Status prefix of evidence that will never be slashed (the member is gone already).
pub const NOT_SLASHED: &str = "not slashed";
/// Status prefix of a slash mined but not yet buried under `slash.confirmations` blocks:
/// `landed in block N …`. It is not settled, since a reorganisation can undo it.
pub const LANDED: &str = "landed in block";

/// The paging cursor of a piece of evidence: `epoch (8, BE) ‖ nullifier (32, LE)`, its key.
pub type EvidenceCursor = [u8; 40];

impl SpamEvidence {
    /// Whether the slash is finished one way or the other (slashed, or not slashable); the
    /// slasher retries everything else.
    pub fn is_settled(&self) -> bool {
        self.slash_status.starts_with(SLASHED) || self.slash_status.starts_with(NOT_SLASHED)
    }

    /// The block a slash landed in while it waits for its confirmations (a status written
    /// as `landed in block N …`).
    pub fn landed_block(&self) -> Option<u64> {
        let rest = self.slash_status.strip_prefix(LANDED)?.trim_start();
        let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
        digits.parse().ok()
    }

    /// Where this evidence sits in the store, for paging.
    pub fn cursor(&self) -> EvidenceCursor {
        nullifier_key(self.epoch, &self.nullifier)
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED + self.slash_status.len());
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.extend_from_slice(&fr_to_le_bytes(&self.nullifier));
        out.extend_from_slice(&self.first.encode());
        out.extend_from_slice(&self.second.encode());
        out.extend_from_slice(&fr_to_le_bytes(&self.secret));
        out.extend_from_slice(&fr_to_le_bytes(&self.id_commitment));
        out.extend_from_slice(self.slash_status.as_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, DbError> {
        if bytes.len() < FIXED {
            return Err(DbError::Corrupt("spam evidence record is truncated".into()));
        }
        Ok(Self {
            epoch: decode_u64(&bytes[..8], "evidence epoch")?,
            nullifier: decode_fr(&bytes[8..40], "evidence nullifier")?,
            first: NullifierRecord::decode(&bytes[40..144])?,
            second: NullifierRecord::decode(&bytes[144..248])?,
            secret: decode_fr(&bytes[248..280], "evidence secret")?,
            id_commitment: decode_fr(&bytes[280..312], "evidence id commitment")?,
            slash_status: String::from_utf8_lossy(&bytes[FIXED..]).into_owned(),
        })
    }
}

impl RlnDb {
    /// Stores `evidence` (durably) unless evidence for the same `(epoch, nullifier)` is
    /// already there; returns whether it was new.
    pub fn record_spam(&self, evidence: &SpamEvidence) -> Result<bool, DbError> {
        let key = nullifier_key(evidence.epoch, &evidence.nullifier);
        let _guard = self.nullifier_lock(&key);
        let cf = self.cf(CF_EVIDENCE)?;
        if self
            .db
            .get_pinned_cf(cf, key)
            .map_err(rocks("reading spam evidence"))?
            .is_some()
        {
            return Ok(false);
        }
        self.db
            .put_cf_opt(cf, key, evidence.encode(), &self.write_options())
            .map_err(rocks("writing spam evidence"))?;
        Ok(true)
    }

    /// Replaces the slash status of the evidence under `(epoch, nullifier)`.
    pub fn set_slash_status(
        &self,
        epoch: u64,
        nullifier: &Fr,
        status: &str,
    ) -> Result<(), DbError> {
        let key = nullifier_key(epoch, nullifier);
        let _guard = self.nullifier_lock(&key);
        let cf = self.cf(CF_EVIDENCE)?;
        let Some(bytes) = self
            .db
            .get_pinned_cf(cf, key)
            .map_err(rocks("reading spam evidence"))?
        else {
            return Err(DbError::Corrupt(format!(
                "no spam evidence for epoch {epoch} to update"
            )));
        };
        let mut evidence = SpamEvidence::decode(&bytes)?;
        evidence.slash_status = status.to_string();
        self.db
            .put_cf_opt(cf, key, evidence.encode(), &self.write_options())
            .map_err(rocks("writing spam evidence"))
    }

    /// Up to `limit` pieces of evidence, newest first, starting after `before` (a cursor from
    /// [`SpamEvidence::cursor`]) when given.
    pub fn spam_evidence_page(
        &self,
        before: Option<&EvidenceCursor>,
        limit: usize,
    ) -> Result<Vec<SpamEvidence>, DbError> {
        let cf = self.cf(CF_EVIDENCE)?;
        let mode = match before {
            Some(key) => rocksdb::IteratorMode::From(key, rocksdb::Direction::Reverse),
            None => rocksdb::IteratorMode::End,
        };
        let mut out = Vec::new();
        for item in self.db.iterator_cf(cf, mode) {
            let (key, value) = item.map_err(rocks("reading spam evidence"))?;
            if before.is_some_and(|b| key.as_ref() == b.as_slice()) {
                continue;
            }
            if out.len() == limit {
                break;
            }
            out.push(SpamEvidence::decode(&value)?);
        }
        Ok(out)
    }

    /// Up to `limit` pieces of evidence whose slash is not settled, oldest first.
    pub fn pending_slashes(&self, limit: usize) -> Result<Vec<SpamEvidence>, DbError> {
        let cf = self.cf(CF_EVIDENCE)?;
        let mut out = Vec::new();
        for item in self.db.iterator_cf(cf, rocksdb::IteratorMode::Start) {
            let (_, value) = item.map_err(rocks("reading spam evidence"))?;
            let evidence = SpamEvidence::decode(&value)?;
            if !evidence.is_settled() {
                out.push(evidence);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Deletes the evidence of epochs before `min_epoch`; returns how many pieces went.
    pub fn prune_evidence_before(&self, min_epoch: u64) -> Result<usize, DbError> {
        let cf = self.cf(CF_EVIDENCE)?;
        let end = min_epoch.to_be_bytes();
        let mut n = 0;
        for item in self.db.iterator_cf(cf, rocksdb::IteratorMode::Start) {
            let (key, _) = item.map_err(rocks("counting spam evidence"))?;
            if key.as_ref() >= end.as_slice() {
                break;
            }
            n += 1;
        }
        if n > 0 {
            self.db
                .delete_range_cf(cf, 0u64.to_be_bytes(), end)
                .map_err(rocks("pruning spam evidence"))?;
        }
        Ok(n)
    }

    /// All stored evidence, oldest epoch first (tests and small stores; see
    /// [`Self::spam_evidence_page`]).
    pub fn spam_evidence(&self) -> Result<Vec<SpamEvidence>, DbError> {
        let cf = self.cf(CF_EVIDENCE)?;
        self.db
            .iterator_cf(cf, rocksdb::IteratorMode::Start)
            .map(|item| {
                let (_, value) = item.map_err(rocks("reading spam evidence"))?;
                SpamEvidence::decode(&value)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DbConfig;

    fn record(x: u64) -> NullifierRecord {
        NullifierRecord {
            x: Fr::from(x),
            y: Fr::from(x + 100),
            message_hash: [x as u8; 32],
            first_seen_ms: 1_000 + x,
        }
    }

    #[test]
    fn evidence_is_kept_once_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let evidence = SpamEvidence {
            epoch: 42,
            nullifier: Fr::from(9u64),
            first: record(1),
            second: record(2),
            secret: Fr::from(1234u64),
            id_commitment: Fr::from(5678u64),
            slash_status: "not submitted".into(),
        };
        {
            let db = RlnDb::open(dir.path(), DbConfig::default()).unwrap();
            assert!(db.record_spam(&evidence).unwrap());
            assert!(!db.record_spam(&evidence).unwrap());
            db.set_slash_status(42, &Fr::from(9u64), "slashed in block 7")
                .unwrap();
            assert!(db.set_slash_status(41, &Fr::from(9u64), "x").is_err());
        }
        let db = RlnDb::open(dir.path(), DbConfig::default()).unwrap();
        let stored = db.spam_evidence().unwrap();
        assert_eq!(stored.len(), 1);
        assert!(stored[0].is_settled());
        assert_eq!(stored[0].slash_status, "slashed in block 7");
        assert_eq!(
            SpamEvidence {
                slash_status: "slashed in block 7".into(),
                ..evidence
            },
            stored[0]
        );
    }

    #[test]
    fn a_landed_slash_is_pending_with_its_block() {
        let mut e = evidence(1, 2);
        assert_eq!(e.landed_block(), None);
        e.slash_status = format!("{LANDED} 1234 (reward to 0xabc); waiting for 64 blocks");
        assert_eq!(e.landed_block(), Some(1234));
        assert!(!e.is_settled());
        for odd in ["landed in block", "landed in block x", "slashed in block 7"] {
            e.slash_status = odd.into();
            assert_eq!(e.landed_block(), None, "{odd}");
        }
    }

    fn evidence(epoch: u64, nullifier: u64) -> SpamEvidence {
        SpamEvidence {
            epoch,
            nullifier: Fr::from(nullifier),
            first: record(1),
            second: record(2),
            secret: Fr::from(nullifier * 3),
            id_commitment: Fr::from(nullifier * 5),
            slash_status: NOT_SUBMITTED.into(),
        }
    }

    #[test]
    fn evidence_is_paged_newest_first_pending_found_and_pruned_by_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let db = RlnDb::open(dir.path(), DbConfig::default()).unwrap();
        for epoch in 1..=5u64 {
            for n in 0..3u64 {
                db.record_spam(&evidence(epoch, n + 10 * epoch)).unwrap();
            }
        }
        db.set_slash_status(2, &Fr::from(20u64), "slashed in block 9")
            .unwrap();
        db.set_slash_status(2, &Fr::from(21u64), "not slashed: gone")
            .unwrap();
        db.set_slash_status(3, &Fr::from(30u64), "attempt 1 failed; retrying")
            .unwrap();
        // Pages of 4, newest first, each piece once.
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = db.spam_evidence_page(before.as_ref(), 4).unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 4);
            before = Some(page[page.len() - 1].cursor());
            seen.extend(page.into_iter().map(|e| (e.epoch, e.nullifier)));
        }
        let mut expected: Vec<(u64, Fr)> = db
            .spam_evidence()
            .unwrap()
            .into_iter()
            .map(|e| (e.epoch, e.nullifier))
            .collect();
        expected.reverse();
        assert_eq!(seen, expected);
        assert_eq!(seen.len(), 15);
        // Pending: everything but the two settled ones, oldest first, up to the limit.
        let pending = db.pending_slashes(100).unwrap();
        assert_eq!(pending.len(), 13);
        assert_eq!(pending[0].epoch, 1);
        assert!(pending.iter().all(|e| !e.is_settled()));
        assert_eq!(db.pending_slashes(2).unwrap().len(), 2);
        // Pruning goes by epoch.
        assert_eq!(db.prune_evidence_before(3).unwrap(), 6);
        assert_eq!(db.spam_evidence().unwrap().len(), 9);
        assert!(db.spam_evidence().unwrap().iter().all(|e| e.epoch >= 3));
        assert_eq!(db.prune_evidence_before(3).unwrap(), 0);
    }
}
