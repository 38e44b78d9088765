//! The libp2p side: TCP and WebSocket, Noise, Yamux and Mplex (js-waku has only Mplex),
//! identify, ping, Kademlia discovery, raw streams for the light protocols, and GossipSub with
//! Waku's relay protocol id, anonymous (StrictNoSign) messages, message id = sha256(data),
//! explicit validation and peer scoring that graylists peers who forward invalid messages.
//!
//! One task owns the swarm ([`run_swarm`]). It decodes arriving messages (the only work done
//! there), queues them for the validation workers, and applies the verdicts and commands it
//! receives; nothing else touches the swarm.

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::Boxed;
use libp2p::gossipsub::{
    self, IdentTopic, MessageAcceptance, MessageAuthenticity, PeerScoreParams, PeerScoreThresholds,
    TopicHash, TopicScoreParams, ValidationMode,
};
use libp2p::identity::Keypair;
use libp2p::kad::{self, store::MemoryStore};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    connection_limits, identify, noise, ping, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm,
};
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch};

use crate::error::RelayError;
use crate::handle::{lock, peer_of, Command, NetState, NetworkHandle, PeerSummary, SharedNet};
use crate::metrics::Metrics;
use crate::protocols;
use crate::protocols::relay::pipeline::{Job, Pipeline, Validated};
use crate::protocols::relay::reencoded::Reencodings;
use crate::protocols::relay::validation::{Acceptance, Candidate, Outcome, Reason};
use crate::wire::metadata::Metadata;
use crate::wire::{self, WakuMessage, WireError};

/// Waku relay's GossipSub protocol id.
pub const RELAY_PROTOCOL: &str = "/vac/waku/relay/2.0.0";
/// The Kademlia protocol of rln-node's discovery.
pub const KAD_PROTOCOL: &str = "/rln-node/kad/1.0.0";

/// Peer score thresholds (as nwaku sets them).
pub const GOSSIP_THRESHOLD: f64 = -100.0;
/// Below this, the node does not publish to the peer.
pub const PUBLISH_THRESHOLD: f64 = -1_000.0;
/// Below this, the node ignores everything the peer sends.
pub const GRAYLIST_THRESHOLD: f64 = -10_000.0;
/// Weight of the squared count of invalid messages a peer forwarded.
pub const INVALID_MESSAGE_WEIGHT: f64 = -4_000.0;

pub use behaviour::{RelayBehaviour, RelayBehaviourEvent};
pub use libp2p::gossipsub::MessageId;

mod behaviour {
    // The derive macro generates an event enum without documentation.
    #![allow(missing_docs)]
    use super::*;

    /// The behaviours of an rln-node.
    #[derive(NetworkBehaviour)]
    pub struct RelayBehaviour {
        pub(crate) gossipsub: gossipsub::Behaviour,
        pub(crate) identify: identify::Behaviour,
        pub(crate) ping: ping::Behaviour,
        pub(crate) kad: Toggle<kad::Behaviour<MemoryStore>>,
        pub(crate) stream: libp2p_stream::Behaviour,
        pub(crate) limits: connection_limits::Behaviour,
    }
}

/// Settings the swarm is built from.
#[derive(Debug, Clone)]
pub struct SwarmSettings {
    /// Topics to join.
    pub topics: Vec<String>,
    /// Largest accepted message.
    pub max_message_bytes: usize,
    /// How long message ids are remembered.
    pub seen_ttl: Duration,
    /// GossipSub heartbeat.
    pub heartbeat: Duration,
    /// Score weight of invalid messages (negative).
    pub invalid_message_weight: f64,
    /// What the node says of itself on the metadata protocol.
    pub metadata: Metadata,
    /// Whether peers are found through Kademlia (off: a fixed topology of static and
    /// bootstrap peers and of those that dial in; Kademlia then only answers queries).
    pub discovery: bool,
    /// GossipSub's mesh degree D (see [`mesh_bounds`]).
    pub mesh_degree: usize,
}

/// GossipSub's D as Waku's nodes run it.
pub const MESH_DEGREE: usize = 6;
/// The largest D a node accepts.
pub const MAX_MESH_DEGREE: usize = 64;

