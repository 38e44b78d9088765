//! `/vac/waku/metadata/1.0.0`: each side tells the other its cluster id and shards. The node
//! answers every request and asks each newly connected peer; a peer of another cluster is
//! disconnected (it could not use or relay this node's shards), as nwaku does. js-waku
//! routes a content topic only to peers whose reported shards contain it, so the answer must
//! list every shard this node relays.

use std::future::Future;

use futures::AsyncWriteExt;
use libp2p::{PeerId, Stream, StreamProtocol};
use tokio::sync::watch;

use super::framing::{read_frame, write_frame};
use super::service::{accept, MAX_STREAMS, RESPONSE_TIMEOUT};
use crate::error::RelayError;
use crate::handle::NetworkHandle;
use crate::wire::metadata::Metadata;

/// The protocol id.
pub const PROTOCOL: &str = "/vac/waku/metadata/1.0.0";

/// Largest metadata message read (a cluster id and up to 1,024 shards).
const MAX_BYTES: usize = 8 * 1024;

/// Metadata requests are written at once; a peer that does not is dropped quickly.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves metadata requests with `ours` until shutdown.
pub fn serve(
    net: &NetworkHandle,
    ours: Metadata,
    shutdown: watch::Receiver<bool>,
) -> Result<impl Future<Output = ()> + Send + 'static, RelayError> {
    accept(net, PROTOCOL, MAX_STREAMS, shutdown, move |peer, stream| {
        answer(ours.clone(), peer, stream)
    })
}

/// Answers with `ours` whatever the request says: the peer's own view comes from [`ask`].
async fn answer(ours: Metadata, peer: PeerId, mut stream: Stream) {
    if let Err(e) = read_frame(&mut stream, MAX_BYTES, TIMEOUT).await {
        tracing::debug!(%peer, "metadata request: {e}");
        return;
    }
    if let Err(e) = write_frame(&mut stream, &ours.encode(), RESPONSE_TIMEOUT).await {
        tracing::debug!(%peer, "metadata response: {e}");
    }
    let _ = stream.close().await;
}

/// Asks `peer` for its metadata (sending ours) and disconnects a peer of another cluster. A peer without the protocol (an older rln-node, a relay-only client) is
/// left alone.
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
    let mut stream = net
        .streams()
        .open_stream(peer, StreamProtocol::new(PROTOCOL))
        .await
        .map_err(|e| e.to_string())?;
    write_frame(&mut stream, &ours.encode(), TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    let bytes = read_frame(&mut stream, MAX_BYTES, TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    let _ = stream.close().await;
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
