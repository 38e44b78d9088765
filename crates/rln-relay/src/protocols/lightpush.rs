//! Light push, v3 (`/vac/waku/lightpush/3.0.0`) and v2 (`/vac/waku/lightpush/2.0.0-beta1`):
//! a light client hands a message over and the node relays it.
//!
//! A pushed message goes through the same checks as relay traffic ([`Validator`]) before it
//! is published, so a light client cannot get spam, a bad proof or an oversize message into
//! the network through this node. A message without a proof gets one from the node's own
//! membership (RLN proofs as a service), with:
//! - the epoch of the message's timestamp (a timestamp outside the clock gap is refused with
//!   420 before anything is proved), so the proof matches what validators check;
//! - the next message id of the durable allocator the REST API uses, so an id is never reused
//!   and the node never reveals its own secret;
//! - a per-client share of the membership's limit in each epoch (fixed, or by default an
//!   equal share among the clients active in this epoch and the previous one), so one client
//!   cannot take every message of an epoch; a client past its share gets 504 and the time
//!   until the next epoch.
//!
//! Status codes are those js-waku reads: 200 (with `relay_peer_count`), 400, 413, 420, 421,
//! 429, 500, 503, 504, 505. v2 answers carry the same outcome as `is_success` and `info`,
//! whose RLN failures contain the phrases js-waku's v2 client looks for.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use futures::AsyncWriteExt;
use libp2p::{PeerId, Stream};
use rln_core::epoch_at;
use tokio::sync::watch;

use super::framing::{read_frame, write_frame, FrameError};
use super::relay::pipeline::{handle_spam, Sinks};
use super::relay::publisher::{fits_with_proof, MessageIdChoice, Publisher};
use super::relay::validation::{Candidate, Outcome, Reason, Validator};
use super::service::{accept, RateLimiter, MAX_STREAMS, REQUEST_TIMEOUT, RESPONSE_TIMEOUT};
use crate::clock::now_nanos;
use crate::error::RelayError;
use crate::handle::NetworkHandle;
use crate::wire::lightpush::{
    decode_v2, decode_v3, encode_v2_response, LightPushResponse, PushDecodeError, PushRequest,
};
use crate::wire::WakuMessage;

/// The v3 protocol id.
pub const PROTOCOL_V3: &str = "/vac/waku/lightpush/3.0.0";
/// The v2 protocol id.
pub const PROTOCOL_V2: &str = "/vac/waku/lightpush/2.0.0-beta1";

/// Status codes of light push.
pub mod code {
    /// Relayed.
    pub const OK: u32 = 200;
    /// The request is malformed or incomplete.
    pub const BAD_REQUEST: u32 = 400;
    /// The message is larger than the network allows.
    pub const PAYLOAD_TOO_LARGE: u32 = 413;
    /// The message failed validation (RLN included) or is a duplicate.
    pub const INVALID_MESSAGE: u32 = 420;
    /// The node does not relay the pubsub topic.
    pub const UNSUPPORTED_PUBSUB_TOPIC: u32 = 421;
    /// The client sends too many requests.
    pub const TOO_MANY_REQUESTS: u32 = 429;
    /// The node failed.
    pub const INTERNAL: u32 = 500;
    /// The node cannot serve now (not synced, membership not in the tree).
    pub const SERVICE_UNAVAILABLE: u32 = 503;
    /// No RLN proof can be made for the client now (js-waku: NO_RLN_PROOF).
    pub const OUT_OF_RLN_PROOF: u32 = 504;
    /// No relay peer to publish to.
    pub const NO_PEERS_TO_RELAY: u32 = 505;
}

