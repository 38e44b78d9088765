//! A running relay node: state, chain sync, swarm, validation workers, publisher, REST API.

use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use prometheus_client::registry::Registry;
use rln_chain::{
    Address, Keystore, MembershipSync, RetryPolicy, RpcPool, Slasher, SyncConfig, SyncStatus,
};
use rln_core::{epoch_at, fr_to_le_bytes, Fr, RlnIdentifier, TREE_DEPTH};
use rln_db::{DbConfig, RlnDb, SpamEvidence};
use rln_zk::{Prover, Verifier};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::NodeConfig;
use crate::error::RelayError;
use crate::hub::{Delivered, Hub};
use crate::metrics::{Metrics, ResultLabel};
use crate::network::{self, Command, NetState, PeerSummary, SharedNet, SwarmSettings, SwarmTask};
use crate::pipeline::{Pipeline, Sinks};
use crate::publisher::{Member, MessageIdChoice, Publisher};
use crate::validation::{Rules, Validator};
use crate::wire::WakuMessage;

/// What the node reports about itself (`/health`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Health {
    /// Caught up with the chain.
    pub synced: bool,
    /// Last block applied.
    pub block: Option<u64>,
    /// Chain head at the last poll.
    pub head: Option<u64>,
    /// Current root, hex (big-endian, 0x…).
    pub root: String,
    /// Leaves in the tree.
    pub members: u64,
    /// Connected peers.
    pub peers: usize,
    /// The last sync error while it persists.
    pub last_error: Option<String>,
}

/// The node's public parts, shared with the REST API.
pub struct NodeInner {
    /// Settings.
    pub config: NodeConfig,
    /// State.
    pub db: Arc<RlnDb>,
    /// Local delivery.
    pub hub: Arc<Hub>,
    /// Publishing (none without a membership).
    pub publisher: Option<Arc<Publisher>>,
    /// Metrics.
    pub metrics: Metrics,
    /// The registry `/metrics` encodes.
    pub registry: Arc<Mutex<Registry>>,
    commands: mpsc::Sender<Command>,
    net: SharedNet,
    sync_status: watch::Receiver<SyncStatus>,
    peer_id: PeerId,
}

impl std::fmt::Debug for NodeInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeInner")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

/// Hex of a field element as a big-endian number, `0x…`.
pub fn fr_hex(value: &Fr) -> String {
    let mut bytes = fr_to_le_bytes(value);
    bytes.reverse();
    format!("0x{}", hex::encode(bytes))
}

