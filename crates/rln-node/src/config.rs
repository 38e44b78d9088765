//! Settings of a node. Each default is one constant in [`defaults`], used by serde (a TOML
//! file may leave any setting out) and by the binary's flags (`--help` prints it).
//! [`NodeConfig::validate`] refuses unusable values before anything starts, naming the
//! setting by its key in the TOML file.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use rln_chain::Address;
use rln_core::RlnIdentifier;
use rln_db::Retention;
use rln_relay::network::parse_addrs;
use rln_relay::SignalMode;
use serde::{Deserialize, Serialize};

use crate::error::NodeError;

/// The default of every setting.
pub mod defaults {
    use super::*;

    /// `data_dir`.
    pub const DATA_DIR: &str = "rln-node-data";
    /// `slash.confirmations`.
    pub const SLASH_CONFIRMATIONS: u64 = 64;

    /// `slash.confirmations`, for serde.
    pub fn slash_confirmations() -> u64 {
        SLASH_CONFIRMATIONS
    }

    /// `chain.rpc`.
    pub const RPC: &str = "http://127.0.0.1:8545";
    /// `chain.confirmations`: follow the head and roll back on reorganisations.
    pub const CONFIRMATIONS: u64 = rln_chain::sync::DEFAULT_CONFIRMATIONS;
    /// `chain.max_block_range`.
    pub const MAX_BLOCK_RANGE: u64 = rln_chain::sync::DEFAULT_MAX_BLOCK_RANGE;
    /// `chain.poll_interval_ms`.
    pub const POLL_INTERVAL_MS: u64 = rln_chain::sync::DEFAULT_POLL_INTERVAL.as_millis() as u64;
    /// `network.listen`: TCP for relay peers, WebSocket for light clients (js-waku dials
    /// nothing else).
    pub const LISTEN: &str = "/ip4/0.0.0.0/tcp/60000";
    /// `network.listen`, second address.
    pub const LISTEN_WS: &str = "/ip4/0.0.0.0/tcp/8000/ws";
    /// `network.cluster_id`: Waku's public cluster.
    pub const CLUSTER_ID: u32 = 1;
    /// `lightpush.requests_per_minute`.
    pub const LIGHTPUSH_REQUESTS_PER_MINUTE: u32 = 60;
    /// `filter.max_content_topics_per_request` (as nwaku).
    pub const FILTER_MAX_CONTENT_TOPICS: usize = 100;
    /// `filter.max_criteria_per_peer` (as nwaku).
    pub const FILTER_MAX_CRITERIA_PER_PEER: usize = 1_000;
    /// `filter.max_peers`.
    pub const FILTER_MAX_PEERS: usize = 1_000;
    /// `filter.subscription_ttl_secs` (as nwaku; js-waku pings every 60 s).
    pub const FILTER_TTL_SECS: u64 = 300;
    /// `filter.requests_per_minute` (as nwaku).
    pub const FILTER_REQUESTS_PER_MINUTE: u32 = 30;
    /// `filter.push_queue`.
    pub const FILTER_PUSH_QUEUE: usize = 64;
    /// `filter.push_timeout_secs` (as nwaku).
    pub const FILTER_PUSH_TIMEOUT_SECS: u64 = 20;
    /// `store.retention`: two days, as nwaku.
    pub const STORE_RETENTION: &str = "time:172800";
    /// `store.requests_per_minute`: js-waku asks one page of 20 per request, so a client
    /// reading 6,000 messages a minute stays within it.
    pub const STORE_REQUESTS_PER_MINUTE: u32 = 300;
    /// `store.queue`: messages waiting for the archive writer.
    pub const STORE_QUEUE: usize = 16_384;
    /// `store.prune_interval_secs`.
    pub const STORE_PRUNE_INTERVAL_SECS: u64 = 30;
    /// `network.pubsub_topics`: cluster 1, shard 0.
    pub const PUBSUB_TOPIC: &str = rln_relay::DEFAULT_PUBSUB_TOPIC;
    /// `network.max_message_bytes` (150 KiB, as Waku).
    pub const MAX_MESSAGE_BYTES: usize = rln_relay::wire::DEFAULT_MAX_MESSAGE_BYTES;
    /// `network.seen_ttl_secs`.
    pub const SEEN_TTL_SECS: u64 = 120;
    /// `network.heartbeat_ms`.
    pub const HEARTBEAT_MS: u64 = 1_000;
    /// `network.mesh_degree`: GossipSub's D, as Waku's nodes use it.
    pub const MESH_DEGREE: usize = rln_relay::network::MESH_DEGREE;
    /// `network.invalid_message_weight`.
    pub const INVALID_MESSAGE_WEIGHT: f64 = rln_relay::network::INVALID_MESSAGE_WEIGHT;
    /// `rln.epoch_secs` (Waku: 600).
    pub const EPOCH_SECS: u64 = 600;
    /// `rln.max_clock_gap_secs`.
    pub const MAX_CLOCK_GAP_SECS: u64 = 20;
    /// `rln.root_window`.
    pub const ROOT_WINDOW: usize = rln_core::DEFAULT_ROOT_WINDOW;
    /// `rln.keys`: the circuit and key Waku's nodes use.
    pub const KEYS: rln_zk::KeySet = rln_zk::KeySet::Waku;
    /// `rln.rln_identifier`: Waku's.
    pub const RLN_IDENTIFIER: &str = "rln/waku-rln-relay/v2.0.0";
    /// `validation.workers`: 0 is one per core.
    pub const VALIDATION_WORKERS: usize = 0;
    /// `validation.queue`.
    pub const VALIDATION_QUEUE: usize = 4_096;
    /// `validation.max_batch`.
    pub const MAX_BATCH: usize = 64;
    /// `rest.listen`: loopback only (the API has no authentication).
    pub const REST_LISTEN: SocketAddr =
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 8645));
    /// `rest.cache_per_topic`.
    pub const CACHE_PER_TOPIC: usize = 200;
}

