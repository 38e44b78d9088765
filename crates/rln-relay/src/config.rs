//! Settings of a relay node. Every field has a default that suits a Waku-like network; the
//! binary fills this from a TOML file and flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::wire::{SignalMode, DEFAULT_MAX_MESSAGE_BYTES};

/// Everything a node needs to start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Directory of the RocksDB state and the node key.
    pub data_dir: PathBuf,
    /// The chain and the membership contract.
    pub chain: ChainConfig,
    /// libp2p: addresses, peers, topics.
    pub network: NetworkConfig,
    /// RLN parameters the network agrees on.
    pub rln: RlnConfig,
    /// The validation pipeline.
    pub validation: ValidationConfig,
    /// The membership this node publishes with (none: relay only).
    pub membership: Option<MembershipConfig>,
    /// Slashing of detected spammers (off when absent).
    pub slash: Option<SlashConfig>,
    /// The REST API and `/metrics`.
    pub rest: RestConfig,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("rln-node-data"),
            chain: ChainConfig::default(),
            network: NetworkConfig::default(),
            rln: RlnConfig::default(),
            validation: ValidationConfig::default(),
            membership: None,
            slash: None,
            rest: RestConfig::default(),
        }
    }
}

/// Where memberships come from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// JSON-RPC endpoints, tried in order with failover.
    pub rpc: Vec<String>,
    /// Address of the membership contract (0x…).
    pub contract: String,
    /// Expected chain id; taken from the first endpoint when absent.
    pub chain_id: Option<u64>,
    /// Blocks to wait before applying a block (0 follows the head and rolls back on reorgs).
    pub confirmations: u64,
    /// Largest block range of one log query (halved when an endpoint refuses it).
    pub max_block_range: u64,
    /// How often to poll for new blocks, in milliseconds.
    pub poll_interval_ms: u64,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            rpc: vec!["http://127.0.0.1:8545".into()],
            contract: String::new(),
            chain_id: None,
            confirmations: 0,
            max_block_range: 5_000,
            poll_interval_ms: 1_000,
        }
    }
}

/// libp2p settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Multiaddresses to listen on.
    pub listen: Vec<String>,
    /// Peers to dial at start and keep connected (multiaddresses with `/p2p/<peer id>`).
    pub static_peers: Vec<String>,
    /// Peers to bootstrap Kademlia discovery from (multiaddresses with `/p2p/<peer id>`).
    pub bootstrap: Vec<String>,
    /// Pubsub topics to relay.
    pub pubsub_topics: Vec<String>,
    /// Largest message relayed, in bytes.
    pub max_message_bytes: usize,
    /// How long gossipsub remembers a message id, in seconds.
    pub seen_ttl_secs: u64,
    /// GossipSub heartbeat, in milliseconds.
    pub heartbeat_ms: u64,
    /// libp2p key file (protobuf-encoded); `node_key` in the data directory when absent.
    pub node_key: Option<PathBuf>,
    /// Peer-score weight of the squared count of invalid messages a peer forwarded. Two
    /// invalid messages at the default put a peer below the graylist threshold (−10,000).
    pub invalid_message_weight: f64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            listen: vec!["/ip4/0.0.0.0/tcp/60000".into()],
            static_peers: Vec::new(),
            bootstrap: Vec::new(),
            pubsub_topics: vec![DEFAULT_PUBSUB_TOPIC.into()],
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            seen_ttl_secs: 120,
            heartbeat_ms: 1_000,
            node_key: None,
            invalid_message_weight: crate::network::INVALID_MESSAGE_WEIGHT,
        }
    }
}

/// The default pubsub topic: cluster 1, shard 0.
pub const DEFAULT_PUBSUB_TOPIC: &str = "/waku/2/rs/1/0";

/// RLN parameters; every node of a network must agree on them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RlnConfig {
    /// Epoch length in seconds (Waku: 600).
    pub epoch_secs: u64,
    /// Largest accepted difference between a message's timestamp and the receive time.
    pub max_clock_gap_secs: u64,
    /// Roots accepted besides the current one.
    pub root_window: usize,
    /// Application tag (zero-padded into 32 bytes).
    pub rln_identifier: String,
    /// What the signal covers.
    pub signal: SignalMode,
    /// A ceremony `.zkey` (the INSECURE development key when absent).
    pub zkey: Option<PathBuf>,
    /// A verifying key (snarkjs JSON or arkworks bytes); taken from the zkey when absent.
    pub verifying_key: Option<PathBuf>,
}

impl Default for RlnConfig {
    fn default() -> Self {
        Self {
            epoch_secs: 600,
            max_clock_gap_secs: 20,
            root_window: rln_core::DEFAULT_ROOT_WINDOW,
            rln_identifier: "rln/waku-rln-relay/v2.0.0".into(),
            signal: SignalMode::Timestamped,
            zkey: None,
            verifying_key: None,
        }
    }
}

/// The validation pipeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationConfig {
    /// Blocking worker threads (0: one per core).
    pub workers: usize,
    /// Messages waiting for a worker; beyond this they are ignored.
    pub queue: usize,
    /// Most proofs verified in one batch.
    pub max_batch: usize,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        Self {
            workers: 0,
            queue: 4_096,
            max_batch: 64,
        }
    }
}

/// The membership a node publishes with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipConfig {
    /// Waku RLN keystore file.
    pub keystore: PathBuf,
    /// Its password (prefer the `RLN_KEYSTORE_PASSWORD` environment variable).
    #[serde(default)]
    pub password: String,
    /// Which membership of the keystore (the only one when absent).
    #[serde(default)]
    pub id: Option<String>,
}

/// Slashing detected spammers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlashConfig {
    /// Private key (hex) of the account that sends the commit and reveal transactions
    /// (prefer the `RLN_ETH_PRIVATE_KEY` environment variable).
    pub private_key: String,
    /// Who receives the slashed deposit (the signing account when absent).
    #[serde(default)]
    pub receiver: Option<String>,
}

/// The REST API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestConfig {
    /// Address of the REST API and `/metrics` (`None` disables both).
    pub listen: Option<SocketAddr>,
    /// Messages kept per topic for `GET /relay/v1/messages/{topic}`.
    pub cache_per_topic: usize,
}

impl Default for RestConfig {
    fn default() -> Self {
        Self {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 8645))),
            cache_per_topic: 200,
        }
    }
}

impl NodeConfig {
    /// The epoch length.
    pub fn epoch(&self) -> Duration {
        Duration::from_secs(self.rln.epoch_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_waku_like() {
        let c = NodeConfig::default();
        assert_eq!(c.rln.epoch_secs, 600);
        assert_eq!(c.rln.root_window, 50);
        assert_eq!(c.rln.max_clock_gap_secs, 20);
        assert_eq!(c.network.max_message_bytes, 150 * 1024);
        assert_eq!(c.network.pubsub_topics, vec!["/waku/2/rs/1/0".to_string()]);
    }

    #[test]
    fn serde_round_trip_and_unknown_fields() {
        let c = NodeConfig::default();
        let json = serde_json::to_string(&c).unwrap();
        let back: NodeConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back.rln.epoch_secs, c.rln.epoch_secs);
        assert!(serde_json::from_str::<NodeConfig>(r#"{"rln": {"epoch": 5}}"#).is_err());
    }
}