impl NodeInner {
    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Full addresses (`…/p2p/<peer id>`) the node listens on.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        let net = self
            .net
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        net.listen
            .iter()
            .map(|a| {
                a.clone()
                    .with(libp2p::multiaddr::Protocol::P2p(self.peer_id))
            })
            .collect()
    }

    /// The health report.
    pub fn health(&self) -> Health {
        let status = self.sync_status.borrow().clone();
        let peers = self
            .net
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .connected
            .len();
        Health {
            synced: status.synced,
            block: status.block,
            head: status.head,
            root: self.db.root().map(|r| fr_hex(&r)).unwrap_or_default(),
            members: status.members,
            peers,
            last_error: status.last_error,
        }
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
        let publisher = self.publisher.clone().ok_or(RelayError::NoMembership)?;
        // Checked before proving: a message id, once allocated, is never handed out again.
        if !self
            .peers()
            .await
            .iter()
            .any(|p| p.topics.iter().any(|t| t == topic))
        {
            return Err(RelayError::Publish(format!(
                "no connected peer relays {topic} yet; nothing was proved and no message id was used"
            )));
        }
        if message.encode().len() + 400 > self.config.network.max_message_bytes {
            return Err(RelayError::InvalidMessage(format!(
                "the message is larger than the limit of {} bytes",
                self.config.network.max_message_bytes
            )));
        }
        let proved = tokio::task::spawn_blocking(move || publisher.prove(message, choice))
            .await
            .map_err(|_| RelayError::Stopped)??;
        let hash = proved.hash(topic);
        self.send_raw(topic, proved.encode()).await?;
        Ok((proved, hash))
    }

    /// Publishes bytes as they are, without proof or checks (for tests of bad input).
    pub async fn send_raw(&self, topic: &str, data: Vec<u8>) -> Result<(), RelayError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Publish {
                topic: topic.to_string(),
                data,
                reply,
            })
            .await
            .map_err(|_| RelayError::Stopped)?;
        rx.await.map_err(|_| RelayError::Stopped)?
    }

    /// The connected peers and their scores.
    pub async fn peers(&self) -> Vec<PeerSummary> {
        let (reply, rx) = oneshot::channel();
        if self.commands.send(Command::Peers { reply }).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Joins a pubsub topic and caches its messages for polling.
    pub async fn subscribe_topic(&self, topic: &str) -> Result<(), RelayError> {
        self.hub.cache_topic(topic);
        self.commands
            .send(Command::Subscribe {
                topic: topic.to_string(),
            })
            .await
            .map_err(|_| RelayError::Stopped)
    }

    /// Stops caching a topic (the node keeps relaying its configured topics).
    pub async fn unsubscribe_topic(&self, topic: &str) -> Result<(), RelayError> {
        self.hub.uncache_topic(topic);
        if !self.config.network.pubsub_topics.iter().any(|t| t == topic) {
            self.commands
                .send(Command::Unsubscribe {
                    topic: topic.to_string(),
                })
                .await
                .map_err(|_| RelayError::Stopped)?;
        }
        Ok(())
    }

    /// Connects to a peer.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), RelayError> {
        self.commands
            .send(Command::Dial { addr })
            .await
            .map_err(|_| RelayError::Stopped)
    }

    /// Every valid message delivered from now on.
    pub fn messages(&self) -> broadcast::Receiver<Delivered> {
        self.hub.subscribe()
    }

    /// Stored spam evidence.
    pub fn spam_evidence(&self) -> Result<Vec<SpamEvidence>, RelayError> {
        Ok(self.db.spam_evidence()?)
    }
}

/// A running node. Dropping it without [`Node::shutdown`] leaves tasks running until the
/// runtime ends.
#[derive(Debug)]
pub struct Node {
    inner: Arc<NodeInner>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    workers: Vec<std::thread::JoinHandle<()>>,
    rest_addr: Option<SocketAddr>,
}

impl std::ops::Deref for Node {
    type Target = NodeInner;
    fn deref(&self) -> &NodeInner {
        &self.inner
    }
}

fn load_or_create_key(path: &Path) -> Result<Keypair, RelayError> {
    let io = |what: String| move |source| RelayError::Io { what, source };
    if path.exists() {
        let bytes =
            std::fs::read(path).map_err(io(format!("reading the node key {}", path.display())))?;
        return Keypair::from_protobuf_encoding(&bytes).map_err(|e| {
            RelayError::Config(format!("{} is not a libp2p key: {e}", path.display()))
        });
    }
    let key = Keypair::generate_ed25519();
    let bytes = key
        .to_protobuf_encoding()
        .map_err(|e| RelayError::Config(format!("cannot encode the node key: {e}")))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    }
    std::fs::write(path, bytes).map_err(io(format!("writing the node key {}", path.display())))?;
    Ok(key)
}

fn parse_addrs(list: &[String], what: &str) -> Result<Vec<Multiaddr>, RelayError> {
    list.iter()
        .map(|a| {
            Multiaddr::from_str(a)
                .map_err(|e| RelayError::Config(format!("{what} `{a}` is not a multiaddress: {e}")))
        })
        .collect()
}

