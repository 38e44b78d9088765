//! The relay of an rln-node; the only crate that links libp2p.
//!
//! - [`wire`]: `WakuMessage`, the RLN signal and the deterministic message hash.
//! - [`network`]: the swarm (TCP, Noise, Yamux, identify, ping, Kademlia, GossipSub with
//!   Waku's protocol id and peer scoring) and the task that owns it.
//! - [`validation`]: the RLN checks in order, cheap first, and the one mapping of outcomes
//!   to gossipsub verdicts.
//! - [`pipeline`]: the bounded queue and the blocking workers that verify in batches.
//! - [`publisher`]: epochs, never-reused message ids and proofs for outgoing messages.
//! - [`hub`]: local delivery of valid messages.
//! - [`rest`]: the REST API and `/metrics`; [`metrics`]: the Prometheus metrics.
//! - [`node`]: [`Node`] starts and stops all of it; [`config`]: its settings.

pub mod config;
pub mod error;
pub mod hub;
pub mod metrics;
pub mod network;
pub mod node;
pub mod pipeline;
pub mod publisher;
pub mod rest;
pub mod validation;
pub mod wire;

pub use config::NodeConfig;
pub use error::RelayError;
pub use node::{Health, Node, NodeInner};
pub use publisher::MessageIdChoice;
pub use wire::WakuMessage;
