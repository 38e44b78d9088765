//! The protocols a node serves, one module (or folder) each.
//!
//! - [`relay`]: GossipSub with RLN validation: decode in the swarm task, validate on a bounded
//!   queue, one place that maps outcomes to what the wire says.
//! - [`metadata`], [`lightpush`], [`filter`], [`store`]: the request-response protocols of
//!   Waku's light clients, on raw libp2p streams served outside the swarm task: [`framing`]
//!   reads and writes their frames, and [`reqres`] is the one scaffold of their servers
//!   (stream slots, size and time limits, the rate limit, metrics) and clients.
//! - [`resume`] fills a restarted node's history from another node's store; [`client`] is a
//!   Rust light client of them all.

pub mod client;
pub mod filter;
pub mod framing;
pub mod lightpush;
pub mod metadata;
pub mod relay;
pub mod reqres;
pub mod resume;
pub mod store;