/// How the service behaves.
#[derive(Debug, Clone)]
pub struct LightPushSettings {
    /// The pubsub topics the node relays (others get 421).
    pub topics: Vec<String>,
    /// Requests per client per minute (0: no limit).
    pub requests_per_minute: u32,
    /// Attach proofs from the node's membership to messages that have none.
    pub rln_proofs: bool,
    /// Messages each client may have proved per epoch; `None`: an equal share of the
    /// membership's limit among the clients active in this epoch and the previous one.
    pub client_share: Option<u64>,
    /// Epoch length in seconds.
    pub epoch_secs: u64,
    /// Largest accepted |timestamp − now| for a message to prove.
    pub max_clock_gap: Duration,
    /// Largest message.
    pub max_message_bytes: usize,
}

/// The answer to one push, before it is put in either version's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    /// One of [`code`].
    pub code: u32,
    /// What went wrong (none on success).
    pub desc: Option<String>,
    /// Peers the message was relayed to (success only).
    pub relay_peer_count: Option<u32>,
}

impl PushOutcome {
    fn ok(peers: usize) -> Self {
        Self {
            code: code::OK,
            desc: None,
            relay_peer_count: Some(u32::try_from(peers).unwrap_or(u32::MAX)),
        }
    }

    fn fail(code: u32, desc: impl Into<String>) -> Self {
        Self {
            code,
            desc: Some(desc.into()),
            relay_peer_count: None,
        }
    }
}

/// Message ids proved for each client, in the current and the previous epoch.
#[derive(Debug, Default)]
struct ClientQuota {
    used: HashMap<(u64, PeerId), u64>,
}

impl ClientQuota {
    /// Takes one message of `peer`'s share in `epoch`; `Err(share)` when it is used up.
    fn take(
        &mut self,
        peer: PeerId,
        epoch: u64,
        limit: u64,
        fixed: Option<u64>,
    ) -> Result<(), u64> {
        self.used.retain(|(e, _), _| e + 1 >= epoch);
        let share = match fixed {
            Some(share) => share,
            None => {
                let mut active: HashSet<PeerId> = self
                    .used
                    .keys()
                    .filter(|(e, _)| *e == epoch || *e + 1 == epoch)
                    .map(|(_, p)| *p)
                    .collect();
                active.insert(peer);
                (limit / active.len() as u64).max(1)
            }
        };
        let used = self.used.entry((epoch, peer)).or_insert(0);
        if *used >= share {
            return Err(share);
        }
        *used += 1;
        Ok(())
    }

    /// Gives back a message taken for a proof that was not made.
    fn give_back(&mut self, peer: PeerId, epoch: u64) {
        if let Some(used) = self.used.get_mut(&(epoch, peer)) {
            *used = used.saturating_sub(1);
        }
    }
}

/// The light push service.
pub struct LightPush {
    settings: LightPushSettings,
    net: NetworkHandle,
    validator: Arc<Validator>,
    publisher: Option<Arc<Publisher>>,
    sinks: Sinks,
    limiter: RateLimiter,
    quota: Mutex<ClientQuota>,
}

