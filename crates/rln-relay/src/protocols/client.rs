//! A light client of the node's request-response protocols, in Rust: a swarm with only the
//! transports and raw streams, which dials a service node and speaks metadata, light push,
//! filter and store to it. Tools and tests use it; the node itself never does.

use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{identity::Keypair, noise, tcp, yamux, Multiaddr, PeerId, Stream, StreamProtocol};
use tokio::sync::oneshot;

use super::framing::{read_frame, FrameError};
use super::reqres;
use super::{filter, lightpush, metadata, store};
use crate::error::RelayError;
use crate::handle::peer_of;
use crate::wire::filter::{FilterRequest, FilterResponse};
use crate::wire::lightpush::{decode_v2_response, encode_v2, encode_v3, LightPushResponse};
use crate::wire::metadata::Metadata;
use crate::wire::store::{StoreRequest, StoreResponse};
use crate::wire::{WakuMessage, DEFAULT_MAX_MESSAGE_BYTES};

/// How long the client waits for a connection or an answer.
const TIMEOUT: Duration = Duration::from_secs(30);

/// How long an idle client connection stays open.
const IDLE: Duration = Duration::from_secs(600);

/// The push streams a node opens to a client, one item each.
pub type PushStreams = libp2p_stream::IncomingStreams;

/// The stream muxer a client offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Muxer {
    /// Mplex, the only one js-waku has.
    Mplex,
    /// Yamux, with per-stream flow control (TCP only).
    Yamux,
}

/// A light client connected to one service node.
pub struct LightClient {
    control: libp2p_stream::Control,
    peer: PeerId,
    local: PeerId,
    _stop: oneshot::Sender<()>,
}

impl std::fmt::Debug for LightClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LightClient")
            .field("local", &self.local)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

fn err(what: &str, e: impl std::fmt::Display) -> RelayError {
    RelayError::Network(format!("{what}: {e}"))
}

impl LightClient {
    /// Dials `addr` (with `/p2p/<peer id>`, over TCP or WebSocket, muxed with mplex, as js-waku
    /// is) and waits until the connection is up. The swarm runs on a task until the client is
    /// dropped.
    pub async fn connect(addr: &Multiaddr) -> Result<Self, RelayError> {
        Self::connect_with(addr, Muxer::Mplex).await
    }