/// The mesh bounds for degree `d`, as `(d_low, d_high, d_out)`: the mesh is refilled below
/// d − d/3 and pruned above d + d/3, and keeps at least d_out outbound peers (at most d/2,
/// as GossipSub requires). At d = 6 that is Waku's 4, 8 and 3.
pub fn mesh_bounds(d: usize) -> (usize, usize, usize) {
    let d = d.max(1);
    let low = (d - d / 3).max(1);
    let high = d + d / 3;
    let out = (d / 2).min(low);
    (low, high, out)
}

fn score_params(topics: &[String], invalid_message_weight: f64) -> PeerScoreParams {
    let mut params = PeerScoreParams {
        // Loopback and private test networks put every peer on one address.
        ip_colocation_factor_whitelist: ["127.0.0.1".parse(), "::1".parse()]
            .into_iter()
            .flatten()
            .collect(),
        ..PeerScoreParams::default()
    };
    for topic in topics {
        params.topics.insert(
            IdentTopic::new(topic.clone()).hash(),
            topic_score_params(invalid_message_weight),
        );
    }
    params
}

/// The score parameters of every relayed topic, whether configured at start or joined later
/// (over REST): a topic without them would let its invalid messages go unpunished.
fn topic_score_params(invalid_message_weight: f64) -> TopicScoreParams {
    TopicScoreParams {
        topic_weight: 1.0,
        // Quiet topics are normal for a rate-limited network: no delivery quotas.
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -invalid_message_weight.abs(),
        invalid_message_deliveries_decay: 0.97,
        ..TopicScoreParams::default()
    }
}

/// Builds the behaviours.
fn behaviour(
    key: &Keypair,
    s: &SwarmSettings,
    registry: &mut Registry,
) -> Result<RelayBehaviour, RelayError> {
    let (mesh_low, mesh_high, mesh_out) = mesh_bounds(s.mesh_degree);
    let config = gossipsub::ConfigBuilder::default()
        .protocol_id(RELAY_PROTOCOL, gossipsub::Version::V1_1)
        .validation_mode(ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(|m: &gossipsub::Message| MessageId::from(wire::message_id(&m.data).to_vec()))
        // Oversize messages must reach the decoder so they are rejected with their reason.
        .max_transmit_size(s.max_message_bytes * 2 + 1024)
        .duplicate_cache_time(s.seen_ttl)
        .heartbeat_interval(s.heartbeat)
        .mesh_n(s.mesh_degree)
        .mesh_n_low(mesh_low)
        .mesh_n_high(mesh_high)
        .mesh_outbound_min(mesh_out)
        .build()
        .map_err(|e| RelayError::Network(format!("gossipsub config: {e}")))?;
    let gossipsub = gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, config)
        .map_err(|e| RelayError::Network(format!("gossipsub: {e}")))?
        .with_metrics(
            registry.sub_registry_with_prefix("libp2p_gossipsub"),
            Default::default(),
        );
    let mut gossipsub = gossipsub;
    gossipsub
        .with_peer_score(
            score_params(&s.topics, s.invalid_message_weight),
            PeerScoreThresholds {
                gossip_threshold: GOSSIP_THRESHOLD,
                publish_threshold: PUBLISH_THRESHOLD,
                graylist_threshold: GRAYLIST_THRESHOLD,
                accept_px_threshold: 100.0,
                opportunistic_graft_threshold: 1.0,
            },
        )
        .map_err(|e| RelayError::Network(format!("peer scoring: {e}")))?;
    let peer_id = key.public().to_peer_id();
    let mut kad_config = kad::Config::new(StreamProtocol::new(KAD_PROTOCOL));
    kad_config.set_periodic_bootstrap_interval(Some(Duration::from_secs(30)));
    // Discovery only needs the routing table: records and provider entries that other peers
    // ask this node to store arrive as events (ignored below) instead of filling memory.
    kad_config.set_record_filtering(kad::StoreInserts::FilterBoth);
    let mut kad = kad::Behaviour::with_config(peer_id, MemoryStore::new(peer_id), kad_config);
    kad.set_mode(Some(kad::Mode::Server));
    // Without discovery there is no Kademlia at all: even answering queries would add the
    // askers to a routing table, and a new entry starts a bootstrap that dials peers.
    let kad = Toggle::from(s.discovery.then_some(kad));
    Ok(RelayBehaviour {
        gossipsub,
        identify: identify::Behaviour::new(
            identify::Config::new("/rln-node/1.0.0".into(), key.public())
                .with_agent_version(format!("rln-node/{}", env!("CARGO_PKG_VERSION"))),
        ),
        ping: ping::Behaviour::default(),
        kad,
        stream: libp2p_stream::Behaviour::new(),
        limits: connection_limits::Behaviour::new(
            connection_limits::ConnectionLimits::default()
                .with_max_pending_incoming(Some(MAX_PENDING_INCOMING)),
        ),
    })
}

