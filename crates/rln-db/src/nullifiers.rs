//! The nullifier log: for each (epoch, nullifier) the share first seen with it.
//!
//! Only messages whose proof verified are recorded (the relay calls this after Groth16
//! verification), so the log cannot grow faster than members' limits allow: per epoch at most
//! the sum of the members' message limits. Epochs outside the accepted window are pruned.

use std::hash::{Hash, Hasher};

use rln_core::{fr_to_le_bytes, Fr};

use crate::db::RlnDb;
use crate::error::{rocks, DbError};
use crate::schema::*;

/// What was recorded for a nullifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NullifierRecord {
    /// The share's x (signal hash).
    pub x: Fr,
    /// The share's y.
    pub y: Fr,
    /// Hash of the message that carried the share.
    pub message_hash: [u8; 32],
    /// When it was first seen, milliseconds since the Unix epoch.
    pub first_seen_ms: u64,
}

impl NullifierRecord {
    pub(crate) fn encode(&self) -> [u8; 104] {
        let mut out = [0u8; 104];
        out[..32].copy_from_slice(&fr_to_le_bytes(&self.x));
        out[32..64].copy_from_slice(&fr_to_le_bytes(&self.y));
        out[64..96].copy_from_slice(&self.message_hash);
        out[96..].copy_from_slice(&self.first_seen_ms.to_le_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DbError> {
        if bytes.len() != 104 {
            return Err(DbError::Corrupt("nullifier record is not 104 bytes".into()));
        }
        Ok(Self {
            x: decode_fr(&bytes[..32], "nullifier record x")?,
            y: decode_fr(&bytes[32..64], "nullifier record y")?,
            message_hash: decode_hash(&bytes[64..96], "nullifier record hash")?,
            first_seen_ms: decode_u64(&bytes[96..], "nullifier record time")?,
        })
    }
}

/// The outcome of recording a share under its nullifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullifierVerdict {
    /// First share under this nullifier: recorded.
    New,
    /// The same share again (same x and y): a duplicate, not recorded again.
    Duplicate,
    /// A different share under the same nullifier: the member exceeded its limit.
    DoubleSignal {
        /// The share recorded first.
        previous: NullifierRecord,
    },
    /// The epoch is below the pruning floor: its log is (being) deleted, so the share can
    /// be compared with nothing and is not recorded. A message that waited in a queue while
    /// its epoch was pruned ends here instead of passing as new.
    Pruned,
}

impl RlnDb {
    pub(crate) fn nullifier_lock(&self, key: &[u8]) -> std::sync::MutexGuard<'_, ()> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        let stripe = (hasher.finish() as usize) % self.nullifier_locks.len();
        self.nullifier_locks[stripe]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The record under `(epoch, nullifier)`, if any.
    pub fn nullifier(
        &self,
        epoch: u64,
        nullifier: &Fr,
    ) -> Result<Option<NullifierRecord>, DbError> {
        self.db
            .get_pinned_cf(self.cf(CF_NULLIFIERS)?, nullifier_key(epoch, nullifier))
            .map_err(rocks("reading the nullifier log"))?
            .map(|v| NullifierRecord::decode(&v))
            .transpose()
    }

    /// Read-only pre-check: what [`Self::insert_nullifier`] would answer now, without writing.
    pub fn check_nullifier(
        &self,
        epoch: u64,
        nullifier: &Fr,
        x: &Fr,
        y: &Fr,
    ) -> Result<NullifierVerdict, DbError> {
        if epoch < self.nullifier_floor() {
            return Ok(NullifierVerdict::Pruned);
        }
        Ok(classify(self.nullifier(epoch, nullifier)?, x, y))
    }

    /// Records `record` under `(epoch, nullifier)` unless something is already there;
    /// atomic with respect to concurrent callers for the same key.
    pub fn insert_nullifier(
        &self,
        epoch: u64,
        nullifier: &Fr,
        record: &NullifierRecord,
    ) -> Result<NullifierVerdict, DbError> {
        let key = nullifier_key(epoch, nullifier);
        // Shared with other inserts, exclusive with pruning: the floor cannot move between
        // this check and the write below.
        let floor = self
            .nullifier_floor
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if epoch < *floor {
            return Ok(NullifierVerdict::Pruned);
        }
        let _guard = self.nullifier_lock(&key);
        let existing = self.nullifier(epoch, nullifier)?;
        let verdict = classify(existing, &record.x, &record.y);
        if verdict == NullifierVerdict::New {
            // The log is rebuilt by gossip within an epoch, so it is written without fsync.
            self.db
                .put_cf(self.cf(CF_NULLIFIERS)?, key, record.encode())
                .map_err(rocks("writing the nullifier log"))?;
        }
        Ok(verdict)
    }

    /// Deletes every record of epochs before `min_epoch`, after raising the floor below which
    /// [`Self::insert_nullifier`] and [`Self::check_nullifier`] answer
    /// [`NullifierVerdict::Pruned`]. The floor never goes down.
    pub fn prune_nullifiers_before(&self, min_epoch: u64) -> Result<(), DbError> {
        let cf = self.cf(CF_NULLIFIERS)?;
        let mut floor = self
            .nullifier_floor
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *floor = (*floor).max(min_epoch);
        self.db
            .delete_range_cf(cf, 0u64.to_be_bytes(), floor.to_be_bytes())
            .map_err(rocks("pruning the nullifier log"))
    }

    /// The oldest epoch the nullifier log still answers for.
    pub fn nullifier_floor(&self) -> u64 {
        *self
            .nullifier_floor
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Number of records in the log (exact; walks the keys).
    pub fn nullifier_count(&self) -> Result<usize, DbError> {
        let cf = self.cf(CF_NULLIFIERS)?;
        let mut n = 0;
        for item in self.db.iterator_cf(cf, rocksdb::IteratorMode::Start) {
            item.map_err(rocks("counting the nullifier log"))?;
            n += 1;
        }
        Ok(n)
    }
}

fn classify(existing: Option<NullifierRecord>, x: &Fr, y: &Fr) -> NullifierVerdict {
    match existing {
        None => NullifierVerdict::New,
        Some(previous) if &previous.x == x && &previous.y == y => NullifierVerdict::Duplicate,
        Some(previous) => NullifierVerdict::DoubleSignal { previous },
    }
}
