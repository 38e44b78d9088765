//! The window of recent membership roots a proof may be made against.
//!
//! A publisher proves against the root it saw; by the time its message arrives, other nodes
//! may have applied a few more registrations. Each node therefore accepts any of the last `N`
//! roots, each remembered with the block that produced it, so that a chain reorganisation can
//! drop the roots of abandoned blocks.

use std::collections::VecDeque;

use crate::field::Fr;

/// Roots kept by default (as in Waku's relay).
pub const DEFAULT_ROOT_WINDOW: usize = 50;

/// A root and the block after which the tree had it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootEntry {
    /// The tree root.
    pub root: Fr,
    /// The block whose events produced it.
    pub block: u64,
}

/// The last `capacity` distinct roots, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootWindow {
    capacity: usize,
    entries: VecDeque<RootEntry>,
}

impl RootWindow {
    /// An empty window holding at most `capacity` roots (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            entries: VecDeque::with_capacity(capacity),
        }
    }

    /// Rebuilds a window from stored entries, oldest first, keeping the newest `capacity`.
    pub fn from_entries(capacity: usize, entries: impl IntoIterator<Item = RootEntry>) -> Self {
        let mut window = Self::new(capacity);
        for entry in entries {
            window.push(entry);
        }
        window
    }

    /// Records the root after `entry.block`. A root equal to the newest one is not recorded
    /// again (blocks without membership events do not push older roots out). Returns the entry
    /// pushed out of the window, if any.
    pub fn push(&mut self, entry: RootEntry) -> Option<RootEntry> {
        if self
            .entries
            .back()
            .is_some_and(|last| last.root == entry.root)
        {
            return None;
        }
        self.entries.push_back(entry);
        if self.entries.len() > self.capacity {
            return self.entries.pop_front();
        }
        None
    }

    /// Whether `root` is one of the accepted roots. An empty window accepts nothing.
    pub fn contains(&self, root: &Fr) -> bool {
        self.entries.iter().any(|entry| &entry.root == root)
    }

    /// The newest root.
    pub fn latest(&self) -> Option<RootEntry> {
        self.entries.back().copied()
    }

    /// Drops the roots of blocks after `block` (a reorganisation abandoned them) and returns
    /// how many were dropped.
    pub fn rollback_after(&mut self, block: u64) -> usize {
        let before = self.entries.len();
        while self.entries.back().is_some_and(|entry| entry.block > block) {
            self.entries.pop_back();
        }
        before - self.entries.len()
    }

    /// The roots, oldest first.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = &RootEntry> {
        self.entries.iter()
    }

    /// Number of roots held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no root is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most roots the window holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(root: u64, block: u64) -> RootEntry {
        RootEntry {
            root: Fr::from(root),
            block,
        }
    }

    #[test]
    fn keeps_the_newest_and_evicts_the_oldest() {
        let mut window = RootWindow::new(3);
        assert!(
            !window.contains(&Fr::from(0u64)),
            "an empty window accepts nothing"
        );
        for i in 1..=3 {
            assert_eq!(window.push(entry(i, i)), None);
        }
        assert_eq!(window.push(entry(4, 4)), Some(entry(1, 1)));
        assert!(!window.contains(&Fr::from(1u64)));
        assert!(window.contains(&Fr::from(2u64)) && window.contains(&Fr::from(4u64)));
        assert_eq!(window.latest(), Some(entry(4, 4)));
    }

    #[test]
    fn repeated_roots_are_not_pushed_twice() {
        let mut window = RootWindow::new(2);
        window.push(entry(1, 1));
        window.push(entry(1, 2));
        window.push(entry(2, 3));
        assert_eq!(window.len(), 2);
        assert!(window.contains(&Fr::from(1u64)));
    }

    #[test]
    fn rollback_drops_abandoned_blocks() {
        let mut window = RootWindow::from_entries(10, (1..=5).map(|i| entry(i, i * 10)));
        assert_eq!(window.rollback_after(30), 2);
        assert_eq!(window.latest(), Some(entry(3, 30)));
        assert!(!window.contains(&Fr::from(4u64)));
    }
}
