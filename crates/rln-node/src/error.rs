//! Errors of starting and running a node. Each says what went wrong and, where the operator
//! can act, what to change; settings are named by their key in the TOML file (the binary adds
//! the matching flag).

use thiserror::Error;

/// What can go wrong starting or running a node.
#[derive(Debug, Error)]
pub enum NodeError {
    /// A setting is unusable.
    #[error("configuration: `{key}` {problem}")]
    Config {
        /// The setting's key in the TOML file, e.g. `rln.epoch_secs`.
        key: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The keystore does not give a membership to publish with.
    #[error("membership: {0}")]
    Membership(String),
    /// The network, the relay protocol or publishing failed.
    #[error(transparent)]
    Relay(#[from] rln_relay::RelayError),
    /// The node's state failed.
    #[error(transparent)]
    Db(#[from] rln_db::DbError),
    /// Proving or key loading failed.
    #[error(transparent)]
    Zk(#[from] rln_zk::ZkError),
    /// The chain side failed.
    #[error(transparent)]
    Chain(#[from] rln_chain::ChainError),
    /// The keystore could not be read.
    #[error(transparent)]
    Keystore(#[from] rln_chain::KeystoreError),
    /// A file or socket could not be used.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A background task panicked or ended on its own; the node stopped.
    #[error("the node stopped because its {task} task {problem}")]
    TaskFailed {
        /// The task's name.
        task: &'static str,
        /// What happened to it.
        problem: String,
    },
    /// The node is shutting down.
    #[error("the node is shutting down")]
    Stopped,
}
