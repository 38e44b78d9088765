//! A running node: the state, chain sync, the network and the relay protocol, the publisher,
//! and the REST API, started in named steps and supervised.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::registry::Registry;
use rln_chain::{Address, MembershipSync, RetryPolicy, RpcPool, Slasher, SyncConfig, SyncStatus};
use rln_core::{epoch_at, fr_to_hex, TREE_DEPTH};
use rln_db::{Adoption, DbConfig, MessageArchive, MessageIdLedger, PgArchive, RlnDb, SpamEvidence};
use rln_relay::archive::{self, ArchiveSettings};
use rln_relay::hub::{Delivered, Hub};
use rln_relay::metrics::{Metrics, ResultLabel};
use rln_relay::network::{self, NetworkParts, NetworkSettings, SwarmSettings};
use rln_relay::protocols::filter::{Filter, FilterSettings};
use rln_relay::protocols::lightpush::{LightPush, LightPushSettings};
use rln_relay::protocols::metadata;
use rln_relay::protocols::relay::pipeline::{Pipeline, Sinks, Validated};
use rln_relay::protocols::resume::{self, ResumeSettings};
use rln_relay::protocols::store::{Store, StoreSettings};
use rln_relay::wire::metadata::Metadata;
use rln_relay::{
    Member, MessageIdChoice, Multiaddr, NetworkHandle, PeerId, PeerSummary, Publisher, Reason,
    RelayError, Rules, SyncView, Validator, WakuMessage,
};
use rln_zk::{Prover, Verifier};
use tokio::sync::{broadcast, mpsc, watch};

use crate::config::{Checked, NodeConfig};
use crate::error::NodeError;
use crate::keys::{check_dev_keys, load_keys, load_member};
use crate::supervisor::Supervisor;

/// What the node reports about itself (`/health`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Health {
    /// Caught up with the chain.
    pub synced: bool,
    /// Last block applied.
    pub block: Option<u64>,
    /// Chain head at the last poll.
    pub head: Option<u64>,
    /// Current root, in the one text form of field elements (`0x…`, big-endian).
    pub root: String,
    /// Leaves in the tree.
    pub members: u64,
    /// Connected peers.
    pub peers: usize,
    /// The last sync error while it persists.
    pub last_error: Option<String>,
}

/// The parts of a running node that the REST API, the binary and tests use. Cheap to clone.
#[derive(Clone)]
pub struct NodeHandle {
    shared: Arc<Shared>,
}

struct Shared {
    config: NodeConfig,
    db: Arc<RlnDb>,
    archive: Arc<dyn MessageArchive>,
    hub: Arc<Hub>,
    publisher: Option<Arc<Publisher>>,
    metrics: Metrics,
    registry: Mutex<Registry>,
    net: NetworkHandle,
    sync_status: watch::Receiver<SyncStatus>,
    keys: KeysInfo,
    store: Option<Arc<Store>>,
}

/// Which keys the node proves and verifies with (`/debug/v1/info`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeysInfo {
    /// The key set's name or the key files.
    pub source: String,
    /// The verifying key is the INSECURE development key's.
    pub insecure: bool,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle")
            .field("peer_id", &self.shared.net.peer_id())
            .finish_non_exhaustive()
    }
}

impl NodeHandle {
    /// The settings the node runs with.
    pub fn config(&self) -> &NodeConfig {
        &self.shared.config
    }

    /// The keys the node proves and verifies with.
    pub fn keys(&self) -> &KeysInfo {
        &self.shared.keys
    }

    /// The node's state.
    pub fn db(&self) -> &Arc<RlnDb> {
        &self.shared.db
    }

    /// The message archive behind the store (the node's RocksDB, or the PostgreSQL server
    /// of `store.db_url`).
    pub fn archive(&self) -> &Arc<dyn MessageArchive> {
        &self.shared.archive
    }

    /// Local delivery of valid messages.
    pub fn hub(&self) -> &Hub {
        &self.shared.hub
    }

    /// The publisher (none without a membership).
    pub fn publisher(&self) -> Option<&Arc<Publisher>> {
        self.shared.publisher.as_ref()
    }

    /// The store service, when the node archives messages.
    pub fn store(&self) -> Option<&Arc<Store>> {
        self.shared.store.as_ref()
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Every metric (the node's and libp2p's) in the OpenMetrics text format.
    pub fn encode_metrics(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        let registry = self
            .shared
            .registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        prometheus_client::encoding::text::encode(&mut text, &registry)?;
        Ok(text)
    }

    /// The network.
    pub fn network(&self) -> &NetworkHandle {
        &self.shared.net
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.shared.net.peer_id()
    }

    /// Full addresses (`…/p2p/<peer id>`) the node listens on.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.shared.net.listen_addrs()
    }

    /// The connected peers and their scores.
    pub async fn peers(&self) -> Vec<PeerSummary> {
        self.shared.net.peers().await
    }