impl Node {
    /// Starts a node: opens the state, starts chain sync, the swarm, the validation workers
    /// and (if configured) the REST API.
    pub async fn start(config: NodeConfig) -> Result<Self, RelayError> {
        let contract = Address::from_str(config.chain.contract.trim()).map_err(|_| {
            RelayError::Config(format!(
                "the contract address `{}` is not a 0x-prefixed 20-byte hex address",
                config.chain.contract
            ))
        })?;
        let rpc = RpcPool::new(&config.chain.rpc, RetryPolicy::default())?;
        let chain_id = match config.chain.chain_id {
            // Checked against the endpoint when it answers; a node may start while it is down.
            Some(expected) => match rpc.chain_id().await {
                Ok(actual) if actual != expected => {
                    return Err(rln_chain::ChainError::WrongChain { expected, actual }.into())
                }
                _ => expected,
            },
            None => rpc.chain_id().await.map_err(|e| {
                RelayError::Config(format!(
                    "{e}; to start while the RPC is down, set the chain id explicitly"
                ))
            })?,
        };
        let rln_identifier = RlnIdentifier::from_tag(config.rln.rln_identifier.as_bytes())
            .ok_or_else(|| {
                RelayError::Config("the RLN identifier must be at most 31 bytes".into())
            })?;
        if config.rln.epoch_secs == 0 {
            return Err(RelayError::Config(
                "the epoch length must be at least 1 s".into(),
            ));
        }
        let db = Arc::new(RlnDb::open(
            config.data_dir.join("db"),
            DbConfig {
                depth: TREE_DEPTH,
                chain_id,
                contract: contract.into_array(),
                root_window: config.rln.root_window,
                ..DbConfig::default()
            },
        )?);

        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        crate::validation::Reason::register_all(&metrics);
        for result in ["slashed", "failed"] {
            metrics
                .slashes
                .get_or_create(&ResultLabel {
                    result: result.into(),
                })
                .get();
        }

        // Keys: the prover (only with a membership) and the verifier.
        let membership = match &config.membership {
            Some(m) => Some(load_member(&m.keystore, &m.password, m.id.as_deref())?),
            None => None,
        };
        let (prover, verifier) = load_keys(&config, membership.is_some()).await?;

        // Chain sync.
        let sync = Arc::new(MembershipSync::new(
            rpc,
            db.clone(),
            SyncConfig {
                contract,
                chain_id,
                max_block_range: config.chain.max_block_range,
                confirmations: config.chain.confirmations,
                poll_interval: Duration::from_millis(config.chain.poll_interval_ms.max(50)),
            },
        ));
        let sync_status = sync.status();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        {
            let sync = sync.clone();
            let rx = shutdown_rx.clone();
            tasks.push(tokio::spawn(async move { sync.run(rx).await }));
        }
        let synced = Arc::new(AtomicBool::new(false));
        tasks.push(tokio::spawn(watch_sync(
            sync_status.clone(),
            synced.clone(),
            metrics.clone(),
            shutdown_rx.clone(),
        )));

        // Validation.
        let rules = Rules {
            epoch_secs: config.rln.epoch_secs,
            max_clock_gap: Duration::from_secs(config.rln.max_clock_gap_secs),
            rln_identifier,
            signal: config.rln.signal,
        };
        let validator = Arc::new(Validator::new(
            db.clone(),
            verifier,
            rules,
            synced,
            metrics.clone(),
        ));
        let hub = Arc::new(Hub::new(config.rest.cache_per_topic));
        let (verdict_tx, verdict_rx) =
            mpsc::channel(config.validation.queue.max(1) + config.validation.max_batch.max(1) * 16);
        let spam_tx = match &config.slash {
            Some(slash) => {
                let receiver = match &slash.receiver {
                    Some(r) => Some(Address::from_str(r).map_err(|_| {
                        RelayError::Config(format!("the slash receiver `{r}` is not an address"))
                    })?),
                    None => None,
                };
                let first_rpc = config.chain.rpc.first().cloned().unwrap_or_default();
                let slasher = Slasher::new(&first_rpc, &slash.private_key, contract, receiver)?;
                let (tx, rx) = mpsc::channel(1_024);
                tasks.push(tokio::spawn(run_slasher(
                    slasher,
                    rx,
                    db.clone(),
                    metrics.clone(),
                )));
                Some(tx)
            }
            None => None,
        };
        let workers = match config.validation.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let (pipeline, worker_handles) = Pipeline::start(
            validator,
            workers,
            config.validation.queue,
            config.validation.max_batch,
            Sinks {
                verdicts: verdict_tx,
                hub: hub.clone(),
                spam: spam_tx,
                db: db.clone(),
                metrics: metrics.clone(),
            },
        )
        .map_err(|source| RelayError::Io {
            what: "starting validation workers".into(),
            source,
        })?;

        // Network.
        let key_path = config
            .network
            .node_key
            .clone()
            .unwrap_or_else(|| config.data_dir.join("node_key"));
        let key = load_or_create_key(&key_path)?;
        let peer_id = key.public().to_peer_id();
        let settings = SwarmSettings {
            topics: config.network.pubsub_topics.clone(),
            max_message_bytes: config.network.max_message_bytes,
            seen_ttl: Duration::from_secs(config.network.seen_ttl_secs.max(1)),
            heartbeat: Duration::from_millis(config.network.heartbeat_ms.max(50)),
            invalid_message_weight: config.network.invalid_message_weight,
        };
        let mut swarm = network::build_swarm(key, &settings, &mut registry)?;
        for addr in parse_addrs(&config.network.listen, "listen address")? {
            swarm.listen_on(addr.clone()).map_err(|e| {
                RelayError::Network(format!("cannot listen on {addr}: {e}; is the port in use?"))
            })?;
        }
        let net: SharedNet = Arc::new(Mutex::new(NetState::default()));
        let (commands, commands_rx) = mpsc::channel(1_024);
        tasks.push(tokio::spawn(network::run_swarm(SwarmTask {
            swarm,
            commands: commands_rx,
            verdicts: verdict_rx,
            pipeline,
            static_peers: parse_addrs(&config.network.static_peers, "static peer")?,
            bootstrap: parse_addrs(&config.network.bootstrap, "bootstrap peer")?,
            max_message_bytes: config.network.max_message_bytes,
            state: net.clone(),
            metrics: metrics.clone(),
            shutdown: shutdown_rx.clone(),
        })));

        let publisher = match (membership, prover) {
            (Some(member), Some(prover)) => Some(Arc::new(Publisher::new(
                member,
                db.clone(),
                prover,
                config.rln.epoch_secs,
                rln_identifier,
                config.rln.signal,
                metrics.clone(),
            ))),
            _ => None,
        };
        if let Some(p) = &publisher {
            let _ = p.remaining();
            tasks.push(tokio::spawn(prepare_after_sync(
                p.clone(),
                sync_status.clone(),
                shutdown_rx.clone(),
            )));
        }
        tasks.push(tokio::spawn(prune_nullifiers(
            db.clone(),
            config.rln.epoch_secs,
            config.rln.max_clock_gap_secs,
            shutdown_rx.clone(),
        )));

        for topic in &config.network.pubsub_topics {
            hub.cache_topic(topic);
        }
        let inner = Arc::new(NodeInner {
            config: config.clone(),
            db,
            hub,
            publisher,
            metrics,
            registry: Arc::new(Mutex::new(registry)),
            commands,
            net,
            sync_status,
            peer_id,
        });
        let rest_addr = match config.rest.listen {
            Some(addr) => {
                let (bound, task) =
                    crate::rest::serve(inner.clone(), addr, shutdown_rx.clone()).await?;
                tasks.push(task);
                Some(bound)
            }
            None => None,
        };
        Ok(Self {
            inner,
            shutdown,
            tasks,
            workers: worker_handles,
            rest_addr,
        })
    }

