//! Waku Relay with RLN: GossipSub on `/vac/waku/relay/2.0.0`, where every message carries a
//! rate-limit proof.
//!
//! - [`validation`]: the checks in order, cheap first, and the one mapping of outcomes to
//!   gossipsub verdicts ([`validation::Outcome::acceptance`]).
//! - [`pipeline`]: the bounded queue between the swarm task and the blocking workers, which
//!   verify whatever waits in one batch and send results back as [`pipeline::Validated`].
//! - [`publisher`]: epochs, message ids that are never reused, and the node's proofs.
//! - [`outbox`]: the one entry point for the node's own messages (REST, CLI, light push):
//!   prove, validate through the pipeline, publish, deliver locally; typed refusals.
//! - [`standing`]: which proofs are verified together (peers with a valid record, newcomers,
//!   and recent senders of bad proofs, one by one), so forged proofs do not split every batch.
//! - [`reencoded`]: other encodings of a known message, ignored before validation and
//!   counted against their sender.

pub mod outbox;
pub mod pipeline;
pub mod publisher;
pub mod reencoded;
pub mod standing;
pub mod validation;