    /// Connects to a peer.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NodeError> {
        Ok(self.shared.net.dial(addr).await?)
    }

    /// The health report.
    pub fn health(&self) -> Health {
        let status = self.shared.sync_status.borrow().clone();
        Health {
            synced: status.synced,
            block: status.block,
            head: status.head,
            root: self.db().root().map(|r| fr_to_hex(&r)).unwrap_or_default(),
            members: status.members,
            peers: self.shared.net.connected_peers(),
            last_error: status.last_error,
        }
    }

    /// Waits until the sync is caught up (or `timeout` passes); returns whether it is.
    pub async fn wait_synced(&self, timeout: Duration) -> bool {
        let mut status = self.shared.sync_status.clone();
        tokio::time::timeout(timeout, status.wait_for(|s| s.synced))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Proves and publishes `message` on `topic`; returns the message as sent and its hash.
    pub async fn publish(
        &self,
        topic: &str,
        message: WakuMessage,
    ) -> Result<(WakuMessage, [u8; 32]), RelayError> {
        self.publish_with(topic, message, MessageIdChoice::Next)
            .await
    }

    /// [`Self::publish`] with an explicit message-id choice (see [`MessageIdChoice`]).
    pub async fn publish_with(
        &self,
        topic: &str,
        message: WakuMessage,
        choice: MessageIdChoice,
    ) -> Result<(WakuMessage, [u8; 32]), RelayError> {
        let publisher = self.publisher().ok_or(RelayError::NoMembership)?;
        let (sent, hash) = publisher
            .publish(&self.shared.net, topic, message, choice)
            .await?;
        self.shared.hub.published(topic, &sent, hash);
        Ok((sent, hash))
    }

    /// Publishes bytes as they are, without proof or checks (for tests of bad input).
    pub async fn send_raw(&self, topic: &str, data: Vec<u8>) -> Result<(), RelayError> {
        self.shared.net.publish_bytes(topic, data).await.map(|_| ())
    }

    /// Joins a pubsub topic and caches its messages for polling.
    pub async fn subscribe_topic(&self, topic: &str) -> Result<(), RelayError> {
        self.hub().cache_topic(topic);
        self.shared.net.subscribe(topic).await
    }

    /// Stops caching a topic (the node keeps relaying its configured topics).
    pub async fn unsubscribe_topic(&self, topic: &str) -> Result<(), RelayError> {
        self.hub().uncache_topic(topic);
        if !self
            .config()
            .network
            .pubsub_topics
            .iter()
            .any(|t| t == topic)
        {
            self.shared.net.unsubscribe(topic).await?;
        }
        Ok(())
    }

    /// Every valid message delivered from now on.
    pub fn messages(&self) -> broadcast::Receiver<Delivered> {
        self.hub().subscribe()
    }

    /// Stored spam evidence.
    pub fn spam_evidence(&self) -> Result<Vec<SpamEvidence>, NodeError> {
        Ok(self.db().spam_evidence()?)
    }
}

/// A running node. Stop it with [`Node::shutdown`], which also reports a background task
/// that failed.
#[derive(Debug)]
pub struct Node {
    handle: NodeHandle,
    supervisor: Supervisor,
    rest_addr: Option<SocketAddr>,
}

/// What the chain step finds.
struct Chain {
    rpc: RpcPool,
    contract: Address,
    chain_id: u64,
}

/// What the validation step starts.
struct Validation {
    pipeline: Pipeline,
    verdicts: mpsc::Receiver<Validated>,
    hub: Arc<Hub>,
    /// The validator and sinks again, for the light push service.
    validator: Arc<Validator>,
    sinks: Sinks,
}

impl Node {
    /// Starts a node: checks the settings, opens the state, starts chain sync, validation,
    /// the network, the publisher and (if configured) the REST API.
    pub async fn start(config: NodeConfig) -> Result<Self, NodeError> {
        let checked = config.validate()?;
        let chain = connect_chain(&config, &checked).await?;
        let db = open_state(&config, &chain)?;
        let archive = open_archive(&config, &db).await?;
        let (mut registry, metrics) = new_metrics();
        let member = config.membership.as_ref().map(load_member).transpose()?;
        let ledger = match (&config.membership, &member) {
            (Some(c), Some(m)) => Some(open_ledger(&c.keystore, m, &db, config.rln.epoch_secs)?),
            _ => None,
        };
        let keys = load_keys(&config.rln, member.is_some()).await?;
        check_dev_keys(&keys, chain.chain_id, config.rln.insecure_dev_keys)?;
        tracing::info!("keys: {}", keys.source);
        let keys_info = KeysInfo {
            source: keys.source,
            insecure: keys.insecure,
        };
        let (prover, verifier) = (keys.prover.map(Arc::new), keys.verifier);

        let mut supervisor = Supervisor::new();
        let (sync_status, synced) = start_sync(&mut supervisor, &config, chain, &db, &metrics);
        let validation = start_validation(
            &mut supervisor,
            &config,
            &checked,
            (&db, &archive),
            verifier,
            synced,
            &metrics,
        )?;
        let hub = validation.hub.clone();
        start_archive(&mut supervisor, &config, &checked, &archive, &hub, &metrics)?;
        let (validator, sinks) = (validation.validator.clone(), validation.sinks.clone());
        let net = start_network(
            &mut supervisor,
            &config,
            validation,
            &metrics,
            &mut registry,
        )
        .await?;
        let publisher = start_publisher(
            &mut supervisor,
            &config,
            &checked,
            member
                .zip(prover)
                .zip(ledger)
                .map(|((member, prover), ledger)| Signer {
                    member,
                    prover,
                    ledger,
                }),
            &db,
            &metrics,
            &sync_status,
        );
        let store = start_light_services(
            &mut supervisor,
            &config,
            &checked,
            &net,
            validator,
            publisher.clone(),
            sinks,
        )?;
        supervisor.spawn(
            "nullifier pruning",
            prune_nullifiers(
                db.clone(),
                config.rln.epoch_secs,
                config.rln.max_clock_gap_secs,
                supervisor.signal(),
            ),
        );
        let rest = config.rest.listen;
        let handle = NodeHandle {
            shared: Arc::new(Shared {
                config,
                db,
                archive,
                hub,
                publisher,
                metrics,
                registry: Mutex::new(registry),
                net,
                sync_status,
                keys: keys_info,
                store,
            }),
        };
        let rest_addr = match rest {
            Some(addr) => {
                let (bound, serve) =
                    crate::rest::serve(handle.clone(), addr, supervisor.signal()).await?;
                supervisor.spawn("REST API", serve);
                Some(bound)
            }
            None => None,
        };
        tracing::info!(
            peer_id = %handle.peer_id(),
            publishing = handle.publisher().is_some(),
            backend = %rln_bn254::backend_report(),
            "node started"
        );
        Ok(Self {
            handle,
            supervisor,
            rest_addr,
        })
    }

