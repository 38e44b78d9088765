//! The scaffold of every request-response protocol of the node (metadata, light push, filter
//! subscriptions, store; peer exchange next), server and client side, in the shape of
//! rust-libp2p's request-response codec but on raw streams (ARCHITECTURE.md, "Light
//! protocols", says why).
//!
//! A protocol is a [`Handler`]: how large and how slow its requests may be, how a frame
//! decodes, what a refused request is answered, and the handler itself. [`serve`] does the
//! rest, once for all of them:
//! 1. accept a stream if a slot is free: at most [`Limits::max_streams`] streams of the
//!    protocol at once, and within that at most [`Limits::per_peer_streams`] of one peer
//!    (more are reset at once, so a few peers cannot hold every slot);
//! 2. read one frame within the size limit and the timeout (a frame announced too large is
//!    answered without being read);
//! 3. decode it; apply the per-peer rate limit (the only place it is applied);
//! 4. run the handler, write the answer, count it in `rln_node_light_requests_total`.
//!
//! The client side is [`request`]: open a stream, write, read one bounded answer, in time.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::{AsyncWriteExt, StreamExt};
use libp2p::{PeerId, Stream, StreamProtocol};
use thiserror::Error;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use super::framing::{read_frame, write_frame, FrameError};
use crate::error::RelayError;
use crate::handle::NetworkHandle;
use crate::metrics::Metrics;

/// How long an inbound stream may stay silent before its request arrives. js-waku opens
/// streams ahead of use and may write on one minutes later, so this is generous; the stream
/// slots bound what silent streams cost.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// How long writing a response may take.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(20);

/// Streams of one protocol served at once; more are reset.
pub const MAX_STREAMS: usize = 1_024;

/// Streams of one protocol one peer may hold at once. js-waku keeps a few streams of a
/// protocol open ahead of use; 16 leaves it room and keeps 64 peers from holding all 1,024.
pub const MAX_STREAMS_PER_PEER: usize = 16;

/// An encoded answer and its status code (for the metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The encoded response.
    pub bytes: Vec<u8>,
    /// Its status code.
    pub code: u32,
}

/// How one request-response protocol reads, refuses and answers requests.
pub trait Handler: Send + Sync + 'static {
    /// A decoded request.
    type Request: Send + 'static;

    /// The protocol's label in the metrics.
    fn label(&self) -> &'static str;

    /// The largest request frame read.
    fn max_request_bytes(&self) -> usize;

    /// How long a peer may take to write its request.
    fn request_timeout(&self) -> Duration {
        REQUEST_TIMEOUT
    }

    /// Decodes a request, or gives the answer to one that does not decode.
    fn decode(&self, frame: &[u8]) -> Result<Self::Request, Answer>;

    /// The answer to a frame that could not be read (too large, say); `None` closes the
    /// stream without one (the peer went away or never wrote).
    fn unreadable(&self, e: &FrameError) -> Option<Answer>;

    /// The answer to a request of a peer over its rate limit.
    fn too_many(&self, request: &Self::Request) -> Answer;

    /// Answers one request of `peer`.
    fn handle(
        self: Arc<Self>,
        peer: PeerId,
        request: Self::Request,
    ) -> impl Future<Output = Answer> + Send;
}

/// The limits of one protocol's server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Streams served at once.
    pub max_streams: usize,
    /// Streams one peer may hold at once.
    pub per_peer_streams: usize,
    /// Requests per peer per minute; protocols that count as one (light push v2 and v3)
    /// share one limiter.
    pub rate: Arc<RateLimiter>,
}

impl Limits {
    /// The node's default stream limits with `requests_per_minute` per peer (0: none).
    pub fn per_minute(requests_per_minute: u32) -> Self {
        Self {
            max_streams: MAX_STREAMS,
            per_peer_streams: MAX_STREAMS_PER_PEER,
            rate: Arc::new(RateLimiter::new(requests_per_minute)),
        }
    }
}