    /// [`LightClient::connect`] with the muxer to use over TCP.
    pub async fn connect_with(addr: &Multiaddr, muxer: Muxer) -> Result<Self, RelayError> {
        let peer = peer_of(addr)
            .ok_or_else(|| RelayError::Config(format!("{addr} has no /p2p/<peer id> part")))?;
        let key = Keypair::generate_ed25519();
        let local = key.public().to_peer_id();
        let builder = libp2p::SwarmBuilder::with_existing_identity(key).with_tokio();
        let tcp = tcp::Config::default().nodelay(true);
        let mut swarm = match muxer {
            Muxer::Mplex => builder
                .with_tcp(tcp, noise::Config::new, libp2p_mplex::Config::new)
                .map_err(|e| err("transport", e))?
                .with_websocket(noise::Config::new, libp2p_mplex::Config::new)
                .await
                .map_err(|e| err("websocket transport", e))?
                .with_behaviour(|_| libp2p_stream::Behaviour::new())
                .map_err(|e| err("behaviour", e))?
                .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE))
                .build(),
            Muxer::Yamux => builder
                .with_tcp(tcp, noise::Config::new, yamux::Config::default)
                .map_err(|e| err("transport", e))?
                .with_behaviour(|_| libp2p_stream::Behaviour::new())
                .map_err(|e| err("behaviour", e))?
                .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE))
                .build(),
        };
        let control = swarm.behaviour().new_control();
        swarm.dial(addr.clone()).map_err(|e| err("dial", e))?;
        let connected = tokio::time::timeout(TIMEOUT, async {
            loop {
                match swarm.select_next_some().await {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == peer => {
                        return Ok(())
                    }
                    SwarmEvent::OutgoingConnectionError { error, .. } => {
                        return Err(err("connecting", error))
                    }
                    _ => {}
                }
            }
        })
        .await
        .map_err(|_| err("connecting", "timed out"))?;
        connected?;
        let (stop, mut stopped) = oneshot::channel();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    _ = swarm.select_next_some() => {}
                }
            }
        });
        Ok(Self {
            control,
            peer,
            local,
            _stop: stop,
        })
    }

    /// This client's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.local
    }

    /// Opens a stream of `protocol` to the service node.
    pub async fn open(&self, protocol: &'static str) -> Result<Stream, RelayError> {
        let mut control = self.control.clone();
        tokio::time::timeout(
            TIMEOUT,
            control.open_stream(self.peer, StreamProtocol::new(protocol)),
        )
        .await
        .map_err(|_| err(protocol, "timed out opening a stream"))?
        .map_err(|e| err(protocol, e))
    }

    /// Writes `request` on a new stream of `protocol` and reads one answer (of at most
    /// 1 MiB).
    pub async fn request(
        &self,
        protocol: &'static str,
        request: &[u8],
    ) -> Result<Vec<u8>, RelayError> {
        self.request_bounded(protocol, request, 1 << 20).await
    }

    async fn request_bounded(
        &self,
        protocol: &'static str,
        request: &[u8],
        max_answer: usize,
    ) -> Result<Vec<u8>, RelayError> {
        let mut control = self.control.clone();
        reqres::request(
            &mut control,
            self.peer,
            protocol,
            request,
            max_answer,
            TIMEOUT,
        )
        .await
        .map_err(|e| err(protocol, e))
    }

    /// Writes `request` on `stream` and reads one answer (of at most 1 MiB).
    pub async fn exchange(stream: &mut Stream, request: &[u8]) -> Result<Vec<u8>, RelayError> {
        reqres::exchange(stream, request, 1 << 20, TIMEOUT)
            .await
            .map_err(|e| err("exchange", e))
    }

    /// The node's metadata (sending `ours`).
    pub async fn metadata(&self, ours: &Metadata) -> Result<Metadata, RelayError> {
        let answer = self.request(metadata::PROTOCOL, &ours.encode()).await?;
        Metadata::decode(&answer).map_err(|e| err("metadata", e))
    }

    /// Light-pushes `message` with v3.
    pub async fn lightpush(
        &self,
        request_id: &str,
        pubsub_topic: &str,
        message: &WakuMessage,
    ) -> Result<LightPushResponse, RelayError> {
        let request = encode_v3(request_id, Some(pubsub_topic), message);
        let answer = self.request(lightpush::PROTOCOL_V3, &request).await?;
        LightPushResponse::decode(&answer).map_err(|e| err("light push", e))
    }

    /// Light-pushes `message` with v2: `(is_success, info)`.
    pub async fn lightpush_v2(
        &self,
        request_id: &str,
        pubsub_topic: &str,
        message: &WakuMessage,
    ) -> Result<(bool, String), RelayError> {
        let request = encode_v2(request_id, pubsub_topic, message);
        let answer = self.request(lightpush::PROTOCOL_V2, &request).await?;
        let (_, ok, info) = decode_v2_response(&answer).map_err(|e| err("light push", e))?;
        Ok((ok, info))
    }

    /// Sends one filter request.
    pub async fn filter(&self, request: &FilterRequest) -> Result<FilterResponse, RelayError> {
        let answer = self
            .request(filter::PROTOCOL_SUBSCRIBE, &request.encode())
            .await?;
        FilterResponse::decode(&answer).map_err(|e| err("filter", e))
    }

    /// Sends one store query. The answer may hold a full page of the largest messages.
    pub async fn store(&self, request: &StoreRequest) -> Result<StoreResponse, RelayError> {
        let answer = self
            .request_bounded(store::PROTOCOL, &request.encode(), store::MAX_ANSWER_BYTES)
            .await?;
        StoreResponse::decode(&answer, DEFAULT_MAX_MESSAGE_BYTES).map_err(|e| err("store", e))
    }

    /// The filter pushes the node opens to this client: each item is one push stream.
    pub fn pushes(&self) -> Result<PushStreams, RelayError> {
        self.control
            .clone()
            .accept(StreamProtocol::new(filter::PROTOCOL_PUSH))
            .map_err(|e| err("filter push", e))
    }
}

/// Reads the next push frame of a push stream.
pub async fn next_push(
    stream: &mut Stream,
    timeout: Duration,
) -> Result<(String, WakuMessage), FrameError> {
    let frame = read_frame(stream, 1 << 20, timeout).await?;
    crate::wire::filter::decode_push(&frame, 1 << 20)
        .map_err(|e| FrameError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// Waits for the next push stream the node opens (within `timeout`) and reads its first push.
pub async fn first_push(
    pushes: &mut PushStreams,
    timeout: Duration,
) -> Result<(String, WakuMessage), RelayError> {
    let (_, mut stream) = tokio::time::timeout(timeout, pushes.next())
        .await
        .map_err(|_| err("filter push", "no push stream opened in time"))?
        .ok_or_else(|| err("filter push", "the client stopped"))?;
    next_push(&mut stream, timeout)
        .await
        .map_err(|e| err("filter push", e))
}
