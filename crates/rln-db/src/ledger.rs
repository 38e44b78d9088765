//! The message-id ledger: which message ids a member has used, per epoch, kept beside its
//! keystore and outside the node's database.
//!
//! A member that proves two different messages with the same `(epoch, message_id)` reveals its
//! secret, so an id must never be handed out twice: not across a crash, not across a restart
//! inside the epoch, and not after the database is wiped (`--reset`) or the data directory is
//! replaced. The counter therefore lives in its own small file next to the keystore (the
//! thing that holds the secret), written with `fdatasync` before each id is returned.
//!
//! A member the ledger has no record of (a keystore copied from elsewhere, a lost ledger, a
//! torn record after a power loss) may have published in the current epoch from another
//! place, so it is marked *unrecorded* for the epoch in which it was first seen: publishing
//! resumes at id 0 in the next epoch. Registration records a new membership as having used
//! nothing, so a member that was just registered publishes at once.
//!
//! Layout: fixed 56-byte records, `commitment (32) ‖ epoch (8, LE) ‖ used (8, LE) ‖ check (8)`,
//! where `check` is FNV-1a over the first 48 bytes. A record is updated in place (one sector
//! write); new members are appended.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use rln_core::{fr_to_le_bytes, Fr};

use crate::error::DbError;
use crate::secret_file;

const RECORD: usize = 56;
/// `used` of a member whose ids in `epoch` are unknown: none may be handed out there.
const UNRECORDED: u64 = u64::MAX;

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
    /// The ledger does not know which ids the member used in this epoch (it was first seen
    /// here); ids start again at 0 in the next one.
    Unrecorded {
        /// The epoch without a record.
        epoch: u64,
    },
}

/// How the ledger came to know a member, when a publisher starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adoption {
    /// The ledger has its record.
    Known,
    /// The record was taken over from the node database of an older rln-node.
    Migrated,
    /// No record anywhere: publishing waits for the epoch after this one.
    Unrecorded {
        /// The epoch the member was first seen in.
        epoch: u64,
    },
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    index: u64,
    epoch: u64,
    used: u64,
    /// The record on disk failed its check (a write torn by a power loss).
    torn: bool,
}

#[derive(Debug)]
struct Inner {
    file: File,
    slots: HashMap<[u8; 32], Slot>,
    records: u64,
}

/// The message-id ledger of one keystore (see the module documentation).
#[derive(Debug)]
pub struct MessageIdLedger {
    path: PathBuf,
    inner: Mutex<Inner>,
}