    /// The parts the REST API, the binary and tests use.
    pub fn handle(&self) -> &NodeHandle {
        &self.handle
    }

    /// Where the REST API listens.
    pub fn rest_addr(&self) -> Option<SocketAddr> {
        self.rest_addr
    }

    /// Resolves when the node stops by itself, because a background task failed.
    pub fn stopping(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.supervisor.stopping()
    }

    /// Stops every task and worker, flushes the state, and reports a task that failed.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        let tasks = self.supervisor.shutdown().await;
        if let Err(e) = self.handle.db().flush() {
            tracing::error!("flushing the state failed: {e}");
        }
        tasks
    }
}

/// Step 1: the RPC endpoints and the chain id. With the chain id set, a node may start while
/// the RPC is down (sync retries in the background); otherwise the endpoint must answer.
async fn connect_chain(config: &NodeConfig, checked: &Checked) -> Result<Chain, NodeError> {
    let rpc = RpcPool::with_ca(
        &config.chain.rpc,
        RetryPolicy::default(),
        config.chain.ca_file.as_deref(),
    )?;
    let chain_id = match config.chain.chain_id {
        Some(expected) => match rpc.chain_id().await {
            Ok(actual) if actual != expected => {
                return Err(rln_chain::ChainError::WrongChain { expected, actual }.into())
            }
            _ => expected,
        },
        None => rpc.chain_id().await.map_err(|e| NodeError::Config {
            key: "chain.chain_id",
            problem: format!("is not set and the RPC cannot tell it ({e}); set it to start while the RPC is down"),
        })?,
    };
    let chain = Chain {
        rpc,
        contract: checked.contract,
        chain_id,
    };
    check_withdrawal_delay(config, &chain).await;
    Ok(chain)
}

/// Time a slash may take beyond the epoch and the chain lag: commit, a block, reveal, and the
/// slasher's retries through a short RPC outage.
const SLASH_ALLOWANCE: Duration = Duration::from_secs(3600);

/// Warns when the contract lets a spammer withdraw its deposit before a slash can land (a
/// withdrawal delay shorter than an epoch + the chain lag + [`SLASH_ALLOWANCE`], or none).
/// Advisory: the node runs either way, and an RPC that does not answer quickly is skipped.
async fn check_withdrawal_delay(config: &NodeConfig, chain: &Chain) {
    let needed = config.epoch() + config.chain_lag() + SLASH_ALLOWANCE;
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        chain.rpc.withdrawal_delay(chain.contract),
    )
    .await;
    match read {
        Ok(Ok(secs)) if Duration::from_secs(secs) < needed => tracing::warn!(
            withdrawal_delay_secs = secs,
            needed_secs = needed.as_secs(),
            "the contract's withdrawal delay is shorter than an epoch + the chain lag + an hour \
             for the slash: a spammer can erase and withdraw its deposit before it is slashed"
        ),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(
            "cannot read the contract's withdrawal delay ({e}); a contract without one lets a \
             spammer withdraw its deposit before it is slashed"
        ),
        Err(_) => {}
    }
}

/// Step 2: the state, bound to this chain, contract and tree depth.
fn open_state(config: &NodeConfig, chain: &Chain) -> Result<Arc<RlnDb>, NodeError> {
    Ok(Arc::new(RlnDb::open(
        config.data_dir.join("db"),
        DbConfig {
            depth: TREE_DEPTH,
            chain_id: chain.chain_id,
            contract: chain.contract.into_array(),
            root_window: config.rln.root_window,
            ..DbConfig::default()
        },
    )?))
}

