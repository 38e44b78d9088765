//! The message-id counter older rln-nodes kept in the database (`publisher` column family).
//!
//! The counter now lives in the message-id ledger beside the keystore ([`crate::ledger`]), out
//! of reach of `--reset`; a publisher takes over the database's record once, when the ledger
//! has none. The column family stays so that older data directories open unchanged.

use rln_core::{fr_to_le_bytes, Fr};

use crate::db::RlnDb;
use crate::error::{rocks, DbError};
use crate::schema::*;

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
    /// The latest epoch in which `member` (an id commitment) published according to the
    /// database of an older rln-node, and how many ids it used there.
    pub fn legacy_message_ids(&self, member: &Fr) -> Result<Option<(u64, u64)>, DbError> {
        self.db
            .get_pinned_cf(self.cf(CF_PUBLISHER)?, fr_to_le_bytes(member))
            .map_err(rocks("reading the publisher counter"))?
            .map(|v| decode_usage(&v))
            .transpose()
    }

    /// Writes a counter in the old place (for tests of the takeover).
    #[doc(hidden)]
    pub fn write_legacy_message_ids(
        &self,
        member: &Fr,
        epoch: u64,
        used: u64,
    ) -> Result<(), DbError> {
        let mut value = [0u8; 16];
        value[..8].copy_from_slice(&epoch.to_le_bytes());
        value[8..].copy_from_slice(&used.to_le_bytes());
        self.db
            .put_cf(self.cf(CF_PUBLISHER)?, fr_to_le_bytes(member), value)
            .map_err(rocks("writing the publisher counter"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DbConfig;

    #[test]
    fn a_legacy_counter_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let member = Fr::from(7u64);
        {
            let db = RlnDb::open(dir.path(), DbConfig::default()).unwrap();
            assert_eq!(db.legacy_message_ids(&member).unwrap(), None);
            db.write_legacy_message_ids(&member, 5, 2).unwrap();
        }
        let db = RlnDb::open(dir.path(), DbConfig::default()).unwrap();
        assert_eq!(db.legacy_message_ids(&member).unwrap(), Some((5, 2)));
    }
}