/// Registers `protocol` and serves each inbound stream with `handler` until shutdown.
pub(crate) fn serve<H: Handler>(
    net: &NetworkHandle,
    protocol: &'static str,
    handler: Arc<H>,
    limits: Limits,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) -> Result<impl Future<Output = ()> + Send + 'static, RelayError> {
    let mut incoming = net
        .streams()
        .accept(StreamProtocol::new(protocol))
        .map_err(|_| RelayError::Network(format!("{protocol} is served twice")))?;
    let slots = Slots::new(limits.max_streams, limits.per_peer_streams);
    Ok(async move {
        loop {
            let (peer, stream) = tokio::select! {
                next = incoming.next() => match next {
                    Some(s) => s,
                    None => return,
                },
                _ = shutdown.wait_for(|s| *s) => return,
            };
            let Some(slot) = slots.take(peer) else {
                tracing::debug!(%peer, protocol, "no stream slot free; this one is reset");
                metrics.request(handler.label(), STREAM_REFUSED);
                continue;
            };
            let work = answer(
                Arc::clone(&handler),
                peer,
                stream,
                Arc::clone(&limits.rate),
                metrics.clone(),
            );
            tokio::spawn(async move {
                work.await;
                drop(slot);
            });
        }
    })
}

/// The `code` label of a stream reset for want of a slot.
pub const STREAM_REFUSED: u32 = 0;

/// Reads, decodes, rate-limits and answers one request.
async fn answer<H: Handler>(
    handler: Arc<H>,
    peer: PeerId,
    mut stream: Stream,
    rate: Arc<RateLimiter>,
    metrics: Metrics,
) {
    let read = read_frame(
        &mut stream,
        handler.max_request_bytes(),
        handler.request_timeout(),
    )
    .await;
    let answer = match read {
        Ok(frame) => match handler.decode(&frame) {
            Ok(request) if !rate.allow(peer) => handler.too_many(&request),
            Ok(request) => Arc::clone(&handler).handle(peer, request).await,
            Err(answer) => answer,
        },
        Err(e) => match handler.unreadable(&e) {
            Some(answer) => answer,
            None => {
                tracing::debug!(%peer, protocol = handler.label(), "request: {e}");
                return;
            }
        },
    };
    metrics.request(handler.label(), answer.code);
    if let Err(e) = write_frame(&mut stream, &answer.bytes, RESPONSE_TIMEOUT).await {
        // js-waku does not read every answer (a filter unsubscribe's, say).
        tracing::debug!(%peer, protocol = handler.label(), "response: {e}");
    }
    let _ = stream.close().await;
}

/// Stream slots: a node-wide semaphore and a count per peer.
#[derive(Debug, Clone)]
struct Slots {
    global: Arc<Semaphore>,
    per_peer: Arc<Mutex<HashMap<PeerId, usize>>>,
    per_peer_max: usize,
}

/// A stream's slot, given back when dropped.
#[derive(Debug)]
struct Slot {
    _global: OwnedSemaphorePermit,
    peer: PeerId,
    per_peer: Arc<Mutex<HashMap<PeerId, usize>>>,
}

impl Slots {
    fn new(max: usize, per_peer_max: usize) -> Self {
        Self {
            global: Arc::new(Semaphore::new(max.max(1))),
            per_peer: Arc::default(),
            per_peer_max: per_peer_max.max(1),
        }
    }

    /// A slot for a stream of `peer`, if both its share and the node-wide pool have one.
    fn take(&self, peer: PeerId) -> Option<Slot> {
        let mut counts = self.per_peer.lock().unwrap_or_else(PoisonError::into_inner);
        let held = counts.get(&peer).copied().unwrap_or(0);
        if held >= self.per_peer_max {
            return None;
        }
        let permit = Arc::clone(&self.global).try_acquire_owned().ok()?;
        counts.insert(peer, held + 1);
        Some(Slot {
            _global: permit,
            peer,
            per_peer: Arc::clone(&self.per_peer),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.per_peer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = counts.get_mut(&self.peer) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                counts.remove(&self.peer);
            }
        }
    }
}

/// At most `per_minute` requests per peer in any fixed minute.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    windows: Mutex<HashMap<PeerId, (Instant, u32)>>,
}