    /// The shared parts (for the REST API and tests).
    pub fn inner(&self) -> Arc<NodeInner> {
        self.inner.clone()
    }

    /// Where the REST API listens.
    pub fn rest_addr(&self) -> Option<SocketAddr> {
        self.rest_addr
    }

    /// Waits until the sync is caught up (or `timeout` passes); returns whether it is.
    pub async fn wait_synced(&self, timeout: Duration) -> bool {
        let mut status = self.inner.sync_status.clone();
        tokio::time::timeout(timeout, status.wait_for(|s| s.synced))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Stops every task and worker and flushes the state.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        // The swarm task owned the last pipeline handle: the workers drain and end.
        for worker in self.workers {
            let _ = tokio::task::spawn_blocking(move || worker.join()).await;
        }
        if let Err(e) = self.inner.db.flush() {
            tracing::error!("flushing the state failed: {e}");
        }
    }
}

fn load_member(keystore: &Path, password: &str, id: Option<&str>) -> Result<Member, RelayError> {
    if !keystore.exists() {
        return Err(RelayError::Config(format!(
            "the keystore {} does not exist; create one with `rln-node register`",
            keystore.display()
        )));
    }
    let ks = Keystore::load(keystore)?;
    let ids: Vec<String> = ks.memberships().map(str::to_string).collect();
    let id = match (id, ids.as_slice()) {
        (Some(id), _) => id.to_string(),
        (None, [one]) => one.clone(),
        (None, []) => {
            return Err(RelayError::Config(format!(
                "the keystore {} holds no membership",
                keystore.display()
            )))
        }
        (None, _) => {
            return Err(RelayError::Config(format!(
                "the keystore {} holds {} memberships; choose one with --membership",
                keystore.display(),
                ids.len()
            )))
        }
    };
    let m = ks.get(&id, password.as_bytes())?;
    let identity = m.identity()?;
    let limit = m.user_message_limit.ok_or_else(|| {
        RelayError::Config(format!("membership {id} does not record its message limit"))
    })?;
    Ok(Member {
        identity,
        limit,
        index: m.tree_index,
    })
}

