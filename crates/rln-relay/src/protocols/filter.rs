//! Filter v2: light clients subscribe on `/vac/waku/filter-subscribe/2.0.0-beta1` to
//! (pubsub topic, content topic) criteria and the node pushes them matching messages on
//! `/vac/waku/filter-push/2.0.0-beta1`.
//!
//! Only messages this node delivers are pushed: relay traffic that passed RLN validation and
//! messages it published itself (see [`crate::hub`]), so spam never reaches a light client.
//! What a subscriber costs is bounded:
//! - requests: content topics per request, criteria per peer, subscribed peers, requests per
//!   minute, each refused with its code (400, 503, 429);
//! - a subscription expires unless a request (js-waku pings every minute) refreshes it;
//! - pushes go through one stream per subscriber, opened once and reused, fed by a bounded
//!   queue: a subscriber that does not read fills its queue, its pushes are dropped, and after
//!   a queue's worth of drops in a row it is unsubscribed; a stream that fails twice in a row
//!   unsubscribes it too;
//! - a message (by its deterministic hash) is pushed to a subscriber at most once in two
//!   minutes.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use futures::AsyncWriteExt;
use libp2p::{PeerId, Stream, StreamProtocol};
use tokio::sync::{broadcast, mpsc, watch};

use super::framing::{write_frame, FrameError};
use super::reqres::{self, Answer, Handler, Limits};
use crate::error::RelayError;
use crate::handle::NetworkHandle;
use crate::hub::{Delivered, Hub};
use crate::metrics::{Metrics, ResultLabel};
use crate::wire::filter::{encode_push, FilterRequest, FilterRequestType, FilterResponse};

/// The protocol clients subscribe on.
pub const PROTOCOL_SUBSCRIBE: &str = "/vac/waku/filter-subscribe/2.0.0-beta1";
/// The protocol messages are pushed on.
pub const PROTOCOL_PUSH: &str = "/vac/waku/filter-push/2.0.0-beta1";

/// Status codes of filter.
pub mod code {
    /// Done.
    pub const OK: u32 = 200;
    /// Malformed, incomplete or over a per-request or per-peer limit.
    pub const BAD_REQUEST: u32 = 400;
    /// No subscription to ping or remove.
    pub const NOT_FOUND: u32 = 404;
    /// Too many requests from this peer.
    pub const TOO_MANY_REQUESTS: u32 = 429;
    /// The node has as many subscribers as it serves.
    pub const SERVICE_UNAVAILABLE: u32 = 503;
}

/// How long a pushed message's hash is remembered per subscriber.
const NO_REPEAT: Duration = Duration::from_secs(120);

/// Hashes remembered per subscriber before the ones older than [`NO_REPEAT`] are swept.
const RECENT_SWEEP_AT: usize = 1_024;

/// Largest subscribe request read (100 content topics of a few hundred bytes).
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Limits of the service.
#[derive(Debug, Clone)]
pub struct FilterSettings {
    /// The pubsub topics the node relays (criteria on others are refused).
    pub topics: Vec<String>,
    /// Content topics in one request.
    pub max_content_topics_per_request: usize,
    /// Criteria one peer may hold.
    pub max_criteria_per_peer: usize,
    /// Peers that may hold subscriptions at once.
    pub max_peers: usize,
    /// A subscription not refreshed for this long is dropped.
    pub subscription_ttl: Duration,
    /// Requests per peer per minute (0: no limit).
    pub requests_per_minute: u32,
    /// Pushes waiting per subscriber.
    pub push_queue: usize,
    /// Longest wait to open the push stream or write one push.
    pub push_timeout: Duration,
}

struct Subscriber {
    /// Tells this subscription from a later one of the same peer.
    id: u64,
    criteria: HashSet<(String, String)>,
    expires: Instant,
    queue: mpsc::Sender<Arc<Vec<u8>>>,
    /// Pushes dropped in a row because the queue was full.
    dropped: usize,
    recent: HashMap<[u8; 32], Instant>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    subscribers: HashMap<PeerId, Subscriber>,
    /// Criterion → subscribed peers.
    index: HashMap<(String, String), HashSet<PeerId>>,
}

impl State {
    fn remove(&mut self, peer: &PeerId) -> bool {
        let Some(sub) = self.subscribers.remove(peer) else {
            return false;
        };
        for criterion in &sub.criteria {
            self.unindex(criterion, peer);
        }
        true
    }