/// Shortest poll interval, heartbeat and the like: below this a node spins.
const MIN_INTERVAL_MS: u64 = 50;

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
    /// Light push service for light clients.
    pub lightpush: LightPushConfig,
    /// Filter service for light clients.
    pub filter: FilterConfig,
    /// The message archive and the Store service.
    pub store: StoreConfig,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(defaults::DATA_DIR),
            chain: ChainConfig::default(),
            network: NetworkConfig::default(),
            rln: RlnConfig::default(),
            validation: ValidationConfig::default(),
            membership: None,
            slash: None,
            rest: RestConfig::default(),
            lightpush: LightPushConfig::default(),
            filter: FilterConfig::default(),
            store: StoreConfig::default(),
        }
    }
}

/// The message archive and Store v3 (`/vac/waku/store-query/3.0.0`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Archive valid messages and serve them.
    pub enabled: bool,
    /// What to keep: `time:<seconds>`, `capacity:<messages>`, `size:<N>KB|MB|GB`, or several
    /// joined by `|` (each applies).
    pub retention: String,
    /// Queries per peer per minute (0: no limit).
    pub requests_per_minute: u32,
    /// Messages waiting for the archive writer; more are left out of the history (counted
    /// in `rln_node_store_archived_total{result="dropped"}`), never delaying relay.
    pub queue: usize,
    /// How often the retention is enforced.
    pub prune_interval_secs: u64,
    /// Store each message's RLN proof: what lets another rln-node check this history when it
    /// resumes from it (about 0.33 KiB more per message). Off by default, as nwaku: turn it on
    /// on the store nodes other rln-nodes resume from.
    pub keep_proofs: bool,
    /// At start, fill the gap since the newest archived message from a peer's store
    /// (messages fetched are checked as relay traffic is).
    pub resume: bool,
    /// The store node to resume from (multiaddress with /p2p/<id>); absent: the first
    /// static peer.
    pub resume_peer: Option<String>,
    /// A PostgreSQL server to keep the history in instead of the node's RocksDB
    /// (`postgres://user:password@host:port/dbname`): several store nodes given one database
    /// share one history. Prefer the `RLN_STORE_DB_URL` environment variable when the URL
    /// holds a password. Absent: the embedded archive.
    #[serde(skip_serializing)]
    pub db_url: Option<String>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            retention: defaults::STORE_RETENTION.to_string(),
            requests_per_minute: defaults::STORE_REQUESTS_PER_MINUTE,
            queue: defaults::STORE_QUEUE,
            prune_interval_secs: defaults::STORE_PRUNE_INTERVAL_SECS,
            keep_proofs: false,
            resume: false,
            resume_peer: None,
            db_url: None,
        }
    }
}

