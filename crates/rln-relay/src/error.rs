//! Errors of the relay protocol and the network. Each says what went wrong and, where the user can act, what to do.

use std::time::Duration;

use thiserror::Error;

/// What can go wrong running the network or publishing through it.
#[derive(Debug, Error)]
pub enum RelayError {
    /// A setting is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// libp2p could not be set up or could not listen.
    #[error("network: {0}")]
    Network(String),
    /// GossipSub refused to publish (for instance, no peer on the topic yet).
    #[error("publishing failed: {0}")]
    Publish(String),
    /// No connected peer relays the topic.
    #[error("no connected peer relays {0}")]
    NoPeers(String),
    /// The node has no membership configured.
    #[error("this node has no RLN membership; start it with a keystore to publish")]
    NoMembership,
    /// Every message id of this epoch is used.
    #[error(
        "the message limit of {limit} per epoch is used up; the next epoch starts in {} s",
        next_epoch_in.as_secs()
    )]
    LimitReached {
        /// The membership's limit.
        limit: u64,
        /// Time until the next epoch starts.
        next_epoch_in: Duration,
    },
    /// The message-id ledger has no record of this epoch for the membership (first seen
    /// here): an id may already have been used elsewhere, so none is handed out until the
    /// next epoch.
    #[error(
        "the message-id ledger {ledger} has no record of the ids this membership used in the \
         current epoch (a keystore brought from elsewhere, or a lost ledger): to never use an \
         id twice, publishing starts with the next epoch, in {} s",
        next_epoch_in.as_secs()
    )]
    Unrecorded {
        /// The ledger file.
        ledger: String,
        /// Time until the next epoch starts.
        next_epoch_in: Duration,
    },
    /// The clock is behind an epoch this node already published in.
    #[error("the clock is behind epoch {latest}, in which this node already published; fix the system clock")]
    ClockBehind {
        /// The latest epoch with messages.
        latest: u64,
    },
    /// The membership's leaf is not (or no longer) in the synced tree.
    #[error("membership {index} is not in the synced tree ({why}); wait for sync or check the registration")]
    NotInTree {
        /// The leaf index.
        index: u64,
        /// What the tree holds there.
        why: String,
    },
    /// The message is not acceptable as given.
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// The node's state failed.
    #[error(transparent)]
    Db(#[from] rln_db::DbError),
    /// Proving or key loading failed.
    #[error(transparent)]
    Zk(#[from] rln_zk::ZkError),
    /// A file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The node is shutting down.
    #[error("the node is shutting down")]
    Stopped,
}
