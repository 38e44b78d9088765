//! How the rest of a node talks to the swarm task: commands over a bounded channel and the
//! state the task publishes (listen addresses, connected peers). Cheap to clone.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

use crate::error::RelayError;

/// A peer as the REST API and tests see it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PeerSummary {
    /// Its peer id.
    pub peer_id: String,
    /// Its gossipsub score (none before scoring starts).
    pub score: Option<f64>,
    /// Topics it subscribes to.
    pub topics: Vec<String>,
}

/// What the rest of the node asks of the swarm task.
#[derive(Debug)]
pub enum Command {
    /// Publish encoded message bytes on a topic.
    Publish {
        /// The pubsub topic.
        topic: String,
        /// The encoded `WakuMessage`.
        data: Vec<u8>,
        /// Where the result goes: the number of peers on the topic it went to.
        reply: oneshot::Sender<Result<usize, RelayError>>,
    },
    /// Join a topic.
    Subscribe {
        /// The pubsub topic.
        topic: String,
    },
    /// Leave a topic.
    Unsubscribe {
        /// The pubsub topic.
        topic: String,
    },
    /// Connect to a peer.
    Dial {
        /// Its address (with `/p2p/…` to keep it as a static peer).
        addr: Multiaddr,
    },
    /// Close every connection to a peer.
    Disconnect {
        /// The peer.
        peer: PeerId,
    },
    /// The connected peers with their scores.
    Peers {
        /// Where the answer goes.
        reply: oneshot::Sender<Vec<PeerSummary>>,
    },
}

/// State the swarm task publishes for everybody else.
#[derive(Debug, Default)]
pub struct NetState {
    /// Addresses the node listens on.
    pub listen: Vec<Multiaddr>,
    /// Connected peers.
    pub connected: HashSet<PeerId>,
    /// Listeners that have not reported an address yet.
    pub pending_listeners: HashSet<ListenerId>,
    /// Why listeners failed, one sentence each.
    pub listen_failures: Vec<String>,
}

/// Shared view of [`NetState`].
pub type SharedNet = Arc<Mutex<NetState>>;

/// Locks the shared state; a poisoned lock only means a panic elsewhere, and the state is
/// plain data that is whole after every update.
pub(crate) fn lock(state: &SharedNet) -> MutexGuard<'_, NetState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The peer id in an address's `/p2p/…` part.
pub fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

/// The node's side of the swarm task.
#[derive(Clone)]
pub struct NetworkHandle {
    commands: mpsc::Sender<Command>,
    state: SharedNet,
    peer_id: PeerId,
    max_message_bytes: usize,
    streams: libp2p_stream::Control,
}

impl std::fmt::Debug for NetworkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkHandle")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

impl NetworkHandle {
    pub(crate) fn new(
        commands: mpsc::Sender<Command>,
        state: SharedNet,
        peer_id: PeerId,
        max_message_bytes: usize,
        streams: libp2p_stream::Control,
    ) -> Self {
        Self {
            commands,
            state,
            peer_id,
            max_message_bytes,
            streams,
        }
    }

    /// Opens and accepts streams of the request-response protocols (metadata, light push,
    /// filter), which run outside the swarm task.
    pub fn streams(&self) -> libp2p_stream::Control {
        self.streams.clone()
    }

    /// Whether a peer is connected.
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        lock(&self.state).connected.contains(peer)
    }

    /// Closes the connections to a peer.
    pub async fn disconnect(&self, peer: PeerId) -> Result<(), RelayError> {
        self.send(Command::Disconnect { peer }).await
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The largest message the network relays, in bytes.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// Full addresses (`…/p2p/<peer id>`) the node listens on.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        lock(&self.state)
            .listen
            .iter()
            .map(|a| a.clone().with(Protocol::P2p(self.peer_id)))
            .collect()
    }

    /// Waits until every listen address has reported where it listens, up to `timeout`.
    /// `Err` carries why listening failed, or that the listeners are still pending.
    pub async fn wait_listening(&self, timeout: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            {
                let state = lock(&self.state);
                if !state.listen_failures.is_empty() {
                    return Err(state.listen_failures.join("; "));
                }
                if state.pending_listeners.is_empty() {
                    return Ok(());
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(format!(
                        "{} listener(s) gave no address within {} s",
                        state.pending_listeners.len(),
                        timeout.as_secs()
                    ));
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// How many peers are connected.
    pub fn connected_peers(&self) -> usize {
        lock(&self.state).connected.len()
    }

    /// Publishes bytes as they are, without proof or checks; returns the number of peers
    /// on the topic.
    pub async fn publish_bytes(&self, topic: &str, data: Vec<u8>) -> Result<usize, RelayError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Publish {
            topic: topic.to_string(),
            data,
            reply,
        })
        .await?;
        rx.await.map_err(|_| RelayError::Stopped)?
    }

    /// The connected peers and their scores (empty once the swarm task stopped).
    pub async fn peers(&self) -> Vec<PeerSummary> {
        let (reply, rx) = oneshot::channel();
        if self.send(Command::Peers { reply }).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Whether a connected peer relays `topic`.
    pub async fn has_peer_on(&self, topic: &str) -> bool {
        self.peers()
            .await
            .iter()
            .any(|p| p.topics.iter().any(|t| t == topic))
    }

    /// Joins a pubsub topic.
    pub async fn subscribe(&self, topic: &str) -> Result<(), RelayError> {
        self.send(Command::Subscribe {
            topic: topic.to_string(),
        })
        .await
    }

    /// Leaves a pubsub topic.
    pub async fn unsubscribe(&self, topic: &str) -> Result<(), RelayError> {
        self.send(Command::Unsubscribe {
            topic: topic.to_string(),
        })
        .await
    }

    /// Connects to a peer (returns once the dial is under way).
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), RelayError> {
        self.send(Command::Dial { addr }).await
    }

    /// Dials `addr` (with `/p2p/<peer id>`) unless already connected, and waits until the
    /// connection is up; returns the peer.
    pub async fn connect(
        &self,
        addr: &Multiaddr,
        timeout: std::time::Duration,
    ) -> Result<PeerId, RelayError> {
        let peer = peer_of(addr)
            .ok_or_else(|| RelayError::Config(format!("{addr} has no /p2p/<peer id> part")))?;
        if self.is_connected(&peer) {
            return Ok(peer);
        }
        self.dial(addr.clone()).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.is_connected(&peer) {
            if tokio::time::Instant::now() >= deadline {
                return Err(RelayError::Network(format!(
                    "could not connect to {addr} within {} s",
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Ok(peer)
    }

    async fn send(&self, command: Command) -> Result<(), RelayError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| RelayError::Stopped)
    }
}