/// The most a single WebSocket message may announce. A peer's Noise output is written to the
/// WebSocket in whatever pieces its writer flushes: one Noise frame (at most 65,535 bytes plus
/// its 2-byte length) on top of a send buffer of up to 128 KiB in rust-libp2p, one frame at a
/// time in js-libp2p. Nothing a peer sends needs more than the larger of a maximal Waku message
/// and that buffer, plus a frame. libp2p's default (256 MiB) let anyone who reached the
/// listener make the node allocate that much per connection before the Noise handshake
/// (ARCHITECTURE.md, "Listeners and their bounds").
pub fn websocket_max_message_bytes(max_message_bytes: usize) -> usize {
    const SEND_BUFFER: usize = 128 * 1024;
    const NOISE_FRAME: usize = 65_535 + 2;
    max_message_bytes.max(SEND_BUFFER) + NOISE_FRAME
}

/// How long an incoming connection may take from its first byte to a negotiated muxer
/// (WebSocket upgrade, multistream-select, Noise, muxer): after that it is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many incoming connections may be in their handshake at once; more are refused
/// before a byte is read.
pub const MAX_PENDING_INCOMING: u32 = 128;

/// Builds a swarm listening on nothing yet. Both transports (TCP, and WebSocket over TCP for
/// `/ws` addresses) offer Yamux first and Mplex second.
pub async fn build_swarm(
    key: Keypair,
    settings: &SwarmSettings,
    registry: &mut Registry,
) -> Result<Swarm<RelayBehaviour>, RelayError> {
    let behaviour = behaviour(&key, settings, registry)?;
    let ws_max = websocket_max_message_bytes(settings.max_message_bytes);
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            (yamux::Config::default, libp2p_mplex::Config::new),
        )
        .map_err(|e| RelayError::Network(format!("transport: {e}")))?
        .with_other_transport(|key| websocket_transport(key, ws_max))
        .map_err(|e| RelayError::Network(format!("websocket transport: {e}")))?
        // `libp2p_bandwidth_bytes_total{direction}`: every byte on every connection.
        .with_bandwidth_metrics(registry)
        .with_behaviour(|_| behaviour)
        .map_err(|e| RelayError::Network(format!("behaviour: {e}")))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .with_connection_timeout(HANDSHAKE_TIMEOUT)
        .build();
    for topic in &settings.topics {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&IdentTopic::new(topic.clone()))
            .map_err(|e| RelayError::Network(format!("subscribing to {topic}: {e}")))?;
    }
    Ok(swarm)
}

