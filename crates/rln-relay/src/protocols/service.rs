//! What every request-response protocol of the node shares: the accept loop (a bounded number
//! of streams served at once, each in its own task, a read timeout long enough for js-waku's
//! pre-opened streams) and a per-peer request rate limit.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::{PeerId, Stream, StreamProtocol};
use tokio::sync::{watch, Semaphore};

use crate::error::RelayError;
use crate::handle::NetworkHandle;

/// How long an inbound stream may stay silent before its request arrives. js-waku opens
/// streams ahead of use and may write on one minutes later, so this is generous; the number
/// of streams served at once bounds what silent streams cost.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// How long writing a response may take.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(20);

/// Streams of one protocol served at once; more are reset.
pub const MAX_STREAMS: usize = 1_024;

/// Registers `protocol` and serves each inbound stream with `serve` until shutdown.
pub(crate) fn accept<F, Fut>(
    net: &NetworkHandle,
    protocol: &'static str,
    max_streams: usize,
    mut shutdown: watch::Receiver<bool>,
    serve: F,
) -> Result<impl Future<Output = ()> + Send + 'static, RelayError>
where
    F: Fn(PeerId, Stream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut incoming = net
        .streams()
        .accept(StreamProtocol::new(protocol))
        .map_err(|_| RelayError::Network(format!("{protocol} is served twice")))?;
    let slots = Arc::new(Semaphore::new(max_streams.max(1)));
    Ok(async move {
        loop {
            let (peer, stream) = tokio::select! {
                next = incoming.next() => match next {
                    Some(s) => s,
                    None => return,
                },
                _ = shutdown.wait_for(|s| *s) => return,
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                tracing::debug!(%peer, protocol, "too many streams at once; this one is reset");
                continue;
            };
            let work = serve(peer, stream);
            tokio::spawn(async move {
                work.await;
                drop(permit);
            });
        }
    })
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
}
