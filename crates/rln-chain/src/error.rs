//! Errors of the chain side: RPC, contract calls, sync.

use thiserror::Error;

/// What can go wrong talking to the chain or applying what it says.
#[derive(Debug, Error)]
pub enum ChainError {
    /// No endpoint answered after every retry.
    #[error("RPC {what} failed on every endpoint ({endpoints}) after {attempts} tries: {last_error}; check the RPC endpoint and that the execution node is running")]
    Unreachable {
        /// The call that failed.
        what: &'static str,
        /// The endpoints tried.
        endpoints: String,
        /// Tries made.
        attempts: u32,
        /// The last error seen.
        last_error: String,
    },
    /// The endpoint refused a log query because its block range is too large.
    #[error("the RPC endpoint refused a log query over blocks {from}..={to} as too large")]
    RangeTooLarge {
        /// First block of the range.
        from: u64,
        /// Last block of the range.
        to: u64,
    },
    /// The endpoint serves another chain than the node is configured for.
    #[error("the RPC endpoint serves chain id {actual}, but the node is configured for {expected}; check the RPC endpoint and the configured chain id")]
    WrongChain {
        /// Configured chain id.
        expected: u64,
        /// The endpoint's chain id.
        actual: u64,
    },
    /// There is no contract at the configured address.
    #[error("no contract is deployed at {0}; check the contract address")]
    NoContract(String),
    /// A log could not be decoded as a membership event.
    #[error("cannot decode a membership event in block {block}: {reason}")]
    BadEvent {
        /// Block of the log.
        block: u64,
        /// What was wrong.
        reason: String,
    },
    /// The chain reorganised deeper than the history the node keeps.
    #[error("the chain reorganised below every block in the node's history (oldest kept: {oldest}); wipe the state and re-sync")]
    ReorgTooDeep {
        /// Oldest block the node could have rolled back to.
        oldest: u64,
    },
    /// A transaction reverted or could not be sent.
    #[error("transaction {what} failed: {reason}")]
    Transaction {
        /// What was being done.
        what: &'static str,
        /// The node's or the contract's reason.
        reason: String,
    },
    /// The node's state refused an update.
    #[error(transparent)]
    Db(#[from] rln_db::DbError),
    /// A setting (key, address, URL) is unusable.
    #[error("{0}")]
    Config(String),
}