/// WebSocket over TCP (names resolved by the system's resolver), with every message bounded
/// by `max_message_bytes`, then Noise and Yamux or Mplex, as the TCP transport.
fn websocket_transport(
    key: &Keypair,
    max_message_bytes: usize,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, Box<dyn std::error::Error + Send + Sync>> {
    use libp2p::core::upgrade::{SelectUpgrade, Version};
    use libp2p::Transport as _;
    let tcp = libp2p::tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
    let mut ws = libp2p::websocket::Config::new(libp2p::dns::tokio::Transport::system(tcp)?);
    ws.set_max_data_size(max_message_bytes);
    Ok(ws
        .upgrade(Version::V1Lazy)
        .authenticate(noise::Config::new(key)?)
        .multiplex(SelectUpgrade::new(
            yamux::Config::default(),
            libp2p_mplex::Config::new(),
        ))
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
        .boxed())
}

/// Everything the swarm task needs.
struct SwarmTask {
    /// The swarm.
    swarm: Swarm<RelayBehaviour>,
    /// Commands from the node.
    commands: mpsc::Receiver<Command>,
    /// Results from the validation workers.
    verdicts: mpsc::Receiver<Validated>,
    /// The validation queue.
    pipeline: Pipeline,
    /// Peers to keep connected.
    static_peers: Vec<Multiaddr>,
    /// Peers to bootstrap discovery from.
    bootstrap: Vec<Multiaddr>,
    /// Largest message.
    max_message_bytes: usize,
    /// Published state.
    state: SharedNet,
    /// The node's own handle, for the tasks the swarm task starts (metadata exchanges).
    handle: NetworkHandle,
    /// What the node says of itself on the metadata protocol.
    metadata: Metadata,
    /// Score weight of invalid messages, for topics joined after start.
    invalid_message_weight: f64,
    /// Other encodings of messages already seen.
    reencodings: Reencodings,
    /// Metrics.
    metrics: Metrics,
    /// Set to `true` to stop.
    shutdown: watch::Receiver<bool>,
}

/// How a node's swarm is set up.
#[derive(Debug, Clone)]
pub struct NetworkSettings {
    /// The swarm's behaviour settings.
    pub swarm: SwarmSettings,
    /// Multiaddresses to listen on.
    pub listen: Vec<String>,
    /// Peers to keep connected (multiaddresses with `/p2p/<peer id>`).
    pub static_peers: Vec<String>,
    /// Peers to bootstrap discovery from.
    pub bootstrap: Vec<String>,
}

/// What [`start`] needs besides the settings.
#[derive(Debug)]
pub struct NetworkParts {
    /// The node's libp2p key.
    pub key: Keypair,
    /// The validation queue the swarm task submits to.
    pub pipeline: Pipeline,
    /// Results coming back from the validation workers.
    pub verdicts: mpsc::Receiver<Validated>,
    /// Metrics.
    pub metrics: Metrics,
    /// Set to `true` to stop.
    pub shutdown: watch::Receiver<bool>,
}

/// Builds the swarm and starts listening; returns the handle the rest of the node uses and the
/// swarm task (with the metadata service beside it), for the caller to spawn (and supervise).
pub async fn start(
    settings: &NetworkSettings,
    parts: NetworkParts,
    registry: &mut Registry,
) -> Result<(NetworkHandle, impl std::future::Future<Output = ()>), RelayError> {
    let peer_id = parts.key.public().to_peer_id();
    let static_peers = parse_addrs(&settings.static_peers, "static peer")?;
    let bootstrap = parse_addrs(&settings.bootstrap, "bootstrap peer")?;
    let mut swarm = build_swarm(parts.key, &settings.swarm, registry).await?;
    let mut pending_listeners = std::collections::HashSet::new();
    for addr in parse_addrs(&settings.listen, "listen address")? {
        let id = swarm.listen_on(addr.clone()).map_err(|e| {
            RelayError::Network(format!("cannot listen on {addr}: {e}; is the port in use?"))
        })?;
        pending_listeners.insert(id);
    }
    let state: SharedNet = Arc::new(Mutex::new(NetState {
        pending_listeners,
        ..NetState::default()
    }));
    let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE);
    let handle = NetworkHandle::new(
        commands,
        state.clone(),
        peer_id,
        settings.swarm.max_message_bytes,
        swarm.behaviour().stream.new_control(),
    );
    let metadata = settings.swarm.metadata.clone();
    let metadata_service = protocols::metadata::serve(
        &handle,
        metadata.clone(),
        parts.metrics.clone(),
        parts.shutdown.clone(),
    )?;
    let swarm_task = run_swarm(SwarmTask {
        swarm,
        commands: commands_rx,
        verdicts: parts.verdicts,
        pipeline: parts.pipeline,
        static_peers,
        bootstrap,
        max_message_bytes: settings.swarm.max_message_bytes,
        state,
        handle: handle.clone(),
        metadata,
        invalid_message_weight: settings.swarm.invalid_message_weight,
        reencodings: Reencodings::new(settings.swarm.seen_ttl, REENCODING_KEYS),
        metrics: parts.metrics,
        shutdown: parts.shutdown,
    });
    let task = async move {
        tokio::join!(swarm_task, metadata_service);
    };
    Ok((handle, task))
}