/// Step 3: one registry for the node's metrics and libp2p's, every counter created at zero.
fn new_metrics() -> (Registry, Metrics) {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    Reason::register_all(&metrics);
    for result in SLASH_RESULTS {
        metrics
            .slashes
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .get();
    }
    (registry, metrics)
}

const SLASH_RESULTS: [&str; 4] = ["slashed", "gone", "failed", "undone"];

/// Step 4: membership sync, and the view of it validation reads to tell an unknown root from
/// one not synced yet.
fn start_sync(
    supervisor: &mut Supervisor,
    config: &NodeConfig,
    chain: Chain,
    db: &Arc<RlnDb>,
    metrics: &Metrics,
) -> (watch::Receiver<SyncStatus>, Arc<SyncView>) {
    let sync = Arc::new(MembershipSync::new(
        chain.rpc,
        db.clone(),
        SyncConfig {
            max_block_range: config.chain.max_block_range,
            confirmations: config.chain.confirmations,
            poll_interval: Duration::from_millis(config.chain.poll_interval_ms),
            ..SyncConfig::new(chain.contract, chain.chain_id)
        },
    ));
    let status = sync.status();
    let signal = supervisor.signal();
    supervisor.spawn("membership sync", async move { sync.run(signal).await });
    let synced = Arc::new(SyncView::default());
    supervisor.spawn(
        "sync status",
        watch_sync(
            status.clone(),
            synced.clone(),
            metrics.clone(),
            supervisor.signal(),
        ),
    );
    (status, synced)
}

