//! The protocols a node serves, one module (or folder) each.
//!
//! - [`relay`]: GossipSub with RLN validation: decode in the swarm task, validate on a bounded
//!   queue, one place that maps outcomes to what the wire says.
//! - [`metadata`], [`lightpush`], [`filter`], [`store`]: the request-response protocols of Waku's light
//!   clients, on raw libp2p streams ([`framing`], [`service`]) served outside the swarm task;
//!   [`resume`] fills a restarted node's history from another node's store.

pub mod client;
pub mod filter;
pub mod framing;
pub mod lightpush;
pub mod metadata;
pub mod relay;
pub mod resume;
pub mod service;
pub mod store;