/// Parses a retention policy: `time:<seconds>`, `capacity:<messages>`, `size:<N>KB|MB|GB`
/// (nwaku's forms), or several joined by `|`.
pub fn parse_retention(text: &str) -> Result<Retention, String> {
    let mut retention = Retention::default();
    for part in text.split('|').map(str::trim) {
        let (kind, value) = part.split_once(':').ok_or_else(|| {
            format!("`{part}` is not `time:<s>`, `capacity:<n>` or `size:<N>MB|GB`")
        })?;
        let number = |v: &str| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| format!("`{v}` in `{part}` is not a whole number"))
        };
        match kind.trim() {
            "time" => retention.max_age_ns = Some(number(value)?.saturating_mul(1_000_000_000)),
            "capacity" => retention.max_count = Some(number(value)?),
            "size" => {
                let v = value.trim().to_ascii_uppercase();
                let (digits, unit) =
                    v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
                let scale: u64 = match unit.trim() {
                    "KB" => 1 << 10,
                    "MB" => 1 << 20,
                    "GB" => 1 << 30,
                    _ => return Err(format!("`{part}`: the size needs a unit, KB, MB or GB")),
                };
                retention.max_bytes = Some(number(digits)?.saturating_mul(scale));
            }
            other => {
                return Err(format!(
                    "`{other}` is not a retention kind (time, capacity or size)"
                ))
            }
        }
    }
    if retention == Retention::default() {
        return Err("sets no bound".to_string());
    }
    Ok(retention)
}

/// Light push (`/vac/waku/lightpush/3.0.0` and `2.0.0-beta1`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LightPushConfig {
    /// Serve it.
    pub enabled: bool,
    /// Prove messages that arrive without a proof, with the node's membership.
    pub rln_proofs: bool,
    /// Messages each client may have proved per epoch (absent: an equal share of the
    /// membership's limit among the clients of this epoch and the previous one).
    pub client_share: Option<u64>,
    /// Requests per client per minute (0: no limit).
    pub requests_per_minute: u32,
}

impl Default for LightPushConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            rln_proofs: true,
            client_share: None,
            requests_per_minute: defaults::LIGHTPUSH_REQUESTS_PER_MINUTE,
        }
    }
}

/// Filter (`/vac/waku/filter-subscribe/2.0.0-beta1`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilterConfig {
    /// Serve it.
    pub enabled: bool,
    /// Content topics in one request.
    pub max_content_topics_per_request: usize,
    /// Criteria (pubsub topic, content topic) one peer may hold.
    pub max_criteria_per_peer: usize,
    /// Peers that may hold subscriptions at once.
    pub max_peers: usize,
    /// A subscription not refreshed by a request for this long is dropped.
    pub subscription_ttl_secs: u64,
    /// Requests per peer per minute (0: no limit).
    pub requests_per_minute: u32,
    /// Pushes waiting per subscriber; a subscriber that lets this many drop in a row is
    /// unsubscribed.
    pub push_queue: usize,
    /// Longest wait to open a push stream or write one push.
    pub push_timeout_secs: u64,
}

impl Default for FilterConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_content_topics_per_request: defaults::FILTER_MAX_CONTENT_TOPICS,
            max_criteria_per_peer: defaults::FILTER_MAX_CRITERIA_PER_PEER,
            max_peers: defaults::FILTER_MAX_PEERS,
            subscription_ttl_secs: defaults::FILTER_TTL_SECS,
            requests_per_minute: defaults::FILTER_REQUESTS_PER_MINUTE,
            push_queue: defaults::FILTER_PUSH_QUEUE,
            push_timeout_secs: defaults::FILTER_PUSH_TIMEOUT_SECS,
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
    /// PEM file of extra CA certificates trusted for `https://` endpoints (a private CA);
    /// the platform's trust store is always used.
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            rpc: vec![defaults::RPC.into()],
            contract: String::new(),
            chain_id: None,
            confirmations: defaults::CONFIRMATIONS,
            max_block_range: defaults::MAX_BLOCK_RANGE,
            poll_interval_ms: defaults::POLL_INTERVAL_MS,
            ca_file: None,
        }
    }
}

