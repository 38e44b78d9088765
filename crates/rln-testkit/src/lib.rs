//! Fixtures for the workspace's tests and benchmarks, in one place. Only ever a
//! dev-dependency: it panics with a message instead of returning errors, as fixtures do.
//!
//! - [`paths`]: the repository, the pinned tools (`make tools`), the interop data.
//! - [`archive`]: the store archive queries the benchmarks share.
//! - [`chain`]: anvil with the membership contract deployed, accounts, registrations.
//! - [`load`]: proved message pools and bare GossipSub peers that publish them and time
//!   their delivery, for load benchmarks.
//! - [`member`]: registered members with their Waku keystores.
//! - [`node`]: loopback node configurations and `rln-node run` child processes.
//! - [`postgres`]: a PostgreSQL server of the test's own, for the shared Store archive.
//! - [`proxy`]: a TCP proxy in front of the chain that a test cuts and restores.
//! - [`state`]: a node's state in a temporary directory with leaves set directly, no chain.
//! - [`tls`]: a TLS-terminating proxy with its own CA, for `https://` RPC.

// Fixtures fail loudly: a broken fixture is a broken test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod archive;
pub mod chain;
pub mod load;
pub mod member;
pub mod node;
pub mod paths;
pub mod postgres;
pub mod proxy;
pub mod state;
pub mod tls;

pub use chain::TestChain;
pub use member::TestMember;
pub use state::StateFixture;
