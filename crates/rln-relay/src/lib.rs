//! The network protocols of an rln-node; the only crate that links libp2p.
//!
//! - [`wire`]: `WakuMessage`, the RLN signal and the deterministic message hash.
//! - [`network`]: the swarm (TCP, Noise, Yamux, identify, ping, Kademlia, GossipSub with
//!   Waku's protocol id and peer scoring) and the task that owns it; [`handle`]: how the rest
//!   of a node talks to that task.
//! - [`protocols`]: one folder per protocol. [`protocols::relay`] holds the RLN validation,
//!   the validation pipeline and the publisher.
//! - [`clock`]: the wall clock in nanoseconds, as Waku timestamps count.
//! - [`hub`]: local delivery of valid messages; [`archive`]: feeding them to the Store's
//!   archive and pruning it; [`metrics`]: the Prometheus metrics.
//!
//! Nothing here knows about the chain: the node (the `rln-node` crate) syncs the membership
//! tree into `rln-db`, and validation reads it from there. ARCHITECTURE.md draws the path of a
//! message through these modules.

pub mod archive;
pub mod clock;
pub mod error;
pub mod handle;
pub mod hub;
pub mod metrics;
pub mod network;
pub mod protocols;
pub mod wire;

pub use error::RelayError;
pub use handle::{NetworkHandle, PeerSummary};
pub use libp2p::identity::Keypair;
pub use libp2p::{Multiaddr, PeerId};
pub use protocols::relay::outbox::{
    Outbox, OutboxSettings, Proof, Publication, Published, Refusal,
};
pub use protocols::relay::publisher::{Member, MessageIdChoice, Publisher};
pub use protocols::relay::validation::{Outcome, Reason, Rules, SyncView, Validator};
pub use wire::{SignalMode, WakuMessage, DEFAULT_PUBSUB_TOPIC};