/// libp2p settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Multiaddresses to listen on (`/tcp/N` for relay peers, `/tcp/N/ws` for light clients).
    pub listen: Vec<String>,
    /// The Waku cluster; the shards announced to peers are those of `pubsub_topics` in it.
    pub cluster_id: u32,
    /// Peers to dial at start and keep connected (multiaddresses with `/p2p/<peer id>`).
    pub static_peers: Vec<String>,
    /// Peers to bootstrap Kademlia discovery from (multiaddresses with `/p2p/<peer id>`).
    pub bootstrap: Vec<String>,
    /// Find and dial peers through Kademlia (and the addresses peers announce). Off, the node
    /// keeps to its static and bootstrap peers and to those that dial it: a fixed topology,
    /// as benchmarks and private networks with a planned mesh want.
    pub discovery: bool,
    /// Pubsub topics to relay.
    pub pubsub_topics: Vec<String>,
    /// Largest message relayed, in bytes.
    pub max_message_bytes: usize,
    /// How long gossipsub remembers a message id, in seconds.
    pub seen_ttl_secs: u64,
    /// GossipSub heartbeat, in milliseconds.
    pub heartbeat_ms: u64,
    /// GossipSub's mesh degree D: the peers each topic's messages are pushed to in full. The
    /// mesh is kept between D − D/3 and D + D/3 peers; more means lower latency and more
    /// bytes sent per message (`make simulate` measures both).
    pub mesh_degree: usize,
    /// libp2p key file (protobuf-encoded); `node_key` in the data directory when absent.
    pub node_key: Option<PathBuf>,
    /// Peer-score weight of the squared count of invalid messages a peer forwarded. Two
    /// invalid messages at the default put a peer below the graylist threshold (−10,000).
    pub invalid_message_weight: f64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            listen: vec![defaults::LISTEN.into(), defaults::LISTEN_WS.into()],
            cluster_id: defaults::CLUSTER_ID,
            static_peers: Vec::new(),
            bootstrap: Vec::new(),
            discovery: true,
            pubsub_topics: vec![defaults::PUBSUB_TOPIC.into()],
            max_message_bytes: defaults::MAX_MESSAGE_BYTES,
            seen_ttl_secs: defaults::SEEN_TTL_SECS,
            heartbeat_ms: defaults::HEARTBEAT_MS,
            mesh_degree: defaults::MESH_DEGREE,
            node_key: None,
            invalid_message_weight: defaults::INVALID_MESSAGE_WEIGHT,
        }
    }
}

/// RLN parameters; every node of a network must agree on them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RlnConfig {
    /// Epoch length in seconds (Waku: 600).
    pub epoch_secs: u64,
    /// Largest accepted difference between a message's timestamp and the receive time.
    pub max_clock_gap_secs: u64,
    /// How far another honest node's view of the membership may differ from this node's.
    /// Messages proved against roots an erasure revoked still pass when stamped this long
    /// after the erasure (the sender's node may not have seen it yet), and a root this node
    /// does not know is not held against the sender until the node has synced this long
    /// after the message was stamped. Cover the slowest honest node: its confirmations × the
    /// block time, its poll interval and the clock gap. Default: this node's own such lag,
    /// with 12 s blocks.
    pub chain_lag_secs: Option<u64>,
    /// Roots accepted besides the current one.
    pub root_window: usize,
    /// Application tag (zero-padded into 32 bytes).
    pub rln_identifier: String,
    /// What the signal covers.
    pub signal: SignalMode,
    /// The compiled-in key set: `waku` (Waku's circuit and key) or `dev` (this repository's
    /// circuit with the INSECURE development key, refused off a development chain unless
    /// `insecure_dev_keys`). The files below replace parts of it.
    pub keys: rln_zk::KeySet,
    /// A proving key file (snarkjs `.zkey` or `.arkzkey`) instead of the set's.
    pub zkey: Option<PathBuf>,
    /// The witness graph of `zkey`'s circuit; without it `zkey` must be for this repository's
    /// circuit.
    pub witness_graph: Option<PathBuf>,
    /// A verifying key file (snarkjs JSON or arkworks bytes); the proving key's when absent.
    pub verifying_key: Option<PathBuf>,
    /// Accept the INSECURE development key on a chain other than a local development chain
    /// (anvil's chain id 31337). Anyone can forge proofs against that key.
    pub insecure_dev_keys: bool,
}