/// Commands waiting for the swarm task.
const COMMAND_QUEUE: usize = 1_024;
/// Content keys remembered to spot re-encoded copies (about 100 bytes each).
const REENCODING_KEYS: usize = 65_536;

/// Parses a list of multiaddresses, naming the setting in the error.
pub fn parse_addrs(list: &[String], what: &str) -> Result<Vec<Multiaddr>, RelayError> {
    list.iter()
        .map(|a| {
            Multiaddr::from_str(a)
                .map_err(|e| RelayError::Config(format!("{what} `{a}` is not a multiaddress: {e}")))
        })
        .collect()
}

/// The libp2p key in `path` (protobuf-encoded), or a new Ed25519 key written there.
pub fn load_or_create_key(path: &Path) -> Result<Keypair, RelayError> {
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
    rln_db::secret_file::write_private(path, &bytes)
        .map_err(io(format!("writing the node key {}", path.display())))?;
    Ok(key)
}

/// Runs the swarm until shutdown.
async fn run_swarm(mut t: SwarmTask) {
    let mut redial = tokio::time::interval(Duration::from_secs(5));
    for addr in t.bootstrap.iter().chain(&t.static_peers) {
        if let (Some(peer), Some(kad)) = (peer_of(addr), t.swarm.behaviour_mut().kad.as_mut()) {
            kad.add_address(&peer, addr.clone());
        }
    }
    // Static peers are kept connected (redialled below) but are ordinary mesh peers: GossipSub's
    // explicit peering only works when both sides declare it, and penalises one-sided grafts.
    loop {
        tokio::select! {
            _ = t.shutdown.changed() => {
                if *t.shutdown.borrow() { break; }
            }
            Some(verdict) = t.verdicts.recv() => apply_verdict(&mut t.swarm, verdict),
            Some(command) = t.commands.recv() => {
                handle_command(&mut t.swarm, command, t.invalid_message_weight)
            }
            _ = redial.tick() => {
                let connected = lock(&t.state).connected.clone();
                for addr in t.static_peers.iter().chain(&t.bootstrap) {
                    if peer_of(addr).is_some_and(|p| !connected.contains(&p)) {
                        let _ = t.swarm.dial(addr.clone());
                    }
                }
                // Fails harmlessly (NoKnownPeers) until a peer is in the routing table.
                if let Some(kad) = t.swarm.behaviour_mut().kad.as_mut() {
                    let _ = kad.bootstrap();
                }
                for (peer, score) in t.reencodings.decay(std::time::Instant::now()) {
                    t.swarm.behaviour_mut().gossipsub.set_application_score(&peer, score);
                }
            }
            event = t.swarm.select_next_some() => handle_event(&mut t, event),
        }
    }
}

fn apply_verdict(swarm: &mut Swarm<RelayBehaviour>, v: Validated) {
    let (acceptance, _) = v.outcome.acceptance();
    report(swarm, &v.id, &v.source, acceptance);
}

fn report(swarm: &mut Swarm<RelayBehaviour>, id: &MessageId, source: &PeerId, a: Acceptance) {
    let acceptance = match a {
        Acceptance::Accept => MessageAcceptance::Accept,
        Acceptance::Ignore => MessageAcceptance::Ignore,
        Acceptance::Reject => MessageAcceptance::Reject,
    };
    // `false` means the message left the cache already; nothing else to do.
    let _ = swarm
        .behaviour_mut()
        .gossipsub
        .report_message_validation_result(id, source, acceptance);
}