async fn load_keys(
    config: &NodeConfig,
    need_prover: bool,
) -> Result<(Option<Arc<Prover>>, Verifier), RelayError> {
    let zkey = config.rln.zkey.clone();
    let vk_path = config.rln.verifying_key.clone();
    tokio::task::spawn_blocking(move || {
        let prover = if need_prover {
            Some(Arc::new(match &zkey {
                Some(path) => Prover::with_zkey_path(path)?,
                None => Prover::dev()?,
            }))
        } else {
            None
        };
        let verifier = match (&vk_path, &prover, &zkey) {
            (Some(path), _, _) => Verifier::from_path(path)?,
            (None, Some(p), _) => Verifier::new(p.verifying_key())?,
            (None, None, Some(path)) => {
                Verifier::new(&rln_zk::ZkeyData::from_path(path)?.proving_key.vk)?
            }
            (None, None, None) => Verifier::dev()?,
        };
        Ok::<_, RelayError>((prover, verifier))
    })
    .await
    .map_err(|_| RelayError::Stopped)?
}

async fn watch_sync(
    mut status: watch::Receiver<SyncStatus>,
    synced: Arc<AtomicBool>,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        {
            let s = status.borrow_and_update();
            synced.store(s.synced, Ordering::Relaxed);
            metrics.synced.set(i64::from(s.synced));
            metrics.synced_block.set(s.block.unwrap_or(0) as i64);
            metrics.registered_members.set(s.members as i64);
        }
        tokio::select! {
            r = status.changed() => if r.is_err() { return },
            _ = shutdown.changed() => return,
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
                Err(_) => return,
            }
        }
        tokio::select! {
            r = status.changed() => if r.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}

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
            _ = shutdown.changed() => return,
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
    }
}

async fn run_slasher(
    slasher: Slasher,
    mut rx: mpsc::Receiver<SpamEvidence>,
    db: Arc<RlnDb>,
    metrics: Metrics,
) {
    let mut done = std::collections::HashSet::new();
    while let Some(evidence) = rx.recv().await {
        let member = fr_hex(&evidence.id_commitment);
        if !done.insert(member.clone()) {
            continue;
        }
        let (status, result) = match slasher.slash(&evidence.secret).await {
            Ok(outcome) => {
                tracing::warn!(%member, block = outcome.reveal_block, "spammer slashed");
                (
                    format!(
                        "slashed in block {} (reward to {})",
                        outcome.reveal_block, outcome.receiver
                    ),
                    "slashed",
                )
            }
            Err(e) => {
                tracing::warn!(%member, "slash failed: {e}");
                (format!("slash failed: {e}"), "failed")
            }
        };
        metrics
            .slashes
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc();
        if let Err(e) = db.set_slash_status(evidence.epoch, &evidence.nullifier, &status) {
            tracing::error!("cannot record the slash status: {e}");
        }
    }
}
