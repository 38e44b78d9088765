//! Message ids a local publisher has used, per member and epoch.
//!
//! A member that proves two different messages with the same `(epoch, message_id)` reveals its
//! secret, so an id must never be handed out twice, not even across a crash or a restart inside
//! the epoch. Each allocation is therefore written with fsync before the id is returned, and
//! the counter restarts at zero exactly when the epoch changes.

use rln_core::{fr_to_le_bytes, Fr};
use rocksdb::WriteOptions;

use crate::db::RlnDb;
use crate::error::{rocks, DbError};
use crate::schema::*;

/// The answer to a request for the next message id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// This id is now used; prove with it.
    Id(u64),
    /// Every id of this epoch is used.
    Exhausted {
        /// The member's limit.
        limit: u64,
    },
    /// The publisher already used ids in a later epoch: the clock went backwards. Handing out
    /// ids for the earlier epoch could repeat one, so nothing is allocated.
    EpochInPast {
        /// The latest epoch with allocations.
        latest: u64,
    },
}

fn decode_usage(bytes: &[u8]) -> Result<(u64, u64), DbError> {
    if bytes.len() != 16 {
        return Err(DbError::Corrupt("publisher record is not 16 bytes".into()));
    }
    Ok((
        decode_u64(&bytes[..8], "publisher epoch")?,
        decode_u64(&bytes[8..], "publisher count")?,
    ))
}

impl RlnDb {
    /// The latest epoch in which `member` (an id commitment) published, and how many ids it
    /// used there.
    pub fn message_ids_used(&self, member: &Fr) -> Result<Option<(u64, u64)>, DbError> {
        self.db
            .get_pinned_cf(self.cf(CF_PUBLISHER)?, fr_to_le_bytes(member))
            .map_err(rocks("reading the publisher counter"))?
            .map(|v| decode_usage(&v))
            .transpose()
    }

    /// Ids `member` may still use in `epoch` with `limit`.
    pub fn message_ids_left(&self, member: &Fr, epoch: u64, limit: u64) -> Result<u64, DbError> {
        Ok(match self.message_ids_used(member)? {
            Some((e, used)) if e == epoch => limit.saturating_sub(used),
            Some((e, _)) if e > epoch => 0,
            _ => limit,
        })
    }

    /// Allocates the next message id of `member` in `epoch`; the allocation is on disk
    /// (fsync) before this returns.
    pub fn allocate_message_id(
        &self,
        member: &Fr,
        epoch: u64,
        limit: u64,
    ) -> Result<Allocation, DbError> {
        let _guard = self
            .publisher_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let used = match self.message_ids_used(member)? {
            Some((latest, _)) if latest > epoch => return Ok(Allocation::EpochInPast { latest }),
            Some((latest, used)) if latest == epoch => used,
            _ => 0,
        };
        if used >= limit {
            return Ok(Allocation::Exhausted { limit });
        }
        let mut value = [0u8; 16];
        value[..8].copy_from_slice(&epoch.to_le_bytes());
        value[8..].copy_from_slice(&(used + 1).to_le_bytes());
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db
            .put_cf_opt(
                self.cf(CF_PUBLISHER)?,
                fr_to_le_bytes(member),
                value,
                &options,
            )
            .map_err(rocks("writing the publisher counter"))?;
        Ok(Allocation::Id(used))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DbConfig;

    #[test]
    fn ids_run_to_the_limit_and_restart_each_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let db = RlnDb::open(dir.path(), DbConfig::default()).unwrap();
        let member = Fr::from(7u64);
        assert_eq!(db.message_ids_left(&member, 10, 3).unwrap(), 3);
        for id in 0..3 {
            assert_eq!(
                db.allocate_message_id(&member, 10, 3).unwrap(),
                Allocation::Id(id)
            );
        }
        assert_eq!(
            db.allocate_message_id(&member, 10, 3).unwrap(),
            Allocation::Exhausted { limit: 3 }
        );
        assert_eq!(db.message_ids_left(&member, 10, 3).unwrap(), 0);
        assert_eq!(
            db.allocate_message_id(&member, 9, 3).unwrap(),
            Allocation::EpochInPast { latest: 10 }
        );
        assert_eq!(
            db.allocate_message_id(&member, 11, 3).unwrap(),
            Allocation::Id(0)
        );
        // Another member has its own counter.
        assert_eq!(
            db.allocate_message_id(&Fr::from(8u64), 11, 3).unwrap(),
            Allocation::Id(0)
        );
    }

    #[test]
    fn ids_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let member = Fr::from(7u64);
        {
            let db = RlnDb::open(dir.path(), DbConfig::default()).unwrap();
            db.allocate_message_id(&member, 5, 4).unwrap();
            db.allocate_message_id(&member, 5, 4).unwrap();
        }
        let db = RlnDb::open(dir.path(), DbConfig::default()).unwrap();
        assert_eq!(db.message_ids_used(&member).unwrap(), Some((5, 2)));
        assert_eq!(
            db.allocate_message_id(&member, 5, 4).unwrap(),
            Allocation::Id(2)
        );
    }
}