/// Peers tracked before old windows are swept.
const SWEEP_AT: usize = 4_096;

impl RateLimiter {
    /// A limiter allowing `per_minute` requests per peer (0: no limit).
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// The limit.
    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// Counts a request of `peer`; `false` if it is over the limit.
    pub fn allow(&self, peer: PeerId) -> bool {
        self.allow_at(peer, Instant::now())
    }

    fn allow_at(&self, peer: PeerId, now: Instant) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let minute = Duration::from_secs(60);
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.len() >= SWEEP_AT {
            windows.retain(|_, (start, _)| now.duration_since(*start) < minute);
        }
        let (start, count) = windows.entry(peer).or_insert((now, 0));
        if now.duration_since(*start) >= minute {
            *start = now;
            *count = 0;
        }
        if *count >= self.per_minute {
            return false;
        }
        *count += 1;
        true
    }
}

/// Why a request to another node got no answer.
#[derive(Debug, Error)]
pub enum ExchangeError {
    /// No stream of the protocol could be opened (not connected, protocol not served).
    #[error("opening a stream: {0}")]
    Open(String),
    /// Writing the request failed.
    #[error("writing the request: {0}")]
    Write(FrameError),
    /// Reading the answer failed (closed, too large, too slow).
    #[error("reading the answer: {0}")]
    Read(FrameError),
}

/// Opens a stream of `protocol` to `peer`, writes `request` and reads one answer of at most
/// `max_answer` bytes, each step within `timeout`.
pub async fn request(
    control: &mut libp2p_stream::Control,
    peer: PeerId,
    protocol: &'static str,
    request: &[u8],
    max_answer: usize,
    timeout: Duration,
) -> Result<Vec<u8>, ExchangeError> {
    let mut stream = tokio::time::timeout(
        timeout,
        control.open_stream(peer, StreamProtocol::new(protocol)),
    )
    .await
    .map_err(|_| ExchangeError::Open(format!("timed out after {timeout:?}")))?
    .map_err(|e| ExchangeError::Open(e.to_string()))?;
    exchange(&mut stream, request, max_answer, timeout).await
}

/// Writes `request` on an open stream and reads one answer of at most `max_answer` bytes.
pub async fn exchange(
    stream: &mut Stream,
    request: &[u8],
    max_answer: usize,
    timeout: Duration,
) -> Result<Vec<u8>, ExchangeError> {
    write_frame(stream, request, timeout)
        .await
        .map_err(ExchangeError::Write)?;
    let answer = read_frame(stream, max_answer, timeout)
        .await
        .map_err(ExchangeError::Read)?;
    let _ = stream.close().await;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_is_per_peer_and_per_minute() {
        let limiter = RateLimiter::new(3);
        let (a, b) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        assert!((0..3).all(|_| limiter.allow_at(a, t0)));
        assert!(!limiter.allow_at(a, t0 + Duration::from_secs(59)));
        assert!(limiter.allow_at(b, t0));
        assert!(limiter.allow_at(a, t0 + Duration::from_secs(61)));
        let open = RateLimiter::new(0);
        assert!((0..1000).all(|_| open.allow_at(a, t0)));
    }

    #[test]
    fn a_peer_holds_at_most_its_share_of_the_slots_and_gets_them_back() {
        let slots = Slots::new(5, 2);
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let a1 = slots.take(a).unwrap();
        let _a2 = slots.take(a).unwrap();
        assert!(slots.take(a).is_none(), "a's share is 2");
        let _b1 = slots.take(b).unwrap();
        let _b2 = slots.take(b).unwrap();
        let _c1 = slots.take(c).unwrap();
        assert!(slots.take(c).is_none(), "the node-wide pool of 5 is used");
        drop(a1);
        let _c2 = slots.take(c).expect("a slot given back is free again");
        // A refused peer's count is not left behind.
        let d = PeerId::random();
        assert!(slots.take(d).is_none());
        let counts = slots.per_peer.lock().unwrap();
        assert_eq!(counts.get(&a), Some(&1));
        assert!(counts.values().all(|&n| n > 0 && n <= 2), "{counts:?}");
    }
}
