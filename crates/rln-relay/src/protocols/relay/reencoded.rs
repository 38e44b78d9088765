//! Copies of one message in other bytes.
//!
//! The gossipsub message id hashes the raw bytes (as nwaku's does, and as it must for
//! IHAVE/IWANT to work between implementations), so one valid message re-encoded (unknown
//! fields added, `ephemeral` flipped, lengths written long) passes gossip's duplicate cache as
//! a new message each time. Honest relays forward the bytes they received and never make such
//! copies. This guard keys each message by what it says (its Waku hash and the values of its
//! proof fields) before it is queued for validation: a second encoding of a known message is
//! ignored on the spot, without proof work or a place in the queue, and counts against the
//! peer that sent it.
//!
//! The count decays (halving every [`HALF_LIFE`]), and the first [`FREE_COPIES`] cost nothing:
//! an honest relay can forward one such copy when a spammer fed different encodings to
//! different nodes. Beyond that the peer's application score falls quadratically, through
//! the gossip and publish thresholds down to the graylist, where gossipsub stops reading it.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use libp2p::gossipsub::MessageId;
use libp2p::PeerId;

/// Copies a peer may send before its score falls.
pub const FREE_COPIES: f64 = 4.0;
/// The half-life of a peer's count.
pub const HALF_LIFE: Duration = Duration::from_secs(10);

/// Recent content keys and who sent copies.
#[derive(Debug)]
pub struct Reencodings {
    first: HashMap<[u8; 32], MessageId>,
    order: VecDeque<([u8; 32], Instant)>,
    ttl: Duration,
    capacity: usize,
    copies: HashMap<PeerId, (f64, Instant)>,
}

impl Reencodings {
    /// Remembers content keys for `ttl` (gossip's duplicate-cache time), at most `capacity`.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            first: HashMap::new(),
            order: VecDeque::new(),
            ttl,
            capacity: capacity.max(1),
            copies: HashMap::new(),
        }
    }

    /// Whether the message with content `key` and gossip id `id` is another encoding of a
    /// message seen before (under another id). Remembers it otherwise.
    pub fn is_copy(&mut self, key: [u8; 32], id: &MessageId, now: Instant) -> bool {
        while let Some((old, at)) = self.order.front() {
            if now.duration_since(*at) < self.ttl && self.order.len() < self.capacity {
                break;
            }
            self.first.remove(old);
            self.order.pop_front();
        }
        match self.first.get(&key) {
            Some(first) => first != id,
            None => {
                self.first.insert(key, id.clone());
                self.order.push_back((key, now));
                false
            }
        }
    }

    /// Counts a copy from `peer`; returns the application score the peer should now have.
    pub fn blame(&mut self, peer: PeerId, now: Instant) -> f64 {
        let entry = self.copies.entry(peer).or_insert((0.0, now));
        entry.0 = decayed(entry.0, now.duration_since(entry.1)) + 1.0;
        entry.1 = now;
        score(entry.0)
    }

    /// The scores of blamed peers as their counts decay; forgets peers back at zero.
    pub fn decay(&mut self, now: Instant) -> Vec<(PeerId, f64)> {
        let mut out = Vec::new();
        self.copies.retain(|peer, (count, at)| {
            *count = decayed(*count, now.duration_since(*at));
            *at = now;
            out.push((*peer, score(*count)));
            *count > 0.01
        });
        out
    }
}

fn decayed(count: f64, elapsed: Duration) -> f64 {
    count * 0.5f64.powf(elapsed.as_secs_f64() / HALF_LIFE.as_secs_f64())
}

/// `−(copies beyond the free ones)²`, weighted by gossipsub's application weight (10).
fn score(count: f64) -> f64 {
    let over = (count - FREE_COPIES).max(0.0);
    -(over * over)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> MessageId {
        MessageId::from(vec![n])
    }

    #[test]
    fn a_second_encoding_is_a_copy_and_the_same_bytes_are_not() {
        let mut r = Reencodings::new(Duration::from_secs(60), 100);
        let now = Instant::now();
        assert!(!r.is_copy([1; 32], &id(1), now));
        assert!(r.is_copy([1; 32], &id(2), now));
        assert!(!r.is_copy([1; 32], &id(1), now), "the same bytes again");
        assert!(!r.is_copy([2; 32], &id(3), now));
        // Past the ttl the key is forgotten.
        assert!(!r.is_copy([1; 32], &id(4), now + Duration::from_secs(61)));
    }

    #[test]
    fn memory_is_bounded() {
        let mut r = Reencodings::new(Duration::from_secs(60), 10);
        let now = Instant::now();
        for k in 0..100u8 {
            r.is_copy([k; 32], &id(k), now);
        }
        assert!(r.first.len() <= 10 && r.order.len() <= 10);
    }

    #[test]
    fn a_few_copies_are_free_and_a_flood_reaches_the_graylist() {
        let mut r = Reencodings::new(Duration::from_secs(60), 10);
        let peer = PeerId::random();
        let now = Instant::now();
        let scores: Vec<f64> = (0..40).map(|_| r.blame(peer, now)).collect();
        assert!(scores[..4].iter().all(|s| *s == 0.0));
        assert!(scores[4] < 0.0);
        // Weighted by 10 in gossipsub: below the graylist threshold (−10,000) after 40.
        assert!(scores[39] * 10.0 < crate::network::GRAYLIST_THRESHOLD);
        // And it heals: a minute later the count has halved six times.
        let later = r.decay(now + Duration::from_secs(60));
        assert_eq!(later, vec![(peer, 0.0)]);
    }
}
