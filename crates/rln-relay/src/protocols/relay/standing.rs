//! Which proofs are verified together. A combined check fails as a whole when one proof in it
//! is bad, and finding the bad one costs about two more checks per halving, paid for by every
//! message in the batch. So proofs are grouped by the standing of the peer that sent them:
//! peers whose proofs verified before (and none failed since) share one batch, peers not yet
//! seen to send a valid proof share another, and peers whose proof failed recently are checked
//! one by one. A flood of forged proofs from fresh peer ids then bisects only the newcomers'
//! batch and leaves the established peers' batches whole. The verdicts are the same either
//! way; only their cost moves.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// A peer's standing, from the proofs it sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Standing {
    /// Its last verified proof was valid (or the message is the node's own).
    Established,
    /// No proof of it verified yet.
    Newcomer,
    /// A proof of it failed recently: its proofs are checked one by one.
    Suspect,
}

/// How long a failed proof keeps its sender a suspect.
pub const SUSPECT_FOR: Duration = Duration::from_secs(600);
/// Peers remembered in each standing; past this the oldest knowledge is dropped (the peers
/// become newcomers again, which costs only batching).
pub const MAX_PEERS: usize = 8_192;

/// The standing of every peer that sent proofs lately.
#[derive(Debug, Default)]
pub struct Standings {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    established: HashSet<PeerId>,
    suspects: HashMap<PeerId, Instant>,
}

impl Standings {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The standing of each sender (`None`: the node's own message), at `now`.
    pub fn of(&self, senders: impl Iterator<Item = Option<PeerId>>, now: Instant) -> Vec<Standing> {
        let inner = self.lock();
        senders
            .map(|peer| match peer {
                None => Standing::Established,
                Some(p) => match inner.suspects.get(&p) {
                    Some(since) if now.duration_since(*since) < SUSPECT_FOR => Standing::Suspect,
                    _ if inner.established.contains(&p) => Standing::Established,
                    _ => Standing::Newcomer,
                },
            })
            .collect()
    }

    /// Records the verdicts on proofs `senders` sent, at `now`.
    pub fn record(&self, verdicts: impl Iterator<Item = (Option<PeerId>, bool)>, now: Instant) {
        let mut inner = self.lock();
        for (peer, valid) in verdicts {
            let Some(peer) = peer else { continue };
            if valid {
                if !inner.suspects.contains_key(&peer) {
                    if inner.established.len() >= MAX_PEERS {
                        inner.established.clear();
                    }
                    inner.established.insert(peer);
                }
            } else {
                inner.established.remove(&peer);
                if inner.suspects.len() >= MAX_PEERS {
                    inner
                        .suspects
                        .retain(|_, since| now.duration_since(*since) < SUSPECT_FOR);
                    if inner.suspects.len() >= MAX_PEERS {
                        inner.suspects.clear();
                    }
                }
                inner.suspects.insert(peer, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_earns_batching_with_a_valid_proof_and_loses_it_with_a_bad_one() {
        let s = Standings::default();
        let (honest, forger) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        let of = |p, t| s.of(std::iter::once(p), t)[0];
        assert_eq!(of(Some(honest), t0), Standing::Newcomer);
        assert_eq!(of(None, t0), Standing::Established);
        s.record(
            [(Some(honest), true), (Some(forger), false)].into_iter(),
            t0,
        );
        assert_eq!(of(Some(honest), t0), Standing::Established);
        assert_eq!(of(Some(forger), t0), Standing::Suspect);
        // A valid proof during the suspicion does not end it; time does.
        s.record(std::iter::once((Some(forger), true)), t0);
        assert_eq!(of(Some(forger), t0 + SUSPECT_FOR / 2), Standing::Suspect);
        assert_eq!(of(Some(forger), t0 + SUSPECT_FOR), Standing::Newcomer);
        // An established peer that sends a bad proof is a suspect at once.
        s.record(std::iter::once((Some(honest), false)), t0);
        assert_eq!(of(Some(honest), t0), Standing::Suspect);
    }

    #[test]
    fn what_is_remembered_is_bounded() {
        let s = Standings::default();
        let t0 = Instant::now();
        s.record(
            (0..2 * MAX_PEERS).map(|i| (Some(PeerId::random()), i % 2 == 0)),
            t0,
        );
        let inner = s.lock();
        assert!(inner.established.len() <= MAX_PEERS);
        assert!(inner.suspects.len() <= MAX_PEERS);
    }
}
