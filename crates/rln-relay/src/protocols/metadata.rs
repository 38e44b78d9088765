//! `/vac/waku/metadata/1.0.0`: each side tells the other its cluster id and shards. The node
//! answers every request and asks each newly connected peer; a peer of another cluster is
//! disconnected (it could not use or relay this node's shards), as nwaku does. js-waku
//! routes a content topic only to peers whose reported shards contain it, so the answer must
//! list every shard this node relays.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use tokio::sync::watch;

use super::framing::FrameError;
use super::reqres::{self, Answer, Handler, Limits};
use crate::error::RelayError;
use crate::handle::NetworkHandle;
use crate::metrics::Metrics;
use crate::wire::metadata::Metadata;

/// The protocol id.
pub const PROTOCOL: &str = "/vac/waku/metadata/1.0.0";

/// Largest metadata message read (a cluster id and up to 1,024 shards).
const MAX_BYTES: usize = 8 * 1024;

/// Metadata requests are written at once; a peer that does not is dropped quickly.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Serves metadata requests with `ours` until shutdown.
pub fn serve(
    net: &NetworkHandle,
    ours: Metadata,
    metrics: Metrics,
    shutdown: watch::Receiver<bool>,
) -> Result<impl Future<Output = ()> + Send + 'static, RelayError> {
    // No rate limit: the answer is a few bytes, the same for everybody.
    let handler = Arc::new(Ours(ours));
    reqres::serve(
        net,
        PROTOCOL,
        handler,
        Limits::per_minute(0),
        metrics,
        shutdown,
    )
}

/// The server side: answers with the node's metadata whatever the request says (the peer's
/// own view comes from [`ask`]).
struct Ours(Metadata);

impl Handler for Ours {
    type Request = ();

    fn label(&self) -> &'static str {
        "metadata"
    }

    fn max_request_bytes(&self) -> usize {
        MAX_BYTES
    }

    fn request_timeout(&self) -> Duration {
        TIMEOUT
    }

    fn decode(&self, _frame: &[u8]) -> Result<(), Answer> {
        Ok(())
    }

    fn unreadable(&self, _e: &FrameError) -> Option<Answer> {
        None
    }

    fn too_many(&self, _request: &()) -> Answer {
        self.answer()
    }

    async fn handle(self: Arc<Self>, _peer: PeerId, _request: ()) -> Answer {
        self.answer()
    }
}

impl Ours {
    fn answer(&self) -> Answer {
        Answer {
            bytes: self.0.encode(),
            code: 200,
        }
    }
}

/// Asks `peer` for its metadata (sending ours) and disconnects a peer of another cluster. A
/// peer without the protocol (an older rln-node, a relay-only client) is left alone.
pub async fn ask(net: NetworkHandle, ours: Metadata, peer: PeerId) {
    match exchange(&net, &ours, peer).await {
        Ok(theirs) => {
            let mismatch = matches!(
                (ours.cluster_id, theirs.cluster_id),
                (Some(a), Some(b)) if a != b
            );
            if mismatch {
                tracing::info!(
                    %peer,
                    theirs = ?theirs.cluster_id,
                    ours = ?ours.cluster_id,
                    "peer is in another cluster; disconnecting"
                );
                let _ = net.disconnect(peer).await;
            }
        }
        Err(e) => tracing::debug!(%peer, "metadata: {e}"),
    }
}

async fn exchange(net: &NetworkHandle, ours: &Metadata, peer: PeerId) -> Result<Metadata, String> {
    let mut control = net.streams();
    let bytes = reqres::request(
        &mut control,
        peer,
        PROTOCOL,
        &ours.encode(),
        MAX_BYTES,
        TIMEOUT,
    )
    .await
    .map_err(|e| e.to_string())?;
    Metadata::decode(&bytes).map_err(|e| e.to_string())
}

/// The shards of `cluster` among static-sharding pubsub topics (`/waku/2/rs/<cluster>/<shard>`).
/// Topics of another form are skipped; a topic of another cluster is an error.
pub fn shards_of(cluster: u32, topics: &[String]) -> Result<Vec<u32>, String> {
    let mut shards = Vec::new();
    for topic in topics {
        let Some(rest) = topic.strip_prefix("/waku/2/rs/") else {
            continue;
        };
        let parsed = rest
            .split_once('/')
            .and_then(|(c, s)| Some((c.parse::<u32>().ok()?, s.parse::<u32>().ok()?)));
        match parsed {
            Some((c, s)) if c == cluster => shards.push(s),
            Some((c, _)) => {
                return Err(format!(
                    "pubsub topic {topic} is in cluster {c}, but the node's cluster is {cluster}"
                ))
            }
            None => {
                return Err(format!(
                    "pubsub topic {topic} is not /waku/2/rs/<cluster>/<shard>"
                ))
            }
        }
    }
    shards.sort_unstable();
    shards.dedup();
    Ok(shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_come_from_static_sharding_topics() {
        let topics = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            shards_of(1, &topics(&["/waku/2/rs/1/3", "/waku/2/rs/1/0", "/other"])),
            Ok(vec![0, 3])
        );
        assert!(shards_of(1, &topics(&["/waku/2/rs/2/0"]))
            .unwrap_err()
            .contains("cluster 2"));
        assert!(shards_of(1, &topics(&["/waku/2/rs/1/x"])).is_err());
    }
}
