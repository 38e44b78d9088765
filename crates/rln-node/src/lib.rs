//! An rln-node assembled: settings, start-up in named steps, supervised background tasks and
//! the REST API. The binaries (`rln-node`, `rln-devnet`) sit on top of this library.
//!
//! - [`config`]: [`NodeConfig`] with one constant per default ([`config::defaults`]) and
//!   [`NodeConfig::validate`].
//! - [`node`]: [`Node::start`] opens the state ([`rln_db`]), starts membership sync
//!   ([`rln_chain`]), the validation workers, the network and the relay protocol
//!   ([`rln_relay`]), the publisher, the outbox and the REST API, in named steps.
//! - [`handle`]: [`NodeHandle`], what the API, the binaries and tests hold of a running node.
//! - [`keys`]: the membership from the keystore and the proving and verifying keys.
//! - [`rest`]: the REST API (nwaku-compatible relay paths, health, RLN, `/metrics`).
//! - [`banner`]: the lines the binary prints once it listens, and their parsers.
//! - `supervisor`: a background task that panics or ends on its own stops the node.
//!
//! ARCHITECTURE.md at the repository root shows how the crates fit together.

pub mod banner;
pub mod config;
pub mod error;
pub mod handle;
pub mod keys;
pub mod node;
pub mod rest;
mod supervisor;

pub use config::NodeConfig;
pub use error::NodeError;
pub use handle::{Health, KeysInfo, NodeHandle};
pub use node::Node;