/// Step 5: the validator, the worker threads and (when configured) the slasher.
fn start_validation(
    supervisor: &mut Supervisor,
    config: &NodeConfig,
    checked: &Checked,
    (db, archive): (&Arc<RlnDb>, &Arc<dyn MessageArchive>),
    verifier: Verifier,
    synced: Arc<SyncView>,
    metrics: &Metrics,
) -> Result<Validation, NodeError> {
    let rules = Rules {
        epoch_secs: config.rln.epoch_secs,
        max_clock_gap: Duration::from_secs(config.rln.max_clock_gap_secs),
        chain_lag: config.chain_lag(),
        rln_identifier: checked.rln_identifier,
        signal: config.rln.signal,
    };
    let validator = Arc::new(
        Validator::new(db.clone(), verifier, rules, synced, metrics.clone())
            .grouping_by_standing(config.validation.group_by_standing),
    );
    let hub = Arc::new(Hub::new(config.rest.cache_per_topic));
    for topic in &config.network.pubsub_topics {
        hub.cache_topic(topic);
    }
    // Room for every queued message and a few batches in flight, so workers rarely wait on
    // the swarm task.
    let (verdict_tx, verdicts) =
        mpsc::channel(config.validation.queue + config.validation.max_batch * 16);
    let spam = match &config.slash {
        Some(slash) => {
            // One slasher per configured endpoint: attempts rotate through them.
            let slashers = config
                .chain
                .rpc
                .iter()
                .map(|url| {
                    Slasher::new(
                        url,
                        &slash.private_key,
                        checked.contract,
                        checked.slash_receiver,
                        config.chain.ca_file.as_deref(),
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            let wake = Arc::new(tokio::sync::Notify::new());
            supervisor.spawn(
                "slasher",
                run_slasher(
                    slashers,
                    SlashPolicy {
                        confirmations: slash.confirmations,
                        recheck: Duration::from_millis(config.chain.poll_interval_ms.max(100)),
                    },
                    wake.clone(),
                    db.clone(),
                    metrics.clone(),
                    supervisor.signal(),
                ),
            );
            Some(wake)
        }
        None => None,
    };
    let sinks = Sinks {
        verdicts: verdict_tx,
        hub: hub.clone(),
        spam,
        db: db.clone(),
        archive: archive.clone(),
        metrics: metrics.clone(),
    };
    let (pipeline, workers) = Pipeline::start(
        validator.clone(),
        checked.workers,
        config.validation.queue,
        config.validation.max_batch,
        sinks.clone(),
    )
    .map_err(|source| NodeError::Io {
        what: "starting validation workers".into(),
        source,
    })?;
    for worker in workers {
        supervisor.watch_thread("validation worker", worker);
    }
    Ok(Validation {
        pipeline,
        verdicts,
        hub,
        validator,
        sinks,
    })
}

/// Longest wait for one slash (commit and reveal mined) before it counts as failed.
const SLASH_TIMEOUT: Duration = Duration::from_secs(120);
/// First wait before retrying failed slashes; it doubles up to [`SLASH_RETRY_MAX`].
const SLASH_RETRY_MIN: Duration = Duration::from_secs(2);
/// Longest wait between retries.
const SLASH_RETRY_MAX: Duration = Duration::from_secs(300);
/// Pending evidence taken per pass.
const SLASH_BATCH: usize = 64;
/// Spam evidence is kept this long for audits, then pruned.
const EVIDENCE_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Step 6: the swarm, listening, with the relay protocol's queue behind it.
async fn start_network(
    supervisor: &mut Supervisor,
    config: &NodeConfig,
    validation: Validation,
    metrics: &Metrics,
    registry: &mut Registry,
) -> Result<NetworkHandle, NodeError> {
    let key_path = config
        .network
        .node_key
        .clone()
        .unwrap_or_else(|| config.data_dir.join("node_key"));
    let settings = NetworkSettings {
        swarm: SwarmSettings {
            topics: config.network.pubsub_topics.clone(),
            max_message_bytes: config.network.max_message_bytes,
            seen_ttl: Duration::from_secs(config.network.seen_ttl_secs),
            heartbeat: Duration::from_millis(config.network.heartbeat_ms),
            invalid_message_weight: config.network.invalid_message_weight,
            discovery: config.network.discovery,
            mesh_degree: config.network.mesh_degree,
            metadata: Metadata {
                cluster_id: Some(config.network.cluster_id),
                shards: metadata::shards_of(
                    config.network.cluster_id,
                    &config.network.pubsub_topics,
                )
                .map_err(|problem| NodeError::Config {
                    key: "network.pubsub_topics",
                    problem,
                })?,
            },
        },
        listen: config.network.listen.clone(),
        static_peers: config.network.static_peers.clone(),
        bootstrap: config.network.bootstrap.clone(),
    };
    let parts = NetworkParts {
        key: network::load_or_create_key(&key_path)?,
        pipeline: validation.pipeline,
        verdicts: validation.verdicts,
        metrics: metrics.clone(),
        shutdown: supervisor.signal(),
    };
    let (net, swarm_task) = network::start(&settings, parts, registry).await?;
    supervisor.spawn("swarm", swarm_task);
    // A started node listens: its caller prints or hands out the addresses next, and an
    // address missing from that list would leave peers nothing to dial.
    net.wait_listening(LISTEN_TIMEOUT)
        .await
        .map_err(|e| rln_relay::RelayError::Network(format!("not listening: {e}")))?;
    Ok(net)
}

/// How long the listeners may take to report their addresses (the swarm task polls them
/// first; a loaded machine can delay it by seconds).
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Step 2b: the message archive: the node's own RocksDB, or the PostgreSQL server of
/// `store.db_url` (connected, and its tables created, off the async runtime).
async fn open_archive(
    config: &NodeConfig,
    db: &Arc<RlnDb>,
) -> Result<Arc<dyn MessageArchive>, NodeError> {
    let Some(url) = config.store.db_url.clone().filter(|_| config.store.enabled) else {
        let embedded: Arc<dyn MessageArchive> = db.clone();
        return Ok(embedded);
    };
    let shown = rln_db::postgres::describe_url(&url);
    let archive = tokio::task::spawn_blocking(move || PgArchive::connect(&url))
        .await
        .map_err(|_| NodeError::Config {
            key: "store.db_url",
            problem: "connecting to the server stopped unexpectedly".into(),
        })??;
    tracing::info!("message archive: PostgreSQL at {shown}");
    Ok(Arc::new(archive))
}

/// Step 5b: the message archive's writer, fed by the hub with every valid message (before
/// the network starts, so none goes unarchived).
fn start_archive(
    supervisor: &mut Supervisor,
    config: &NodeConfig,
    checked: &Checked,
    archive: &Arc<dyn MessageArchive>,
    hub: &Hub,
    metrics: &Metrics,
) -> Result<(), NodeError> {
    if !config.store.enabled {
        return Ok(());
    }
    let settings = ArchiveSettings {
        queue: config.store.queue,
        max_batch: ARCHIVE_BATCH,
        max_clock_gap: Duration::from_secs(config.rln.max_clock_gap_secs),
        retention: checked.retention,
        keep_proofs: config.store.keep_proofs,
        prune_interval: Duration::from_secs(config.store.prune_interval_secs),
    };
    let (sender, writer) = archive::start_writer(
        archive.clone(),
        &settings,
        metrics.clone(),
        supervisor.signal(),
    )
    .map_err(|source| NodeError::Io {
        what: "starting the archive writer".into(),
        source,
    })?;
    hub.attach_archive(sender);
    supervisor.watch_thread("archive writer", writer);
    supervisor.spawn(
        "archive pruning",
        archive::prune(
            archive.clone(),
            settings.retention,
            settings.prune_interval,
            metrics.clone(),
            supervisor.signal(),
        ),
    );
    Ok(())
}

/// Messages per archive write batch.
const ARCHIVE_BATCH: usize = 1_024;

/// How far back a resume with an empty archive and no age bound goes.
const DEFAULT_LOOKBACK: Duration = Duration::from_secs(86_400);

/// Step 8: the services of light clients, light push, filter and store, each when enabled;
/// returns the store service (the REST API answers local queries with it).
fn start_light_services(
    supervisor: &mut Supervisor,
    config: &NodeConfig,
    checked: &Checked,
    net: &NetworkHandle,
    validator: Arc<Validator>,
    publisher: Option<Arc<Publisher>>,
    sinks: Sinks,
) -> Result<Option<Arc<Store>>, NodeError> {
    let topics = config.network.pubsub_topics.clone();
    if config.lightpush.enabled {
        let lightpush = Arc::new(LightPush::new(
            LightPushSettings {
                topics: topics.clone(),
                requests_per_minute: config.lightpush.requests_per_minute,
                rln_proofs: config.lightpush.rln_proofs,
                client_share: config.lightpush.client_share,
                epoch_secs: config.rln.epoch_secs,
                max_clock_gap: Duration::from_secs(config.rln.max_clock_gap_secs),
                max_message_bytes: config.network.max_message_bytes,
            },
            net.clone(),
            validator.clone(),
            publisher,
            sinks.clone(),
        ));
        supervisor.spawn("light push", lightpush.serve(supervisor.signal())?);
    }
    if config.filter.enabled {
        let f = &config.filter;
        let filter = Filter::new(
            FilterSettings {
                topics,
                max_content_topics_per_request: f.max_content_topics_per_request,
                max_criteria_per_peer: f.max_criteria_per_peer,
                max_peers: f.max_peers,
                subscription_ttl: Duration::from_secs(f.subscription_ttl_secs),
                requests_per_minute: f.requests_per_minute,
                push_queue: f.push_queue,
                push_timeout: Duration::from_secs(f.push_timeout_secs),
            },
            net.clone(),
            sinks.metrics.clone(),
        );
        supervisor.spawn("filter", filter.serve(&sinks.hub, supervisor.signal())?);
    }
    if !config.store.enabled {
        return Ok(None);
    }
    let store = Store::new(
        sinks.archive.clone(),
        StoreSettings {
            requests_per_minute: config.store.requests_per_minute,
        },
        sinks.metrics.clone(),
    );
    supervisor.spawn("store", store.serve(net, supervisor.signal())?);
    if config.store.resume {
        let peer = config
            .store
            .resume_peer
            .as_ref()
            .or(config.network.static_peers.first())
            .ok_or(NodeError::Config {
                key: "store.resume",
                problem: "needs a peer to resume from".into(),
            })?;
        let settings = ResumeSettings {
            peer: peer.parse().map_err(|_| NodeError::Config {
                key: "store.resume_peer",
                problem: format!("`{peer}` is not a multiaddress"),
            })?,
            topics: config.network.pubsub_topics.clone(),
            lookback: checked
                .retention
                .max_age_ns
                .map_or(DEFAULT_LOOKBACK, Duration::from_nanos),
            keep_proofs: config.store.keep_proofs,
        };
        let (net, mut stop) = (net.clone(), supervisor.signal());
        supervisor.spawn("store resume", async move {
            if let Err(e) = resume::resume(&net, validator, &sinks, &settings).await {
                tracing::warn!("store resume failed; the history keeps its gap: {e}");
            }
            // One pass; the task then waits for the node to stop, as every task does.
            let _ = stop.wait_for(|s| *s).await;
        });
    }
    Ok(Some(store))
}

/// What a publisher proves with.
struct Signer {
    member: Member,
    prover: Arc<Prover>,
    ledger: Arc<MessageIdLedger>,
}

/// The message-id ledger beside the keystore, with a record of `member` (taken over from the
/// database of an older version, or marked unrecorded for the current epoch).
fn open_ledger(
    keystore: &std::path::Path,
    member: &Member,
    db: &RlnDb,
    epoch_secs: u64,
) -> Result<Arc<MessageIdLedger>, NodeError> {
    let path = MessageIdLedger::path_for(keystore);
    let ledger = MessageIdLedger::open(&path)?;
    let commitment = member.identity.commitment();
    let epoch = rln_core::epoch_at(now_secs(), epoch_secs);
    match ledger.adopt(&commitment, epoch, db.legacy_message_ids(&commitment)?)? {
        Adoption::Known => {}
        Adoption::Migrated => tracing::info!(
            "message ids used so far moved from the database to {}",
            path.display()
        ),
        Adoption::Unrecorded { .. } => tracing::warn!(
            "{} has no record of membership {}: it may have published this epoch from \
             elsewhere, so this node publishes from the next epoch on (in {} s)",
            path.display(),
            member.index,
            epoch_secs - now_secs() % epoch_secs
        ),
    }
    Ok(Arc::new(ledger))
}

fn now_secs() -> u64 {
    rln_relay::clock::now_nanos().max(0) as u64 / 1_000_000_000
}

fn now_millis() -> u64 {
    rln_relay::clock::now_nanos().max(0) as u64 / 1_000_000
}

/// Step 7: the publisher, when the node has a membership, with its membership part of the
/// proofs kept ready after every sync.
fn start_publisher(
    supervisor: &mut Supervisor,
    config: &NodeConfig,
    checked: &Checked,
    signer: Option<Signer>,
    db: &Arc<RlnDb>,
    metrics: &Metrics,
    sync_status: &watch::Receiver<SyncStatus>,
) -> Option<Arc<Publisher>> {
    let Signer {
        member,
        prover,
        ledger,
    } = signer?;
    let publisher = Arc::new(Publisher::new(
        member,
        db.clone(),
        ledger,
        prover,
        config.rln.epoch_secs,
        checked.rln_identifier,
        config.rln.signal,
        metrics.clone(),
    ));
    // Sets the remaining-messages gauge; an error here shows again on the first publication.
    if let Err(e) = publisher.remaining() {
        tracing::warn!("cannot read the message ids used this epoch: {e}");
    }
    supervisor.spawn(
        "proof preparation",
        prepare_after_sync(publisher.clone(), sync_status.clone(), supervisor.signal()),
    );
    Some(publisher)
}

/// Waits for the next sync status; `false` once the node stops. A closed status channel
/// means the sync task is gone (the supervisor reports that one), so it waits for the stop.
async fn next_status(
    status: &mut watch::Receiver<SyncStatus>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let closed = tokio::select! {
        r = status.changed() => r.is_err(),
        _ = shutdown.wait_for(|s| *s) => return false,
    };
    if closed {
        let _ = shutdown.wait_for(|s| *s).await;
        return false;
    }
    true
}

/// Mirrors the sync status into the validator's flag and the metrics until shutdown.
async fn watch_sync(
    mut status: watch::Receiver<SyncStatus>,
    synced: Arc<SyncView>,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        {
            let s = status.borrow_and_update();
            synced.update(s.synced, now_millis());
            metrics.synced.set(i64::from(s.synced));
            metrics.synced_block.set(s.block.unwrap_or(0) as i64);
            metrics.registered_members.set(s.members as i64);
        }
        if !next_status(&mut status, &mut shutdown).await {
            return;
        }
    }
}

/// Keeps the publisher's membership part current: after each change of the synced tree,
/// prepares it in the background so that the next publication pays only for its message.
async fn prepare_after_sync(
    publisher: Arc<Publisher>,
    mut status: watch::Receiver<SyncStatus>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut prepared_for = None;
    loop {
        let state = {
            let s = status.borrow_and_update();
            (s.synced, s.block)
        };
        if state.0 && prepared_for != Some(state) {
            let p = publisher.clone();
            match tokio::task::spawn_blocking(move || p.prepared()).await {
                Ok(Ok(_)) => prepared_for = Some(state),
                Ok(Err(e)) => tracing::debug!("membership part not prepared: {e}"),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => return,
            }
        }
        if !next_status(&mut status, &mut shutdown).await {
            return;
        }
    }
}

/// Drops nullifiers of epochs no valid message can carry any more.
async fn prune_nullifiers(
    db: Arc<RlnDb>,
    epoch_secs: u64,
    gap_secs: u64,
    mut shutdown: watch::Receiver<bool>,
) {
    let period = Duration::from_secs((epoch_secs / 2).clamp(1, 60));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        // The oldest epoch a message within the clock gap can carry.
        let oldest = epoch_at(now.saturating_sub(gap_secs), epoch_secs);
        if let Err(e) = db.prune_nullifiers_before(oldest) {
            tracing::warn!("pruning the nullifier log failed: {e}");
        }
        let kept_from = epoch_at(now.saturating_sub(EVIDENCE_RETENTION.as_secs()), epoch_secs);
        match db.prune_evidence_before(kept_from) {
            Ok(0) => {}
            Ok(n) => tracing::info!("pruned {n} pieces of spam evidence older than 30 days"),
            Err(e) => tracing::warn!("pruning spam evidence failed: {e}"),
        }
    }
}

/// How the slasher settles a slash.
#[derive(Debug, Clone, Copy)]
struct SlashPolicy {
    /// Blocks a landed slash must be buried under before it is settled (`slash.confirmations`).
    confirmations: u64,
    /// How often landed slashes are checked while they wait (the chain poll interval).
    recheck: Duration,
}

/// Slashes every member whose stored evidence is not settled. The evidence in the database
/// is the queue: the slasher starts with what a previous run left, is woken for new evidence,
/// and retries failures (RPC down, a transaction not mined in time) with growing pauses,
/// rotating through the chain endpoints, until each is slashed or its member is gone. A slash
/// that landed stays pending until it is `confirmations` blocks deep: should a
/// reorganisation undo it (the member is slashable again), it is sent again.
async fn run_slasher(
    slashers: Vec<Slasher>,
    policy: SlashPolicy,
    wake: Arc<tokio::sync::Notify>,
    db: Arc<RlnDb>,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut attempts: std::collections::HashMap<[u8; 40], u32> = Default::default();
    let mut pause = SLASH_RETRY_MIN;
    let mut turn = 0usize;
    let count = |result: &str| {
        metrics
            .slashes
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc();
    };
    let record = |evidence: &SpamEvidence, status: &str| {
        if let Err(e) = db.set_slash_status(evidence.epoch, &evidence.nullifier, status) {
            tracing::error!("cannot record the slash status: {e}");
        }
    };
    loop {
        let pending = match db.pending_slashes(SLASH_BATCH) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("cannot read stored spam evidence: {e}");
                Vec::new()
            }
        };
        let mut failed = false;
        let mut waiting = false;
        for evidence in pending {
            if *shutdown.borrow() {
                return;
            }
            let Some(slasher) = slashers.get(turn % slashers.len().max(1)) else {
                return;
            };
            turn += 1;
            if let Some(block) = evidence.landed_block() {
                match confirm_slash(slasher, &evidence, block, policy.confirmations).await {
                    Confirmation::Buried(status) => {
                        record(&evidence, &status);
                        continue;
                    }
                    Confirmation::Waiting => {
                        waiting = true;
                        continue;
                    }
                    Confirmation::Undone => {
                        tracing::warn!(
                            member = %fr_to_hex(&evidence.id_commitment),
                            block,
                            "a reorganisation undid the slash; slashing again"
                        );
                        count("undone");
                    }
                }
            }
            let tries = attempts.entry(evidence.cursor()).or_default();
            *tries += 1;
            let (status, result) = slash_once(slasher, &evidence, *tries, policy).await;
            match result {
                "failed" => failed = true,
                "slashed" if policy.confirmations > 0 => {
                    waiting = true;
                    attempts.remove(&evidence.cursor());
                }
                _ => {
                    attempts.remove(&evidence.cursor());
                }
            }
            count(result);
            record(&evidence, &status);
        }
        let wait = if failed {
            let w = pause;
            pause = (pause * 2).min(SLASH_RETRY_MAX);
            w
        } else {
            pause = SLASH_RETRY_MIN;
            // Nothing pending failed: sleep until new evidence (or a periodic look).
            SLASH_RETRY_MAX
        };
        let wait = if waiting {
            wait.min(policy.recheck)
        } else {
            wait
        };
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// What became of a slash that landed in a block.
#[derive(Debug)]
enum Confirmation {
    /// Deep enough: the settled status to store.
    Buried(String),
    /// Not deep enough yet, or the endpoint cannot tell now (lagging, unreachable).
    Waiting,
    /// The member is slashable again at a head past the slash's block: a reorganisation
    /// dropped the slash.
    Undone,
}

/// Checks a slash that landed in `block` against the chain.
async fn confirm_slash(
    slasher: &Slasher,
    evidence: &SpamEvidence,
    block: u64,
    confirmations: u64,
) -> Confirmation {
    let work = async {
        // The head first: a slashable answer read after it comes from a head at least as high.
        let head = slasher.head_block().await?;
        let slashable = slasher.is_slashable(&evidence.id_commitment).await?;
        Ok::<_, rln_chain::ChainError>((head, slashable))
    };
    match tokio::time::timeout(SLASH_TIMEOUT, work).await {
        // An endpoint whose head is below the slash's block has not seen it yet.
        Ok(Ok((head, true))) if head >= block => Confirmation::Undone,
        Ok(Ok((head, false))) if head >= block.saturating_add(confirmations) => {
            // `landed in block N (reward to R); …` becomes `slashed in block N (reward to R)`.
            let rest = evidence
                .slash_status
                .strip_prefix(rln_db::evidence::LANDED)
                .unwrap_or_default();
            let rest = rest.split(';').next().unwrap_or_default();
            Confirmation::Buried(format!("{}{rest}", rln_db::evidence::SLASHED_IN_BLOCK))
        }
        Ok(Ok(_)) => Confirmation::Waiting,
        Ok(Err(e)) => {
            tracing::debug!("cannot check a landed slash now: {e}");
            Confirmation::Waiting
        }
        Err(_) => Confirmation::Waiting,
    }
}

/// One attempt at slashing the member `evidence` names: the status to store and the metric
/// label (`slashed`, `gone` when nothing is left to take, `failed`).
async fn slash_once(
    slasher: &Slasher,
    evidence: &SpamEvidence,
    attempt: u32,
    policy: SlashPolicy,
) -> (String, &'static str) {
    let member = fr_to_hex(&evidence.id_commitment);
    let work = async {
        if !slasher.is_slashable(&evidence.id_commitment).await? {
            return Ok(None);
        }
        slasher.slash(&evidence.secret).await.map(Some)
    };
    match tokio::time::timeout(SLASH_TIMEOUT, work).await {
        Ok(Ok(Some(outcome))) => {
            tracing::warn!(%member, block = outcome.reveal_block, "spammer slashed");
            let status = if policy.confirmations == 0 {
                format!(
                    "{} {} (reward to {})",
                    rln_db::evidence::SLASHED_IN_BLOCK,
                    outcome.reveal_block,
                    outcome.receiver
                )
            } else {
                format!(
                    "{} {} (reward to {}); settled once {} blocks deep",
                    rln_db::evidence::LANDED,
                    outcome.reveal_block,
                    outcome.receiver,
                    policy.confirmations
                )
            };
            (status, "slashed")
        }
        Ok(Ok(None)) => (
            format!(
                "{}: nothing left to take (slashed already, or erased and its deposit withdrawn)",
                rln_db::evidence::NOT_SLASHED
            ),
            "gone",
        ),
        Ok(Err(e)) => {
            tracing::warn!(%member, attempt, "slash failed, will retry: {e}");
            (format!("attempt {attempt} failed: {e}; retrying"), "failed")
        }
        Err(_) => {
            tracing::warn!(%member, attempt, "slash timed out, will retry");
            (
                format!(
                    "attempt {attempt} timed out after {} s; retrying",
                    SLASH_TIMEOUT.as_secs()
                ),
                "failed",
            )
        }
    }
}