impl Default for RlnConfig {
    fn default() -> Self {
        Self {
            epoch_secs: defaults::EPOCH_SECS,
            max_clock_gap_secs: defaults::MAX_CLOCK_GAP_SECS,
            chain_lag_secs: None,
            root_window: defaults::ROOT_WINDOW,
            rln_identifier: defaults::RLN_IDENTIFIER.into(),
            signal: SignalMode::Timestamped,
            keys: defaults::KEYS,
            zkey: None,
            witness_graph: None,
            verifying_key: None,
            insecure_dev_keys: false,
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
    /// Verify the proofs of peers with a valid record, of newcomers and of recent senders of
    /// bad proofs apart (see ARCHITECTURE.md, "The path of a message"); false puts every
    /// waiting proof in one batch, which a single forged proof makes bisect.
    pub group_by_standing: bool,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        Self {
            workers: defaults::VALIDATION_WORKERS,
            queue: defaults::VALIDATION_QUEUE,
            max_batch: defaults::MAX_BATCH,
            group_by_standing: true,
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
    /// Blocks a slash must be buried under before its evidence is settled. Until then the
    /// slasher keeps checking that the member is no longer slashable, and slashes again when
    /// a reorganisation undid the slash. 64 blocks: two Ethereum epochs, after which a block
    /// is final. 0 settles a slash in the block it lands.
    #[serde(default = "defaults::slash_confirmations")]
    pub confirmations: u64,
}

impl SlashConfig {
    /// Slashing with this key, the reward to its account, the default confirmation depth.
    pub fn new(private_key: impl Into<String>) -> Self {
        Self {
            private_key: private_key.into(),
            receiver: None,
            confirmations: defaults::SLASH_CONFIRMATIONS,
        }
    }
}

/// The REST API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestConfig {
    /// Address of the REST API and `/metrics` (`None` disables both).
    pub listen: Option<SocketAddr>,
    /// Messages kept per topic for `GET /relay/v1/messages/{topic}` (0: none).
    pub cache_per_topic: usize,
    /// When set, every request but `GET /health` must carry `Authorization: Bearer <token>`
    /// (prefer the `RLN_REST_TOKEN` environment variable to writing it here). Never printed.
    #[serde(skip_serializing)]
    pub token: Option<String>,
    /// Host names (with or without a port) requests may address. Empty: the loopback names
    /// when the API listens on loopback (so a web page cannot reach it through DNS
    /// rebinding), any name otherwise.
    pub allowed_hosts: Vec<String>,
}

impl Default for RestConfig {
    fn default() -> Self {
        Self {
            listen: Some(defaults::REST_LISTEN),
            cache_per_topic: defaults::CACHE_PER_TOPIC,
            token: None,
            allowed_hosts: Vec::new(),
        }
    }
}

impl RestConfig {
    /// The host names requests may address (`None`: any).
    pub fn host_names(&self) -> Option<Vec<String>> {
        if !self.allowed_hosts.is_empty() {
            return Some(
                self.allowed_hosts
                    .iter()
                    .map(|h| host_without_port(h).to_ascii_lowercase())
                    .collect(),
            );
        }
        match self.listen {
            Some(addr) if addr.ip().is_loopback() => Some(
                ["localhost", "127.0.0.1", "::1"]
                    .iter()
                    .map(|h| h.to_string())
                    .collect(),
            ),
            _ => None,
        }
    }
}

/// The host part of a `Host` header value: without the port, IPv6 without brackets.
pub fn host_without_port(host: &str) -> &str {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        // One colon: a name or IPv4 with a port. More: a bare IPv6 address.
        Some((name, port)) if !name.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// The settings [`NodeConfig::validate`] derives, in the types the node uses.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The membership contract.
    pub contract: Address,
    /// The application's RLN identifier.
    pub rln_identifier: RlnIdentifier,
    /// The slash receiver, when one is set.
    pub slash_receiver: Option<Address>,
    /// Validation worker threads (the core count when the setting is 0).
    pub workers: usize,
    /// The archive's retention.
    pub retention: Retention,
}

fn invalid(key: &'static str, problem: impl Into<String>) -> NodeError {
    NodeError::Config {
        key,
        problem: problem.into(),
    }
}

impl NodeConfig {
    /// The epoch length.
    pub fn epoch(&self) -> Duration {
        Duration::from_secs(self.rln.epoch_secs)
    }

    /// `rln.chain_lag_secs`, or its default: the clock gap, plus the chain lag of a node
    /// configured like this one (confirmations at 12 s per block and one poll interval).
    pub fn chain_lag(&self) -> Duration {
        match self.rln.chain_lag_secs {
            Some(secs) => Duration::from_secs(secs),
            None => {
                Duration::from_secs(self.rln.max_clock_gap_secs)
                    + Duration::from_secs(12 * self.chain.confirmations)
                    + Duration::from_millis(self.chain.poll_interval_ms)
            }
        }
    }

    /// Checks every setting the node cannot run with, and derives the typed values.
    pub fn validate(&self) -> Result<Checked, NodeError> {
        let contract = Address::from_str(self.chain.contract.trim()).map_err(|_| {
            invalid(
                "chain.contract",
                if self.chain.contract.trim().is_empty() {
                    "is not set: the node needs the membership contract's address".to_string()
                } else {
                    format!(
                        "`{}` is not a 0x-prefixed 20-byte hex address",
                        self.chain.contract
                    )
                },
            )
        })?;
        if self.chain.rpc.is_empty() {
            return Err(invalid("chain.rpc", "lists no endpoint"));
        }
        if let Some(bad) = self
            .chain
            .rpc
            .iter()
            .find(|u| !(u.starts_with("http://") || u.starts_with("https://")))
        {
            return Err(invalid(
                "chain.rpc",
                format!(
                    "{} is not an http:// or https:// URL",
                    rln_chain::redact_url(bad)
                ),
            ));
        }
        if let Some(path) = &self.chain.ca_file {
            if !path.is_file() {
                return Err(invalid(
                    "chain.ca_file",
                    format!("{} is not a readable file", path.display()),
                ));
            }
        }
        if self.chain.max_block_range == 0 {
            return Err(invalid("chain.max_block_range", "must be at least 1"));
        }
        if self.chain.poll_interval_ms < MIN_INTERVAL_MS {
            return Err(invalid(
                "chain.poll_interval_ms",
                format!("must be at least {MIN_INTERVAL_MS} ms"),
            ));
        }
        parse_addrs(&self.network.listen, "listen address")
            .map_err(|e| invalid("network.listen", e.to_string()))?;
        parse_addrs(&self.network.static_peers, "static peer")
            .map_err(|e| invalid("network.static_peers", e.to_string()))?;
        parse_addrs(&self.network.bootstrap, "bootstrap peer")
            .map_err(|e| invalid("network.bootstrap", e.to_string()))?;
        if self.network.pubsub_topics.is_empty() {
            return Err(invalid("network.pubsub_topics", "lists no topic"));
        }
        rln_relay::protocols::metadata::shards_of(
            self.network.cluster_id,
            &self.network.pubsub_topics,
        )
        .map_err(|e| invalid("network.pubsub_topics", e))?;
        let retention =
            parse_retention(&self.store.retention).map_err(|e| invalid("store.retention", e))?;
        if self.store.queue == 0 || self.store.prune_interval_secs == 0 {
            return Err(invalid(
                "store",
                "queue and prune_interval_secs must be at least 1",
            ));
        }
        if let Some(peer) = &self.store.resume_peer {
            parse_addrs(std::slice::from_ref(peer), "store resume peer")
                .map_err(|e| invalid("store.resume_peer", e.to_string()))?;
        }
        if let Some(url) = &self.store.db_url {
            rln_db::postgres::check_url(url).map_err(|e| invalid("store.db_url", e))?;
        }
        if self.store.resume && !self.store.enabled {
            return Err(invalid("store.resume", "needs the store enabled"));
        }
        if self.store.resume
            && self.store.resume_peer.is_none()
            && self.network.static_peers.is_empty()
        {
            return Err(invalid(
                "store.resume",
                "needs a peer to resume from: set store.resume_peer or a static peer",
            ));
        }
        if self.filter.push_queue == 0 || self.filter.subscription_ttl_secs == 0 {
            return Err(invalid(
                "filter",
                "push_queue and subscription_ttl_secs must be at least 1",
            ));
        }
        if self
            .rest
            .token
            .as_deref()
            .is_some_and(|t| t.trim().len() < 16)
        {
            return Err(invalid(
                "rest.token",
                "must be at least 16 characters (anyone who can guess it controls the API)",
            ));
        }
        if self.network.max_message_bytes < 1_024 {
            return Err(invalid(
                "network.max_message_bytes",
                "must be at least 1024",
            ));
        }
        if self.network.seen_ttl_secs == 0 {
            return Err(invalid("network.seen_ttl_secs", "must be at least 1 s"));
        }
        if self.network.heartbeat_ms < MIN_INTERVAL_MS {
            return Err(invalid(
                "network.heartbeat_ms",
                format!("must be at least {MIN_INTERVAL_MS} ms"),
            ));
        }
        if !(1..=rln_relay::network::MAX_MESH_DEGREE).contains(&self.network.mesh_degree) {
            return Err(invalid(
                "network.mesh_degree",
                format!(
                    "must be between 1 and {}",
                    rln_relay::network::MAX_MESH_DEGREE
                ),
            ));
        }
        if !self.network.invalid_message_weight.is_finite() {
            return Err(invalid(
                "network.invalid_message_weight",
                "must be a number",
            ));
        }
        if self.rln.epoch_secs == 0 {
            return Err(invalid("rln.epoch_secs", "must be at least 1 s"));
        }
        if self.rln.root_window == 0 {
            return Err(invalid("rln.root_window", "must be at least 1"));
        }
        let rln_identifier = RlnIdentifier::from_tag(self.rln.rln_identifier.as_bytes())
            .ok_or_else(|| invalid("rln.rln_identifier", "must be at most 31 bytes"))?;
        if self.validation.queue == 0 {
            return Err(invalid("validation.queue", "must be at least 1"));
        }
        if self.validation.max_batch == 0 {
            return Err(invalid("validation.max_batch", "must be at least 1"));
        }
        let slash_receiver = match self.slash.as_ref().and_then(|s| s.receiver.as_ref()) {
            Some(r) => Some(
                Address::from_str(r.trim())
                    .map_err(|_| invalid("slash.receiver", format!("`{r}` is not an address")))?,
            ),
            None => None,
        };
        if self
            .slash
            .as_ref()
            .is_some_and(|s| s.private_key.is_empty())
        {
            return Err(invalid("slash.private_key", "is empty"));
        }
        let workers = match self.validation.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        Ok(Checked {
            contract,
            rln_identifier,
            slash_receiver,
            workers,
            retention,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> NodeConfig {
        let mut c = NodeConfig::default();
        c.chain.contract = "0x5FbDB2315678afecb367f032d93F642f64180aa3".into();
        c
    }

    #[test]
    fn the_chain_lag_covers_this_nodes_own_lag_unless_set() {
        let mut c = NodeConfig::default();
        c.rln.max_clock_gap_secs = 20;
        c.chain.confirmations = 3;
        c.chain.poll_interval_ms = 2_000;
        assert_eq!(c.chain_lag(), Duration::from_secs(20 + 36 + 2));
        c.rln.chain_lag_secs = Some(300);
        assert_eq!(c.chain_lag(), Duration::from_secs(300));
    }

    #[test]
    fn defaults_are_waku_like() {
        let c = NodeConfig::default();
        assert_eq!(c.rln.epoch_secs, 600);
        assert_eq!(c.rln.root_window, 50);
        assert_eq!(c.rln.max_clock_gap_secs, 20);
        assert_eq!(c.chain.poll_interval_ms, 1_000);
        assert_eq!(c.network.max_message_bytes, 150 * 1024);
        assert_eq!(c.network.pubsub_topics, vec!["/waku/2/rs/1/0".to_string()]);
    }

    #[test]
    fn rest_host_names_default_to_loopback_only_on_loopback() {
        let mut rest = RestConfig::default();
        let names = rest.host_names().unwrap();
        assert!(names.contains(&"localhost".to_string()) && names.contains(&"::1".to_string()));
        rest.listen = Some("0.0.0.0:8645".parse().unwrap());
        assert_eq!(rest.host_names(), None);
        rest.allowed_hosts = vec!["Node.Example.org:443".into()];
        assert_eq!(
            rest.host_names(),
            Some(vec!["node.example.org".to_string()])
        );
        for (header, host) in [
            ("127.0.0.1:8645", "127.0.0.1"),
            ("[::1]:8645", "::1"),
            ("::1", "::1"),
            ("localhost", "localhost"),
            ("evil.example:80", "evil.example"),
        ] {
            assert_eq!(host_without_port(header), host);
        }
    }

    #[test]
    fn retention_policies_parse_as_nwaku_writes_them() {
        let two_days = parse_retention(defaults::STORE_RETENTION).unwrap();
        assert_eq!(two_days.max_age_ns, Some(172_800 * 1_000_000_000));
        let all = parse_retention("time:60|capacity:1000| size:2GB").unwrap();
        assert_eq!(
            all,
            Retention {
                max_age_ns: Some(60_000_000_000),
                max_count: Some(1_000),
                max_bytes: Some(2 << 30),
            }
        );
        assert_eq!(
            parse_retention("size:500mb").unwrap().max_bytes,
            Some(500 << 20)
        );
        for bad in [
            "",
            "time",
            "time:x",
            "size:5",
            "size:5TB",
            "age:5",
            "capacity:-1",
        ] {
            assert!(parse_retention(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn serde_round_trip_and_unknown_fields() {
        let c = NodeConfig::default();
        let json = serde_json::to_string(&c).unwrap();
        let back: NodeConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back.rln.epoch_secs, c.rln.epoch_secs);
        assert!(serde_json::from_str::<NodeConfig>(r#"{"rln": {"epoch": 5}}"#).is_err());
    }

    #[test]
    fn validate_names_the_setting_at_fault() {
        assert!(valid().validate().is_ok());
        let key = |f: &dyn Fn(&mut NodeConfig)| {
            let mut c = valid();
            f(&mut c);
            match c.validate() {
                Err(NodeError::Config { key, .. }) => key,
                other => panic!("expected a configuration error, got {other:?}"),
            }
        };
        assert_eq!(key(&|c| c.chain.contract.clear()), "chain.contract");
        assert_eq!(key(&|c| c.chain.contract = "0x12".into()), "chain.contract");
        assert_eq!(key(&|c| c.chain.rpc.clear()), "chain.rpc");
        assert_eq!(
            key(&|c| c.chain.poll_interval_ms = 1),
            "chain.poll_interval_ms"
        );
        assert_eq!(key(&|c| c.rln.epoch_secs = 0), "rln.epoch_secs");
        assert_eq!(
            key(&|c| c.rln.rln_identifier = "x".repeat(32)),
            "rln.rln_identifier"
        );
        assert_eq!(
            key(&|c| c.network.listen = vec!["nonsense".into()]),
            "network.listen"
        );
        assert_eq!(key(&|c| c.network.heartbeat_ms = 0), "network.heartbeat_ms");
        assert_eq!(key(&|c| c.validation.queue = 0), "validation.queue");
        assert_eq!(
            key(&|c| c.store.retention = "forever".into()),
            "store.retention"
        );
        assert_eq!(
            key(&|c| c.store.resume_peer = Some("nowhere".into())),
            "store.resume_peer"
        );
        assert_eq!(key(&|c| c.store.resume = true), "store.resume");
        assert_eq!(
            key(&|c| c.store.db_url = Some("mysql://u@h/db".into())),
            "store.db_url"
        );
        assert_eq!(
            key(&|c| c.store.db_url = Some("postgres://u:secret@h".into())),
            "store.db_url"
        );
        for url in ["postgres://u:secret@h", "postgres://u:secret@h:port/db"] {
            let mut c = valid();
            c.store.db_url = Some(url.into());
            let shown = c.validate().unwrap_err().to_string();
            assert!(
                !shown.contains("secret"),
                "the password is never shown: {shown}"
            );
        }
        assert_eq!(key(&|c| c.rest.token = Some("short".into())), "rest.token");
        assert_eq!(
            key(&|c| c.slash = Some(SlashConfig {
                receiver: Some("me".into()),
                ..SlashConfig::new("0x01")
            })),
            "slash.receiver"
        );
    }
}