fn handle_command(swarm: &mut Swarm<RelayBehaviour>, command: Command, invalid_weight: f64) {
    match command {
        Command::Publish { topic, data, reply } => {
            let ident = IdentTopic::new(topic.clone());
            let hash = ident.hash();
            let gossipsub = &mut swarm.behaviour_mut().gossipsub;
            let result = match gossipsub.publish(ident, data) {
                Ok(_) => Ok(gossipsub
                    .all_peers()
                    .filter(|(_, topics)| topics.contains(&&hash))
                    .count()),
                Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                    Err(RelayError::NoPeers(topic))
                }
                Err(e) => Err(RelayError::Publish(e.to_string())),
            };
            let _ = reply.send(result);
        }
        Command::Disconnect { peer } => {
            let _ = swarm.disconnect_peer_id(peer);
        }
        Command::Subscribe { topic } => {
            let topic = IdentTopic::new(topic);
            let gossipsub = &mut swarm.behaviour_mut().gossipsub;
            // Fails only when scoring is off, which `behaviour` never leaves it.
            let _ = gossipsub.set_topic_params(topic.clone(), topic_score_params(invalid_weight));
            let _ = gossipsub.subscribe(&topic);
        }
        Command::Unsubscribe { topic } => {
            swarm
                .behaviour_mut()
                .gossipsub
                .unsubscribe(&IdentTopic::new(topic));
        }
        Command::Dial { addr } => {
            if let (Some(peer), Some(kad)) = (peer_of(&addr), swarm.behaviour_mut().kad.as_mut()) {
                kad.add_address(&peer, addr.clone());
            }
            if let Err(e) = swarm.dial(addr.clone()) {
                tracing::warn!("cannot dial {addr}: {e}");
            }
        }
        Command::Peers { reply } => {
            let gossipsub = &swarm.behaviour().gossipsub;
            let mut peers: Vec<PeerSummary> = swarm
                .connected_peers()
                .map(|peer| PeerSummary {
                    peer_id: peer.to_string(),
                    score: gossipsub.peer_score(peer),
                    topics: gossipsub
                        .all_peers()
                        .find(|(p, _)| *p == peer)
                        .map(|(_, topics)| {
                            topics.iter().map(|t: &&TopicHash| t.to_string()).collect()
                        })
                        .unwrap_or_default(),
                })
                .collect();
            peers.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
            let _ = reply.send(peers);
        }
    }
}

fn handle_event(t: &mut SwarmTask, event: SwarmEvent<RelayBehaviourEvent>) {
    match event {
        SwarmEvent::Behaviour(RelayBehaviourEvent::Gossipsub(gossipsub::Event::Message {
            propagation_source,
            message_id,
            message,
        })) => on_message(t, propagation_source, message_id, message),
        SwarmEvent::Behaviour(RelayBehaviourEvent::Identify(identify::Event::Received {
            peer_id,
            info,
            ..
        })) => {
            if let Some(kad) = t.swarm.behaviour_mut().kad.as_mut() {
                for addr in &info.listen_addrs {
                    kad.add_address(&peer_id, addr.clone());
                }
            }
        }
        SwarmEvent::Behaviour(RelayBehaviourEvent::Kad(kad::Event::RoutingUpdated {
            peer,
            addresses,
            ..
        })) => {
            let connected = lock(&t.state).connected.contains(&peer);
            if !connected && peer != *t.swarm.local_peer_id() {
                if let Some(addr) = addresses.iter().next() {
                    let _ = t.swarm.dial(addr.clone().with(Protocol::P2p(peer)));
                }
            }
        }
        SwarmEvent::NewListenAddr {
            address,
            listener_id,
        } => {
            tracing::info!("listening on {address}/p2p/{}", t.swarm.local_peer_id());
            let mut state = lock(&t.state);
            state.listen.push(address);
            state.pending_listeners.remove(&listener_id);
        }
        SwarmEvent::ListenerClosed {
            listener_id,
            addresses,
            reason: Err(e),
        } => {
            tracing::error!("a listener closed ({addresses:?}): {e}");
            let mut state = lock(&t.state);
            state.listen.retain(|a| !addresses.contains(a));
            if state.pending_listeners.remove(&listener_id) {
                state
                    .listen_failures
                    .push(format!("a listener closed before listening: {e}"));
            }
        }
        SwarmEvent::ExpiredListenAddr { address, .. } => {
            lock(&t.state).listen.retain(|a| *a != address);
        }
        SwarmEvent::ListenerError { error, .. } => {
            tracing::warn!("listener error: {error}");
        }
        SwarmEvent::ConnectionEstablished {
            peer_id,
            num_established,
            ..
        } => {
            {
                let mut state = lock(&t.state);
                state.connected.insert(peer_id);
                t.metrics.peers.set(state.connected.len() as i64);
            }
            if num_established.get() == 1 {
                tokio::spawn(protocols::metadata::ask(
                    t.handle.clone(),
                    t.metadata.clone(),
                    peer_id,
                ));
            }
        }
        SwarmEvent::ConnectionClosed {
            peer_id,
            num_established: 0,
            ..
        } => {
            let mut state = lock(&t.state);
            state.connected.remove(&peer_id);
            t.metrics.peers.set(state.connected.len() as i64);
        }
        _ => {}
    }
}