impl std::fmt::Debug for LightPush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LightPush")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl LightPush {
    /// The service; `publisher` is the node's membership (none: only messages that carry a
    /// proof are accepted).
    pub fn new(
        settings: LightPushSettings,
        net: NetworkHandle,
        validator: Arc<Validator>,
        publisher: Option<Arc<Publisher>>,
        sinks: Sinks,
    ) -> Self {
        let limiter = RateLimiter::new(settings.requests_per_minute);
        Self {
            settings,
            net,
            validator,
            publisher,
            sinks,
            limiter,
            quota: Mutex::new(ClientQuota::default()),
        }
    }

    /// Serves both versions until shutdown.
    pub fn serve(
        self: &Arc<Self>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<impl Future<Output = ()> + Send + 'static, RelayError> {
        let v3 = {
            let service = Arc::clone(self);
            accept(
                &self.net,
                PROTOCOL_V3,
                MAX_STREAMS,
                shutdown.clone(),
                move |peer, stream| {
                    let service = Arc::clone(&service);
                    async move { service.answer(peer, stream, Version::V3).await }
                },
            )?
        };
        let v2 = {
            let service = Arc::clone(self);
            accept(
                &self.net,
                PROTOCOL_V2,
                MAX_STREAMS,
                shutdown,
                move |peer, stream| {
                    let service = Arc::clone(&service);
                    async move { service.answer(peer, stream, Version::V2).await }
                },
            )?
        };
        Ok(async move {
            tokio::join!(v3, v2);
        })
    }

    async fn answer(&self, peer: PeerId, mut stream: Stream, version: Version) {
        // A request is a message and a little framing around it.
        let limit = self.settings.max_message_bytes + 1024;
        let (request_id, outcome) = match read_frame(&mut stream, limit, REQUEST_TIMEOUT).await {
            Ok(bytes) => {
                let decoded = match version {
                    Version::V3 => decode_v3(&bytes, self.settings.max_message_bytes),
                    Version::V2 => decode_v2(&bytes, self.settings.max_message_bytes),
                };
                match decoded {
                    Ok(request) => (request.request_id.clone(), self.push(peer, request).await),
                    Err(PushDecodeError::TooLarge(why)) => (
                        String::new(),
                        PushOutcome::fail(code::PAYLOAD_TOO_LARGE, why),
                    ),
                    Err(PushDecodeError::Malformed(why)) => (
                        String::new(),
                        PushOutcome::fail(code::BAD_REQUEST, format!("malformed request: {why}")),
                    ),
                }
            }
            Err(FrameError::TooLarge { size, limit }) => (
                String::new(),
                PushOutcome::fail(
                    code::PAYLOAD_TOO_LARGE,
                    format!("the request has {size} bytes; the limit is {limit}"),
                ),
            ),
            Err(e) => {
                tracing::debug!(%peer, "light push request: {e}");
                return;
            }
        };
        self.sinks.metrics.request(version.label(), outcome.code);
        let response = match version {
            Version::V3 => LightPushResponse {
                request_id,
                status_code: outcome.code,
                status_desc: outcome.desc,
                relay_peer_count: outcome.relay_peer_count,
            }
            .encode(),
            Version::V2 => {
                encode_v2_response(&request_id, outcome.code == code::OK, &v2_info(&outcome))
            }
        };
        if let Err(e) = write_frame(&mut stream, &response, RESPONSE_TIMEOUT).await {
            tracing::debug!(%peer, "light push response: {e}");
        }
        let _ = stream.close().await;
    }

    /// Checks, proves if needed, validates and publishes one pushed message.
    pub async fn push(&self, peer: PeerId, request: PushRequest) -> PushOutcome {
        if !self.limiter.allow(peer) {
            return PushOutcome::fail(
                code::TOO_MANY_REQUESTS,
                format!(
                    "more than {} requests per minute",
                    self.settings.requests_per_minute
                ),
            );
        }
        let Some(mut message) = request.message else {
            return PushOutcome::fail(code::BAD_REQUEST, "the request has no message");
        };
        let topic = match request.pubsub_topic.filter(|t| !t.is_empty()) {
            Some(topic) => topic,
            None if self.settings.topics.len() == 1 => self.settings.topics[0].clone(),
            None => {
                return PushOutcome::fail(
                    code::BAD_REQUEST,
                    "pubsub_topic is required: this node relays several topics",
                )
            }
        };
        if !self.settings.topics.contains(&topic) {
            return PushOutcome::fail(
                code::UNSUPPORTED_PUBSUB_TOPIC,
                format!("this node does not relay {topic}"),
            );
        }
        if message.content_topic.is_empty() {
            return PushOutcome::fail(code::BAD_REQUEST, "the message has no content topic");
        }
        // Before any proof: a message id, once used, is never handed out again.
        if !self.net.has_peer_on(&topic).await {
            return PushOutcome::fail(
                code::NO_PEERS_TO_RELAY,
                format!("no relay peers on {topic}"),
            );
        }
        // The node's own proof is checked like any other, but no peer is blamed for it.
        let self_proved = message.rate_limit_proof.is_none();
        if self_proved {
            match self.prove(peer, message).await {
                Ok(proved) => message = proved,
                Err(outcome) => return outcome,
            }
        }
        let candidate = Candidate::new(
            topic.clone(),
            message.clone(),
            SystemTime::now(),
            if self_proved { None } else { Some(peer) },
        );
        let validator = Arc::clone(&self.validator);
        let outcome = match tokio::task::spawn_blocking(move || {
            validator.validate_batch(std::slice::from_ref(&candidate))
        })
        .await
        {
            Ok(mut outcomes) => outcomes.pop(),
            Err(_) => None,
        };
        let Some(outcome) = outcome else {
            return PushOutcome::fail(code::INTERNAL, "validation failed to run");
        };
        outcome.record(&self.sinks.metrics);
        if let Some(refused) = self.refusal(&outcome) {
            return refused;
        }
        match self.net.publish_bytes(&topic, message.encode()).await {
            Ok(peers) => {
                self.sinks.hub.deliver(&topic, message);
                PushOutcome::ok(peers)
            }
            Err(RelayError::NoPeers(_)) => PushOutcome::fail(
                code::NO_PEERS_TO_RELAY,
                format!("no relay peers on {topic}"),
            ),
            Err(e) => PushOutcome::fail(code::INTERNAL, e.to_string()),
        }
    }

    /// Proves a message for `peer` with the node's membership: its epoch from the message's
    /// timestamp, within the client's share.
    async fn prove(
        &self,
        peer: PeerId,
        mut message: WakuMessage,
    ) -> Result<WakuMessage, PushOutcome> {
        let publisher =
            match (&self.publisher, self.settings.rln_proofs) {
                (Some(p), true) => Arc::clone(p),
                _ => return Err(PushOutcome::fail(
                    code::INVALID_MESSAGE,
                    "could not generate rln proof: the message has none and this node does not \
                     prove for light clients",
                )),
            };
        let now = now_nanos();
        let timestamp = *message.timestamp.get_or_insert(now);
        let gap = i128::from(timestamp) - i128::from(now);
        if gap.unsigned_abs() > self.settings.max_clock_gap.as_nanos() || timestamp < 0 {
            return Err(PushOutcome::fail(
                code::INVALID_MESSAGE,
                format!(
                    "the message's timestamp is {} s from this node's clock; at most {} s \
                     are accepted",
                    gap / 1_000_000_000,
                    self.settings.max_clock_gap.as_secs()
                ),
            ));
        }
        if let Err(e) = fits_with_proof(&message, self.settings.max_message_bytes) {
            return Err(PushOutcome::fail(code::PAYLOAD_TOO_LARGE, e.to_string()));
        }
        let epoch = epoch_at(timestamp as u64 / 1_000_000_000, self.settings.epoch_secs);
        let limit = publisher.member().limit;
        let taken = self
            .quota
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(peer, epoch, limit, self.settings.client_share);
        if let Err(share) = taken {
            self.sinks.metrics.lightpush_quota_refusals.inc();
            let next = Duration::from_secs((epoch + 1) * self.settings.epoch_secs)
                .saturating_sub(Duration::from_nanos(now.max(0) as u64));
            return Err(PushOutcome::fail(
                code::OUT_OF_RLN_PROOF,
                format!(
                    "could not get new message id to generate an rln proof: this client's share \
                     of {share} messages in epoch {epoch} is used; the next epoch starts in {} s",
                    next.as_secs().max(1)
                ),
            ));
        }
        let proving = Arc::clone(&publisher);
        let result =
            tokio::task::spawn_blocking(move || proving.prove(message, MessageIdChoice::Next))
                .await
                .unwrap_or(Err(RelayError::Stopped));
        match result {
            Ok(proved) => {
                self.sinks.metrics.lightpush_proofs.inc();
                Ok(proved)
            }
            Err(e) => {
                self.quota
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .give_back(peer, epoch);
                Err(match e {
                    RelayError::LimitReached { .. } | RelayError::Unrecorded { .. } => {
                        PushOutcome::fail(
                            code::OUT_OF_RLN_PROOF,
                            format!("could not get new message id to generate an rln proof: {e}"),
                        )
                    }
                    RelayError::NotInTree { .. } => PushOutcome::fail(
                        code::SERVICE_UNAVAILABLE,
                        format!("could not generate rln proof: {e}"),
                    ),
                    RelayError::InvalidMessage(_) => {
                        PushOutcome::fail(code::BAD_REQUEST, e.to_string())
                    }
                    other => PushOutcome::fail(
                        code::INTERNAL,
                        format!("could not generate rln proof: {other}"),
                    ),
                })
            }
        }
    }

    /// The answer for an outcome that stops the message, or `None` when it is valid.
    fn refusal(&self, outcome: &Outcome) -> Option<PushOutcome> {
        let invalid = |why: &str| PushOutcome::fail(code::INVALID_MESSAGE, why.to_string());
        Some(match outcome {
            Outcome::Valid => return None,
            Outcome::Spam { evidence, .. } => {
                handle_spam(evidence, &self.sinks);
                invalid(
                    "RLN validation failed: the member exceeded its message limit in this epoch \
                     (double signal; its secret is recovered)",
                )
            }
            Outcome::Ignored(Reason::Duplicate) => invalid("duplicate message"),
            Outcome::Ignored(Reason::UnknownRoot) => PushOutcome::fail(
                code::SERVICE_UNAVAILABLE,
                "the node is not synced with the membership contract yet",
            ),
            Outcome::Ignored(r) => PushOutcome::fail(code::INTERNAL, r.label()),
            Outcome::Rejected(Reason::Oversize) => {
                PushOutcome::fail(code::PAYLOAD_TOO_LARGE, "the message is too large")
            }
            Outcome::Rejected(Reason::Malformed) => {
                PushOutcome::fail(code::BAD_REQUEST, "the message is malformed")
            }
            Outcome::Rejected(r) => invalid(&format!("RLN validation failed: {}", r.label())),
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum Version {
    V3,
    V2,
}

impl Version {
    fn label(self) -> &'static str {
        match self {
            Version::V3 => "lightpush_v3",
            Version::V2 => "lightpush_v2",
        }
    }
}

/// The v2 `info` of an outcome: empty on success, else the code and its description.
fn v2_info(outcome: &PushOutcome) -> String {
    match &outcome.desc {
        None => String::new(),
        Some(desc) => format!("{} ({})", desc, outcome.code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_equal_share_among_the_clients_of_this_epoch_and_the_last() {
        let mut q = ClientQuota::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        // Alone, a client may use the whole limit.
        assert!((0..4).all(|_| q.take(a, 10, 4, None).is_ok()));
        assert_eq!(q.take(a, 10, 4, None), Err(4));
        // Next epoch a second client arrives: each gets half.
        assert!(q.take(b, 11, 4, None).is_ok());
        assert!(q.take(a, 11, 4, None).is_ok());
        assert!(q.take(a, 11, 4, None).is_ok());
        assert_eq!(q.take(a, 11, 4, None), Err(2));
        // A failed proof gives its message back.
        q.give_back(a, 11);
        assert!(q.take(a, 11, 4, None).is_ok());
        // A fixed share ignores the number of clients; old epochs are forgotten.
        assert!(q.take(a, 20, 100, Some(1)).is_ok());
        assert_eq!(q.take(a, 20, 100, Some(1)), Err(1));
        assert!(q.used.keys().all(|(e, _)| *e >= 19));
        // Never below one message per client.
        let mut many = ClientQuota::default();
        for _ in 0..10 {
            assert!(many.take(PeerId::random(), 1, 3, None).is_ok());
        }
    }

    #[test]
    fn v2_answers_carry_the_phrases_js_waku_looks_for() {
        let out = PushOutcome::fail(
            code::OUT_OF_RLN_PROOF,
            "could not get new message id to generate an rln proof: x",
        );
        assert!(v2_info(&out).contains("could not get new message id to generate an rln proof"));
        assert_eq!(v2_info(&PushOutcome::ok(2)), "");
    }
}
