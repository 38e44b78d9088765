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

impl SpamEvidence {
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

    /// All stored evidence, oldest epoch first.
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
        assert_eq!(stored[0].slash_status, "slashed in block 7");
        assert_eq!(
            SpamEvidence {
                slash_status: "slashed in block 7".into(),
                ..evidence
            },
            stored[0]
        );
    }
}