/// Decodes in the swarm task; malformed messages are rejected at once, the rest queued.
/// What a message says, however it is encoded: its Waku hash and its proof's field values
/// (`None` without a parsable proof; such messages are rejected cheaply anyway).
fn content_key(c: &Candidate) -> Option<[u8; 32]> {
    use sha2::{Digest, Sha256};
    let proof = wire::proof_digest(c.message.rate_limit_proof.as_deref()?)?;
    let mut h = Sha256::new();
    h.update(c.hash);
    h.update(proof);
    Some(h.finalize().into())
}

fn on_message(t: &mut SwarmTask, source: PeerId, id: MessageId, message: gossipsub::Message) {
    let received = SystemTime::now();
    let reject = |t: &mut SwarmTask, reason: Reason| {
        Outcome::Rejected(reason).record(&t.metrics);
        t.metrics.messages.inc();
        report(&mut t.swarm, &id, &source, Acceptance::Reject);
    };
    let decoded = match WakuMessage::decode(&message.data, t.max_message_bytes) {
        Ok(m) => m,
        Err(WireError::TooLarge { .. }) => return reject(t, Reason::Oversize),
        Err(_) => return reject(t, Reason::Malformed),
    };
    // The Waku hash is computed once here, for the key below and for validation.
    let candidate = Candidate::new(message.topic.to_string(), decoded, received, Some(source));
    if let Some(key) = content_key(&candidate) {
        let now = std::time::Instant::now();
        if t.reencodings.is_copy(key, &id, now) {
            Outcome::Ignored(Reason::Reencoded).record(&t.metrics);
            t.metrics.messages.inc();
            report(&mut t.swarm, &id, &source, Acceptance::Ignore);
            let score = t.reencodings.blame(source, now);
            t.swarm
                .behaviour_mut()
                .gossipsub
                .set_application_score(&source, score);
            return;
        }
    }
    let job = Job {
        id: id.clone(),
        source,
        candidate,
    };
    if let Err(outcome) = t.pipeline.submit(job) {
        t.metrics.messages.inc();
        report(&mut t.swarm, &id, &source, outcome.acceptance().0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_websocket_message_holds_a_maximal_waku_message_or_a_send_buffer_and_no_more() {
        let default = websocket_max_message_bytes(wire::DEFAULT_MAX_MESSAGE_BYTES);
        // A maximal message and one Noise frame of framing; far below libp2p's 256 MiB.
        assert_eq!(default, 150 * 1024 + 65_537);
        assert!(default < 1 << 20);
        // A small message limit still leaves room for a rust-libp2p peer's send buffer.
        assert_eq!(websocket_max_message_bytes(1024), 128 * 1024 + 65_537);
        assert_eq!(
            websocket_max_message_bytes(4 << 20),
            (4 << 20) + 65_537,
            "a larger configured limit is honoured"
        );
    }

    #[test]
    fn every_accepted_mesh_degree_gives_bounds_gossipsub_takes() {
        assert_eq!(mesh_bounds(MESH_DEGREE), (4, 8, 3));
        for d in 1..=MAX_MESH_DEGREE {
            let (low, high, out) = mesh_bounds(d);
            assert!(low <= d && d <= high, "d = {d}");
            let built = gossipsub::ConfigBuilder::default()
                .mesh_n(d)
                .mesh_n_low(low)
                .mesh_n_high(high)
                .mesh_outbound_min(out)
                .build();
            assert!(built.is_ok(), "d = {d}: {:?}", built.err());
        }
    }
}