    fn unindex(&mut self, criterion: &(String, String), peer: &PeerId) {
        if let Some(peers) = self.index.get_mut(criterion) {
            peers.remove(peer);
            if peers.is_empty() {
                self.index.remove(criterion);
            }
        }
    }

    fn criteria(&self) -> usize {
        self.subscribers.values().map(|s| s.criteria.len()).sum()
    }
}

/// The filter service.
pub struct Filter {
    settings: FilterSettings,
    net: NetworkHandle,
    state: Mutex<State>,
    metrics: Metrics,
    /// Itself, for the push writers (which unsubscribe peers whose stream fails).
    this: Weak<Filter>,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn response(request_id: &str, code: u32, desc: Option<String>) -> FilterResponse {
    FilterResponse {
        request_id: request_id.to_string(),
        status_code: code,
        status_desc: desc,
    }
}

impl Filter {
    /// The service.
    pub fn new(settings: FilterSettings, net: NetworkHandle, metrics: Metrics) -> Arc<Self> {
        Arc::new_cyclic(|this| Self {
            settings,
            net,
            state: Mutex::new(State::default()),
            metrics,
            this: this.clone(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Serves subscriptions, pushes what `hub` delivers and expires subscriptions, until
    /// shutdown.
    pub fn serve(
        self: &Arc<Self>,
        hub: &Hub,
        shutdown: watch::Receiver<bool>,
    ) -> Result<impl Future<Output = ()> + Send + 'static, RelayError> {
        let requests = reqres::serve(
            &self.net,
            PROTOCOL_SUBSCRIBE,
            Arc::clone(self),
            Limits::per_minute(self.settings.requests_per_minute),
            self.metrics.clone(),
            shutdown.clone(),
        )?;
        let pushes = Arc::clone(self).fan_out(hub.subscribe(), shutdown.clone());
        let expiry = Arc::clone(self).expire(shutdown);
        Ok(async move {
            tokio::join!(requests, pushes, expiry);
        })
    }

    /// Applies one request of `peer` (the rate limit is the scaffold's, applied before).
    pub fn apply(&self, peer: PeerId, request: &FilterRequest) -> FilterResponse {
        let id = request.request_id.as_str();
        let result = match request.kind {
            FilterRequestType::Ping => self.ping(peer),
            FilterRequestType::Subscribe => self.subscribe(peer, request),
            FilterRequestType::Unsubscribe => self.unsubscribe(peer, request),
            FilterRequestType::UnsubscribeAll => {
                if self.state().remove(&peer) {
                    Ok(())
                } else {
                    Err((code::NOT_FOUND, "no subscription".to_string()))
                }
            }
        };
        self.update_gauges();
        match result {
            Ok(()) => response(id, code::OK, None),
            Err((code, desc)) => response(id, code, Some(desc)),
        }
    }

    fn ping(&self, peer: PeerId) -> Result<(), (u32, String)> {
        match self.state().subscribers.get_mut(&peer) {
            Some(sub) => {
                sub.expires = Instant::now() + self.settings.subscription_ttl;
                Ok(())
            }
            None => Err((code::NOT_FOUND, "no subscription".into())),
        }
    }

    /// The criteria of a subscribe or unsubscribe request.
    fn criteria(&self, request: &FilterRequest) -> Result<Vec<(String, String)>, (u32, String)> {
        let bad = |desc: String| Err((code::BAD_REQUEST, desc));
        let Some(topic) = request.pubsub_topic.as_ref().filter(|t| !t.is_empty()) else {
            return bad("pubsub_topic is required".into());
        };
        if request.content_topics.is_empty() {
            return bad("content_topics must not be empty".into());
        }
        let max = self.settings.max_content_topics_per_request;
        if request.content_topics.len() > max {
            return bad(format!(
                "{} content topics in one request; at most {max}",
                request.content_topics.len()
            ));
        }
        if !self.settings.topics.contains(topic) {
            return bad(format!("this node does not relay {topic}"));
        }
        if request.content_topics.iter().any(String::is_empty) {
            return bad("a content topic is empty".into());
        }
        Ok(request
            .content_topics
            .iter()
            .map(|c| (topic.clone(), c.clone()))
            .collect())
    }

    fn subscribe(&self, peer: PeerId, request: &FilterRequest) -> Result<(), (u32, String)> {
        let criteria = self.criteria(request)?;
        let mut state = self.state();
        let max_criteria = self.settings.max_criteria_per_peer;
        let known = state.subscribers.get(&peer).map(|s| &s.criteria);
        let added = criteria
            .iter()
            .filter(|c| known.is_none_or(|k| !k.contains(*c)))
            .collect::<HashSet<_>>()
            .len();
        let held = known.map_or(0, HashSet::len);
        if held + added > max_criteria {
            return Err((
                code::BAD_REQUEST,
                format!("a peer may hold at most {max_criteria} criteria; this one has {held}"),
            ));
        }
        if known.is_none() && state.subscribers.len() >= self.settings.max_peers {
            return Err((
                code::SERVICE_UNAVAILABLE,
                format!(
                    "this node serves {} subscribers, its maximum",
                    self.settings.max_peers
                ),
            ));
        }
        let expires = Instant::now() + self.settings.subscription_ttl;
        if !state.subscribers.contains_key(&peer) {
            let (tx, rx) = mpsc::channel(self.settings.push_queue.max(1));
            state.next_id += 1;
            let id = state.next_id;
            state.subscribers.insert(
                peer,
                Subscriber {
                    id,
                    criteria: HashSet::new(),
                    expires,
                    queue: tx,
                    dropped: 0,
                    recent: HashMap::new(),
                },
            );
            tokio::spawn(write_pushes(self.this.clone(), peer, id, rx));
        }
        let State {
            subscribers, index, ..
        } = &mut *state;
        if let Some(sub) = subscribers.get_mut(&peer) {
            sub.expires = expires;
            for criterion in criteria {
                index.entry(criterion.clone()).or_default().insert(peer);
                sub.criteria.insert(criterion);
            }
        }
        Ok(())
    }

    fn unsubscribe(&self, peer: PeerId, request: &FilterRequest) -> Result<(), (u32, String)> {
        let criteria = self.criteria(request)?;
        let mut state = self.state();
        let Some(sub) = state.subscribers.get_mut(&peer) else {
            return Err((code::NOT_FOUND, "no subscription".into()));
        };
        let removed: Vec<(String, String)> = criteria
            .into_iter()
            .filter(|c| sub.criteria.remove(c))
            .collect();
        sub.expires = Instant::now() + self.settings.subscription_ttl;
        let now_empty = sub.criteria.is_empty();
        if removed.is_empty() {
            return Err((code::NOT_FOUND, "no subscription to these criteria".into()));
        }
        for criterion in &removed {
            state.unindex(criterion, &peer);
        }
        if now_empty {
            state.remove(&peer);
        }
        Ok(())
    }

    fn update_gauges(&self) {
        let state = self.state();
        self.metrics
            .filter_subscribers
            .set(state.subscribers.len() as i64);
        self.metrics.filter_criteria.set(state.criteria() as i64);
    }

    /// Queues one delivered message for every subscriber whose criteria match.
    pub fn offer(&self, delivered: &Delivered) {
        let key = (
            delivered.topic.clone(),
            delivered.message.content_topic.clone(),
        );
        let mut state = self.state();
        let Some(peers) = state.index.get(&key) else {
            return;
        };
        let peers: Vec<PeerId> = peers.iter().copied().collect();
        let frame = Arc::new(encode_push(&delivered.topic, &delivered.message.encode()));
        let now = Instant::now();
        let mut gone = Vec::new();
        for peer in peers {
            let Some(sub) = state.subscribers.get_mut(&peer) else {
                continue;
            };
            if sub
                .recent
                .get(&delivered.hash)
                .is_some_and(|at| now.duration_since(*at) < NO_REPEAT)
            {
                continue;
            }
            if sub.recent.len() >= RECENT_SWEEP_AT {
                sub.recent
                    .retain(|_, at| now.duration_since(*at) < NO_REPEAT);
            }
            sub.recent.insert(delivered.hash, now);
            match sub.queue.try_send(Arc::clone(&frame)) {
                Ok(()) => sub.dropped = 0,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.push_result("dropped");
                    sub.dropped += 1;
                    if sub.dropped >= self.settings.push_queue.max(1) {
                        tracing::info!(%peer, "filter subscriber does not read its pushes; unsubscribed");
                        gone.push(peer);
                    }
                }
                Err(mpsc::error::TrySendError::Closed(_)) => gone.push(peer),
            }
        }
        if gone.is_empty() {
            return;
        }
        for peer in gone {
            state.remove(&peer);
        }
        drop(state);
        self.update_gauges();
    }

    fn push_result(&self, result: &str) {
        self.metrics
            .filter_pushes
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc();
    }

    /// Opens a push stream to `peer` (only on a connection it has: a light client cannot be
    /// dialled).
    async fn open_push(&self, peer: PeerId) -> Option<Stream> {
        if !self.net.is_connected(&peer) {
            return None;
        }
        let mut control = self.net.streams();
        let opened = tokio::time::timeout(
            self.settings.push_timeout,
            control.open_stream(peer, StreamProtocol::new(PROTOCOL_PUSH)),
        )
        .await;
        match opened {
            Ok(Ok(s)) => Some(s),
            Ok(Err(e)) => {
                tracing::debug!(%peer, "filter push stream: {e}");
                None
            }
            Err(_) => None,
        }
    }

    /// Removes `peer`'s subscription if it is still subscription `id`.
    fn drop_subscription(&self, peer: &PeerId, id: u64) {
        let mut state = self.state();
        if state.subscribers.get(peer).is_some_and(|s| s.id == id) {
            state.remove(peer);
        }
        drop(state);
        self.update_gauges();
    }

    async fn fan_out(
        self: Arc<Self>,
        mut delivered: broadcast::Receiver<Delivered>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let next = tokio::select! {
                next = delivered.recv() => next,
                _ = shutdown.wait_for(|s| *s) => return,
            };
            match next {
                Ok(d) => self.offer(&d),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("filter fell behind; {n} messages were not pushed");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    async fn expire(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let period = (self.settings.subscription_ttl / 4)
            .clamp(Duration::from_millis(100), Duration::from_secs(30));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            let now = Instant::now();
            let expired: Vec<PeerId> = self
                .state()
                .subscribers
                .iter()
                .filter(|(_, s)| s.expires <= now)
                .map(|(p, _)| *p)
                .collect();
            if expired.is_empty() {
                continue;
            }
            let mut state = self.state();
            for peer in &expired {
                tracing::debug!(%peer, "filter subscription expired");
                state.remove(peer);
            }
            drop(state);
            self.update_gauges();
        }
    }
}

/// The subscribe protocol, as the request-response scaffold serves it.
impl Handler for Filter {
    type Request = FilterRequest;

    fn label(&self) -> &'static str {
        "filter"
    }

    fn max_request_bytes(&self) -> usize {
        MAX_REQUEST_BYTES
    }

    fn decode(&self, frame: &[u8]) -> Result<FilterRequest, Answer> {
        FilterRequest::decode(frame).map_err(|e| {
            answer(response(
                "",
                code::BAD_REQUEST,
                Some(format!("malformed request: {e}")),
            ))
        })
    }

    fn unreadable(&self, e: &FrameError) -> Option<Answer> {
        Some(answer(response("", code::BAD_REQUEST, Some(e.to_string()))))
    }

    fn too_many(&self, request: &FilterRequest) -> Answer {
        answer(response(
            &request.request_id,
            code::TOO_MANY_REQUESTS,
            Some(format!(
                "more than {} requests per minute",
                self.settings.requests_per_minute
            )),
        ))
    }

    async fn handle(self: Arc<Self>, peer: PeerId, request: FilterRequest) -> Answer {
        answer(self.apply(peer, &request))
    }
}

fn answer(response: FilterResponse) -> Answer {
    Answer {
        code: response.status_code,
        bytes: response.encode(),
    }
}

/// Writes the pushes of one subscriber on one stream, reopened once if it fails; a second
/// failure in a row ends the subscription. The stream is opened at once, not at the first
/// push: an open stream keeps the connection from being closed as idle, and a light client
/// cannot be dialled back (a browser accepts no connections).
async fn write_pushes(
    filter: Weak<Filter>,
    peer: PeerId,
    id: u64,
    mut queue: mpsc::Receiver<Arc<Vec<u8>>>,
) {
    let mut stream: Option<Stream> = match filter.upgrade() {
        Some(service) => service.open_push(peer).await,
        None => return,
    };
    while let Some(frame) = queue.recv().await {
        let Some(service) = filter.upgrade() else {
            return;
        };
        let timeout = service.settings.push_timeout;
        let mut sent = false;
        for _ in 0..2 {
            if stream.is_none() {
                stream = service.open_push(peer).await;
                if stream.is_none() {
                    continue;
                }
            }
            if let Some(s) = stream.as_mut() {
                match write_frame(s, &frame, timeout).await {
                    Ok(()) => {
                        sent = true;
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(%peer, "filter push: {e}");
                        stream = None;
                    }
                }
            }
        }
        if sent {
            service.push_result("sent");
        } else {
            service.push_result("failed");
            tracing::info!(%peer, "filter pushes fail; subscription dropped");
            service.drop_subscription(&peer, id);
            return;
        }
    }
    if let Some(mut s) = stream {
        let _ = s.close().await;
    }
}
