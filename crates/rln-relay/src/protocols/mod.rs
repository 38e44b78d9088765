//! The protocols a node serves, one folder each. Each follows the relay's shape: decode in the
//! swarm task, work on a bounded queue, and one place that maps outcomes to what the wire says.

pub mod relay;
