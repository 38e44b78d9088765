//! The chain side of an rln-node; the only crate that links alloy (ethers-rs is deprecated in
//! favour of alloy, its successor).
//!
//! - [`contract`]: `sol!` bindings of the membership contract and the Poseidon hashers, and a
//!   deployment helper for tests and the devnet.
//! - [`membership`]: register (with the deposit), erase and withdraw.
//! - [`identity_file`]: the identity file of `rln-node keygen`.
//! - [`keystore`]: credentials in a Waku RLN keystore (v0.2) file.
//! - [`slash`]: commit-reveal slashing of a member whose secret leaked.
//! - [`rpc`]: several endpoints with failover and exponential backoff.
//! - [`sync`]: [`MembershipSync`] backfills `MembershipRegistered` / `MembershipErased` logs in
//!   bounded ranges, follows new blocks, rolls back on reorganisations and writes each block to
//!   `rln-db` in one batch.

pub mod contract;
pub mod error;
pub mod http;
pub mod identity_file;
pub mod keystore;
pub mod membership;
pub mod redact;
pub mod rpc;
pub mod slash;
pub mod sync;

/// Ethereum addresses, re-exported so that callers need not link alloy.
pub use alloy::primitives::Address;
pub use contract::{deploy, ContractParams, RlnMembership};
pub use error::ChainError;
pub use identity_file::{IdentityFile, IdentityFileError, StoredIdentity};
pub use keystore::{Keystore, KeystoreError, KeystoreMembership};
pub use membership::{erase, register, withdraw, Registration};
pub use redact::redact_url;
pub use rpc::{Pinned, RetryPolicy, RpcPool};
pub use slash::{slash_commitment, wallet_provider, SlashOutcome, Slasher};
pub use sync::{MembershipSync, SyncConfig, SyncReport, SyncStatus};