fn check(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn encode(commitment: &[u8; 32], epoch: u64, used: u64) -> [u8; RECORD] {
    let mut r = [0u8; RECORD];
    r[..32].copy_from_slice(commitment);
    r[32..40].copy_from_slice(&epoch.to_le_bytes());
    r[40..48].copy_from_slice(&used.to_le_bytes());
    let c = check(&r[..48]);
    r[48..].copy_from_slice(&c.to_le_bytes());
    r
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

impl MessageIdLedger {
    /// Where the ledger of the keystore at `keystore` lives: beside it, named after it.
    pub fn path_for(keystore: &Path) -> PathBuf {
        let mut name = keystore.as_os_str().to_owned();
        name.push(".message-ids");
        PathBuf::from(name)
    }

    /// Opens the ledger at `path`, creating an empty one (mode 0600) if there is none.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let err = |what: &'static str| {
            let path = path.to_path_buf();
            move |source| DbError::File { what, path, source }
        };
        if !path.exists() {
            secret_file::write_private(path, &[]).map_err(err("cannot create the ledger"))?;
        }
        let bytes = std::fs::read(path).map_err(err("cannot read the ledger"))?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(err("cannot open the ledger for writing"))?;
        let mut slots = HashMap::new();
        // A trailing partial record is an append cut short: that member has no record.
        let records = (bytes.len() / RECORD) as u64;
        for (index, r) in bytes.chunks_exact(RECORD).enumerate() {
            let mut commitment = [0u8; 32];
            commitment.copy_from_slice(&r[..32]);
            let torn = check(&r[..48]) != u64_at(r, 48);
            slots.insert(
                commitment,
                Slot {
                    index: index as u64,
                    epoch: u64_at(r, 32),
                    used: u64_at(r, 40),
                    torn,
                },
            );
        }
        Ok(Self {
            path: path.to_path_buf(),
            inner: Mutex::new(Inner {
                file,
                slots,
                records,
            }),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(
        &self,
        inner: &mut Inner,
        member: [u8; 32],
        epoch: u64,
        used: u64,
    ) -> Result<(), DbError> {
        use std::os::unix::fs::FileExt;
        let (index, append) = match inner.slots.get(&member) {
            Some(s) => (s.index, false),
            None => (inner.records, true),
        };
        let record = encode(&member, epoch, used);
        let io = |source| DbError::File {
            what: "cannot write the ledger",
            path: self.path.clone(),
            source,
        };
        inner
            .file
            .write_all_at(&record, index * RECORD as u64)
            .map_err(io)?;
        inner.file.sync_data().map_err(io)?;
        if append {
            inner.records += 1;
        }
        inner.slots.insert(
            member,
            Slot {
                index,
                epoch,
                used,
                torn: false,
            },
        );
        Ok(())
    }

    /// Records a membership that was just registered: it has used no id in any epoch. A member
    /// the ledger already knows keeps its record.
    pub fn record_new(&self, member: &Fr) -> Result<(), DbError> {
        let key = fr_to_le_bytes(member);
        let mut inner = self.lock();
        if inner.slots.contains_key(&key) {
            return Ok(());
        }
        self.write(&mut inner, key, 0, 0)
    }

    /// Makes sure the ledger has a record of `member` when a publisher starts in `epoch`:
    /// its own, else `legacy` (the counter an older rln-node kept in its database), else an
    /// unrecorded mark for `epoch`.
    pub fn adopt(
        &self,
        member: &Fr,
        epoch: u64,
        legacy: Option<(u64, u64)>,
    ) -> Result<Adoption, DbError> {
        let key = fr_to_le_bytes(member);
        let mut inner = self.lock();
        match inner.slots.get(&key) {
            Some(s) if !s.torn => Ok(Adoption::Known),
            _ => match legacy {
                Some((e, used)) => {
                    self.write(&mut inner, key, e, used)?;
                    Ok(Adoption::Migrated)
                }
                None => {
                    self.write(&mut inner, key, epoch, UNRECORDED)?;
                    Ok(Adoption::Unrecorded { epoch })
                }
            },
        }
    }

    /// The latest epoch with a record for `member` and how many ids it used there (`None`
    /// for a member without a record, or unrecorded in that epoch).
    pub fn used(&self, member: &Fr) -> Option<(u64, u64)> {
        let inner = self.lock();
        let s = inner.slots.get(&fr_to_le_bytes(member))?;
        (!s.torn && s.used != UNRECORDED).then_some((s.epoch, s.used))
    }

    /// Ids `member` may still use in `epoch` with `limit`.
    pub fn left(&self, member: &Fr, epoch: u64, limit: u64) -> u64 {
        let inner = self.lock();
        match inner.slots.get(&fr_to_le_bytes(member)) {
            None => 0,
            Some(s) if s.torn => 0,
            Some(s) if s.epoch == epoch => limit.saturating_sub(s.used),
            Some(s) if s.epoch > epoch => 0,
            Some(_) => limit,
        }
    }

    /// Allocates the next message id of `member` in `epoch`; the allocation is on disk
    /// before this returns. A member without a record is marked unrecorded for `epoch`.
    pub fn allocate(&self, member: &Fr, epoch: u64, limit: u64) -> Result<Allocation, DbError> {
        let key = fr_to_le_bytes(member);
        let mut inner = self.lock();
        let used = match inner.slots.get(&key).copied() {
            // No record, or a torn one: ids of this epoch may have been used elsewhere.
            None | Some(Slot { torn: true, .. }) => {
                self.write(&mut inner, key, epoch, UNRECORDED)?;
                return Ok(Allocation::Unrecorded { epoch });
            }
            Some(s) if s.epoch > epoch => return Ok(Allocation::EpochInPast { latest: s.epoch }),
            Some(s) if s.epoch == epoch && s.used == UNRECORDED => {
                return Ok(Allocation::Unrecorded { epoch })
            }
            Some(s) if s.epoch == epoch => s.used,
            Some(_) => 0,
        };
        if used >= limit {
            return Ok(Allocation::Exhausted { limit });
        }
        self.write(&mut inner, key, epoch, used + 1)?;
        Ok(Allocation::Id(used))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(dir: &Path) -> MessageIdLedger {
        MessageIdLedger::open(&dir.join("keys.json.message-ids")).unwrap()
    }

    #[test]
    fn ids_run_to_the_limit_and_restart_each_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let l = ledger(dir.path());
        let member = Fr::from(7u64);
        l.record_new(&member).unwrap();
        assert_eq!(l.left(&member, 10, 3), 3);
        for id in 0..3 {
            assert_eq!(l.allocate(&member, 10, 3).unwrap(), Allocation::Id(id));
        }
        assert_eq!(
            l.allocate(&member, 10, 3).unwrap(),
            Allocation::Exhausted { limit: 3 }
        );
        assert_eq!(l.left(&member, 10, 3), 0);
        assert_eq!(
            l.allocate(&member, 9, 3).unwrap(),
            Allocation::EpochInPast { latest: 10 }
        );
        assert_eq!(l.allocate(&member, 11, 3).unwrap(), Allocation::Id(0));
        let other = Fr::from(8u64);
        l.record_new(&other).unwrap();
        assert_eq!(l.allocate(&other, 11, 3).unwrap(), Allocation::Id(0));
        assert_eq!(l.used(&member), Some((11, 1)));
    }

    #[test]
    fn ids_survive_a_reopen_and_recording_again_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let member = Fr::from(7u64);
        {
            let l = ledger(dir.path());
            l.record_new(&member).unwrap();
            l.allocate(&member, 5, 4).unwrap();
            l.allocate(&member, 5, 4).unwrap();
        }
        let l = ledger(dir.path());
        l.record_new(&member).unwrap();
        assert_eq!(l.adopt(&member, 5, None).unwrap(), Adoption::Known);
        assert_eq!(l.used(&member), Some((5, 2)));
        assert_eq!(l.allocate(&member, 5, 4).unwrap(), Allocation::Id(2));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(l.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "the ledger is private");
        }
    }

    #[test]
    fn an_unknown_member_waits_for_the_next_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let l = ledger(dir.path());
        let member = Fr::from(9u64);
        assert_eq!(
            l.adopt(&member, 20, None).unwrap(),
            Adoption::Unrecorded { epoch: 20 }
        );
        assert_eq!(l.left(&member, 20, 5), 0);
        assert_eq!(
            l.allocate(&member, 20, 5).unwrap(),
            Allocation::Unrecorded { epoch: 20 }
        );
        // The mark survives a reopen: a restart does not clear it.
        let l = ledger(dir.path());
        assert_eq!(
            l.allocate(&member, 20, 5).unwrap(),
            Allocation::Unrecorded { epoch: 20 }
        );
        assert_eq!(l.allocate(&member, 21, 5).unwrap(), Allocation::Id(0));
        // Without even an adoption, the first allocation marks the epoch.
        let stranger = Fr::from(10u64);
        assert_eq!(
            l.allocate(&stranger, 21, 5).unwrap(),
            Allocation::Unrecorded { epoch: 21 }
        );
    }

    #[test]
    fn a_counter_from_the_database_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let l = ledger(dir.path());
        let member = Fr::from(3u64);
        assert_eq!(
            l.adopt(&member, 7, Some((7, 2))).unwrap(),
            Adoption::Migrated
        );
        assert_eq!(l.allocate(&member, 7, 3).unwrap(), Allocation::Id(2));
    }

    #[test]
    fn a_torn_record_or_a_cut_append_is_treated_as_unrecorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json.message-ids");
        let (a, b) = (Fr::from(1u64), Fr::from(2u64));
        {
            let l = MessageIdLedger::open(&path).unwrap();
            l.record_new(&a).unwrap();
            l.record_new(&b).unwrap();
            l.allocate(&a, 4, 9).unwrap();
        }
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[40] ^= 0x01; // a's `used`, as if the write were torn
        bytes.truncate(RECORD + 20); // b's append cut short
        std::fs::write(&path, &bytes).unwrap();
        let l = MessageIdLedger::open(&path).unwrap();
        assert_eq!(l.used(&a), None);
        assert_eq!(
            l.allocate(&a, 4, 9).unwrap(),
            Allocation::Unrecorded { epoch: 4 }
        );
        assert_eq!(
            l.adopt(&b, 4, None).unwrap(),
            Adoption::Unrecorded { epoch: 4 }
        );
        assert_eq!(l.allocate(&a, 5, 9).unwrap(), Allocation::Id(0));
        assert_eq!(l.allocate(&b, 5, 9).unwrap(), Allocation::Id(0));
        // The rewritten records read back whole.
        let l = MessageIdLedger::open(&path).unwrap();
        assert_eq!((l.used(&a), l.used(&b)), (Some((5, 1)), Some((5, 1))));
    }
}
