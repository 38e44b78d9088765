//! Local delivery of valid messages: a bounded cache per subscribed topic for the REST API's
//! polling endpoints, a broadcast channel for in-process subscribers (filter among them), and
//! the Store's archive when one is attached.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};

use tokio::sync::broadcast;

use crate::archive::ArchiveSender;
use crate::wire::WakuMessage;

/// A valid message delivered to this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Its pubsub topic.
    pub topic: String,
    /// The message.
    pub message: WakuMessage,
    /// Its deterministic hash.
    pub hash: [u8; 32],
}

/// Where valid messages go.
#[derive(Debug)]
pub struct Hub {
    caches: Mutex<HashMap<String, VecDeque<WakuMessage>>>,
    per_topic: usize,
    tx: broadcast::Sender<Delivered>,
    archive: OnceLock<ArchiveSender>,
}

impl Hub {
    /// A hub keeping at most `per_topic` messages per cached topic.
    pub fn new(per_topic: usize) -> Self {
        let (tx, _) = broadcast::channel(4_096);
        Self {
            caches: Mutex::new(HashMap::new()),
            per_topic,
            tx,
            archive: OnceLock::new(),
        }
    }

    /// Sends every message delivered from now on (and every one the node publishes) to the
    /// archive too; returns `false` if one was already attached.
    pub fn attach_archive(&self, archive: ArchiveSender) -> bool {
        self.archive.set(archive).is_ok()
    }

    fn caches(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<WakuMessage>>> {
        self.caches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts caching `topic` for polling; returns `false` if it already was.
    pub fn cache_topic(&self, topic: &str) -> bool {
        let mut caches = self.caches();
        if caches.contains_key(topic) {
            return false;
        }
        caches.insert(topic.to_string(), VecDeque::new());
        true
    }

    /// Stops caching `topic`; returns `false` if it was not cached.
    pub fn uncache_topic(&self, topic: &str) -> bool {
        self.caches().remove(topic).is_some()
    }

    /// Whether `topic` is cached.
    pub fn is_cached(&self, topic: &str) -> bool {
        self.caches().contains_key(topic)
    }

    /// The cached topics.
    pub fn cached_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.caches().keys().cloned().collect();
        topics.sort();
        topics
    }

    /// Delivers a valid message.
    pub fn deliver(&self, topic: &str, message: WakuMessage) {
        let hash = message.hash(topic);
        self.deliver_hashed(topic, message, hash);
    }

    /// [`Self::deliver`] of a message whose hash on `topic` is already known. Messages the
    /// node publishes itself come here too (gossip never delivers them back): they reach the
    /// caches, the archive and in-process subscribers like any other.
    pub fn deliver_hashed(&self, topic: &str, message: WakuMessage, hash: [u8; 32]) {
        // A cache of 0 keeps nothing (an `==` test here once let it grow without bound).
        if self.per_topic > 0 {
            if let Some(cache) = self.caches().get_mut(topic) {
                while cache.len() >= self.per_topic {
                    cache.pop_front();
                }
                cache.push_back(message.clone());
            }
        }
        if let Some(archive) = self.archive.get() {
            archive.offer(topic, &message, hash);
        }
        // No receiver is not an error: nobody listens in process.
        let _ = self.tx.send(Delivered {
            topic: topic.to_string(),
            message,
            hash,
        });
    }

    /// Takes the messages cached for `topic` since the last call (`None`: not cached).
    pub fn take(&self, topic: &str) -> Option<Vec<WakuMessage>> {
        self.caches()
            .get_mut(topic)
            .map(|cache| cache.drain(..).collect())
    }

    /// A receiver of every message delivered from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Delivered> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: u8) -> WakuMessage {
        WakuMessage {
            payload: vec![n],
            ..Default::default()
        }
    }

    #[test]
    fn caches_only_subscribed_topics_and_bounds_them() {
        let hub = Hub::new(2);
        let mut rx = hub.subscribe();
        assert!(hub.cache_topic("a"));
        assert!(!hub.cache_topic("a"));
        for n in 0..3 {
            hub.deliver("a", msg(n));
        }
        hub.deliver("b", msg(9));
        assert_eq!(hub.take("a").unwrap(), vec![msg(1), msg(2)]);
        assert_eq!(hub.take("a").unwrap(), vec![]);
        assert_eq!(hub.take("b"), None);
        assert_eq!(rx.try_recv().unwrap().message, msg(0));
        assert!(hub.uncache_topic("a"));
        assert!(!hub.is_cached("a"));
    }

    #[test]
    fn a_cache_of_zero_keeps_nothing() {
        let hub = Hub::new(0);
        let mut rx = hub.subscribe();
        hub.cache_topic("a");
        for n in 0..100 {
            hub.deliver("a", msg(n));
        }
        assert_eq!(hub.take("a").unwrap(), vec![]);
        // Delivery to in-process subscribers is unaffected.
        assert_eq!(rx.try_recv().unwrap().message, msg(0));
    }
}
