//! What the REST API, the binaries and tests hold of a running node: [`NodeHandle`] (the
//! state, the network, the outbox, metrics, health) and the reports it gives.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::registry::Registry;
use rln_chain::SyncStatus;
use rln_core::fr_to_hex;
use rln_db::{MessageArchive, RlnDb, SpamEvidence};
use rln_relay::hub::{Delivered, Hub};
use rln_relay::metrics::Metrics;

use rln_relay::protocols::store::Store;

use rln_relay::{
    MessageIdChoice, Multiaddr, NetworkHandle, Outbox, PeerId, PeerSummary, Proof, Publication,
    Published, Publisher, Refusal, RelayError, WakuMessage,
};

use tokio::sync::{broadcast, watch};

use crate::config::NodeConfig;
use crate::error::NodeError;

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

pub(crate) struct Shared {
    pub(crate) config: NodeConfig,
    pub(crate) db: Arc<RlnDb>,
    pub(crate) archive: Arc<dyn MessageArchive>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) metrics: Metrics,
    pub(crate) registry: Mutex<Registry>,
    pub(crate) net: NetworkHandle,
    pub(crate) sync_status: watch::Receiver<SyncStatus>,
    pub(crate) keys: KeysInfo,
    pub(crate) store: Option<Arc<Store>>,
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
    pub(crate) fn new(shared: Shared) -> Self {
        Self {
            shared: Arc::new(shared),
        }
    }

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
        self.shared.outbox.publisher()
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

    /// Proves, validates and publishes `message` on `topic`, and delivers it locally (REST
    /// caches, archive, filter subscribers); returns the message as sent and its hash.
    pub async fn publish(&self, topic: &str, message: WakuMessage) -> Result<Published, Refusal> {
        self.publish_with(topic, message, MessageIdChoice::Next)
            .await
    }

    /// [`Self::publish`] with an explicit message-id choice (see [`MessageIdChoice`]).
    pub async fn publish_with(
        &self,
        topic: &str,
        message: WakuMessage,
        choice: MessageIdChoice,
    ) -> Result<Published, Refusal> {
        self.shared
            .outbox
            .publish(Publication {
                topic: topic.to_string(),
                message,
                proof: Proof::Own(choice),
            })
            .await
    }

    /// The node's one entry point for publishing (REST, light push and the methods above).
    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.shared.outbox
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
