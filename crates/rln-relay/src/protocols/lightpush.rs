//! Light push, v3 (`/vac/waku/lightpush/3.0.0`) and v2 (`/vac/waku/lightpush/2.0.0-beta1`):
//! a light client hands a message over and the node relays it.
//!
//! The service decodes, rate-limits and checks the request (topic, content topic), then hands
//! the message to the node's [`Outbox`], the same entry point as REST publishing: a message
//! without a proof gets one from the node's membership (RLN proofs as a service, within the
//! client's share of the limit), one with a proof is verified like relay traffic, and either
//! is validated through the relay's pipeline, published and delivered locally. [`outcome_of`]
//! is the one mapping from the outbox's refusals to status codes.
//!
//! Status codes are those js-waku reads: 200 (with `relay_peer_count`), 400, 413, 420, 421,
//! 429, 500, 503, 504, 505. v2 answers carry the same outcome as `is_success` and `info`,
//! whose RLN failures contain the phrases js-waku's v2 client looks for.

use std::future::Future;
use std::sync::Arc;

use libp2p::PeerId;
use tokio::sync::watch;

use super::framing::FrameError;
use super::relay::outbox::{Outbox, Proof, Publication, Refusal};
use super::reqres::{self, Answer, Handler, Limits};
use crate::error::RelayError;
use crate::handle::NetworkHandle;
use crate::metrics::Metrics;
use crate::wire::lightpush::{
    decode_v2, decode_v3, encode_v2_response, LightPushResponse, PushDecodeError, PushRequest,
};

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

/// The light push service.
pub struct LightPush {
    settings: LightPushSettings,
    net: NetworkHandle,
    outbox: Arc<Outbox>,
    metrics: Metrics,
}

impl std::fmt::Debug for LightPush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LightPush")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl LightPush {
    /// The service, publishing through `outbox`.
    pub fn new(
        settings: LightPushSettings,
        net: NetworkHandle,
        outbox: Arc<Outbox>,
        metrics: Metrics,
    ) -> Self {
        Self {
            settings,
            net,
            outbox,
            metrics,
        }
    }

    /// Serves both versions until shutdown; they share one rate limit per client.
    pub fn serve(
        self: &Arc<Self>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<impl Future<Output = ()> + Send + 'static, RelayError> {
        let limits = Limits::per_minute(self.settings.requests_per_minute);
        let version = |version| {
            Arc::new(Served {
                service: Arc::clone(self),
                version,
            })
        };
        let v3 = reqres::serve(
            &self.net,
            PROTOCOL_V3,
            version(Version::V3),
            limits.clone(),
            self.metrics.clone(),
            shutdown.clone(),
        )?;
        let v2 = reqres::serve(
            &self.net,
            PROTOCOL_V2,
            version(Version::V2),
            limits,
            self.metrics.clone(),
            shutdown,
        )?;
        Ok(async move {
            tokio::join!(v3, v2);
        })
    }

    /// Checks one pushed message and hands it to the outbox (the rate limit is the
    /// scaffold's, applied before).
    pub async fn push(&self, peer: PeerId, request: PushRequest) -> PushOutcome {
        let Some(message) = request.message else {
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
        // The node's own proof is checked like any other, but no peer is blamed for it.
        let proof = if message.rate_limit_proof.is_none() {
            Proof::ForClient(peer)
        } else {
            Proof::Carried { from: Some(peer) }
        };
        let publication = Publication {
            topic,
            message,
            proof,
        };
        match self.outbox.publish(publication).await {
            Ok(published) => PushOutcome::ok(published.peers),
            Err(refusal) => outcome_of(&refusal),
        }
    }
}

/// The status code and description of a refusal: the one place refusals become light push
/// answers. The descriptions of proof failures start with the phrases js-waku's clients
/// look for ("could not generate rln proof", "could not get new message id to generate an
/// rln proof"); the node's own failures are told only as "internal error" (the detail is in
/// its log).
pub fn outcome_of(refusal: &Refusal) -> PushOutcome {
    use Refusal as R;
    let (code, desc) = match refusal {
        R::NoPeers { topic } => (
            code::NO_PEERS_TO_RELAY,
            format!("no relay peers on {topic}"),
        ),
        R::TooLarge(_) => (code::PAYLOAD_TOO_LARGE, refusal.to_string()),
        R::Invalid(_) => (code::BAD_REQUEST, refusal.to_string()),
        R::NoMembership | R::NoProofService => (
            code::INVALID_MESSAGE,
            "could not generate rln proof: the message has none and this node does not prove \
             for light clients"
                .to_string(),
        ),
        R::ClockGap { .. } => (code::INVALID_MESSAGE, refusal.to_string()),
        R::ShareUsed { .. } | R::LimitReached { .. } | R::Unrecorded { .. } => (
            code::OUT_OF_RLN_PROOF,
            format!("could not get new message id to generate an rln proof: {refusal}"),
        ),
        R::NotInTree { .. } => (
            code::SERVICE_UNAVAILABLE,
            format!("could not generate rln proof: {refusal}"),
        ),
        R::NotSynced | R::Busy | R::Stopped => (code::SERVICE_UNAVAILABLE, refusal.to_string()),
        R::Rejected(_) | R::Duplicate | R::Spam => (code::INVALID_MESSAGE, refusal.to_string()),
        R::Internal(detail) => {
            tracing::warn!("light push failed: {detail}");
            (code::INTERNAL, "internal error".to_string())
        }
    };
    PushOutcome::fail(code, desc)
}

/// One version of the protocol, as the request-response scaffold serves it.
struct Served {
    service: Arc<LightPush>,
    version: Version,
}

impl Served {
    /// The encoded answer of `outcome` in this version's response.
    fn answer(&self, request_id: &str, outcome: &PushOutcome) -> Answer {
        let bytes = match self.version {
            Version::V3 => LightPushResponse {
                request_id: request_id.to_string(),
                status_code: outcome.code,
                status_desc: outcome.desc.clone(),
                relay_peer_count: outcome.relay_peer_count,
            }
            .encode(),
            Version::V2 => {
                encode_v2_response(request_id, outcome.code == code::OK, &v2_info(outcome))
            }
        };
        Answer {
            bytes,
            code: outcome.code,
        }
    }
}

impl Handler for Served {
    type Request = PushRequest;

    fn label(&self) -> &'static str {
        self.version.label()
    }

    fn max_request_bytes(&self) -> usize {
        // A request is a message and a little framing around it.
        self.service.settings.max_message_bytes + 1024
    }

    fn decode(&self, frame: &[u8]) -> Result<PushRequest, Answer> {
        let max = self.service.settings.max_message_bytes;
        let decoded = match self.version {
            Version::V3 => decode_v3(frame, max),
            Version::V2 => decode_v2(frame, max),
        };
        decoded.map_err(|e| {
            let outcome = match e {
                PushDecodeError::TooLarge(why) => PushOutcome::fail(code::PAYLOAD_TOO_LARGE, why),
                PushDecodeError::Malformed(why) => {
                    PushOutcome::fail(code::BAD_REQUEST, format!("malformed request: {why}"))
                }
            };
            self.answer("", &outcome)
        })
    }

    fn unreadable(&self, e: &FrameError) -> Option<Answer> {
        match e {
            FrameError::TooLarge { size, limit } => Some(self.answer(
                "",
                &PushOutcome::fail(
                    code::PAYLOAD_TOO_LARGE,
                    format!("the request has {size} bytes; the limit is {limit}"),
                ),
            )),
            _ => None,
        }
    }

    fn too_many(&self, request: &PushRequest) -> Answer {
        let outcome = PushOutcome::fail(
            code::TOO_MANY_REQUESTS,
            format!(
                "more than {} requests per minute",
                self.service.settings.requests_per_minute
            ),
        );
        self.answer(&request.request_id, &outcome)
    }

    async fn handle(self: Arc<Self>, peer: PeerId, request: PushRequest) -> Answer {
        let request_id = request.request_id.clone();
        let outcome = self.service.push(peer, request).await;
        self.answer(&request_id, &outcome)
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
    fn every_refusal_has_its_status_code() {
        use std::time::Duration;
        let next = Duration::from_secs(3);
        let cases = [
            (
                Refusal::NoPeers { topic: "t".into() },
                code::NO_PEERS_TO_RELAY,
            ),
            (Refusal::TooLarge("big".into()), code::PAYLOAD_TOO_LARGE),
            (Refusal::Invalid("bad".into()), code::BAD_REQUEST),
            (Refusal::NoMembership, code::INVALID_MESSAGE),
            (Refusal::NoProofService, code::INVALID_MESSAGE),
            (
                Refusal::ClockGap {
                    gap_secs: 40,
                    max_secs: 20,
                },
                code::INVALID_MESSAGE,
            ),
            (
                Refusal::ShareUsed {
                    share: 1,
                    epoch: 2,
                    next_epoch_in: next,
                },
                code::OUT_OF_RLN_PROOF,
            ),
            (
                Refusal::LimitReached {
                    limit: 1,
                    next_epoch_in: next,
                },
                code::OUT_OF_RLN_PROOF,
            ),
            (
                Refusal::Unrecorded {
                    next_epoch_in: next,
                },
                code::OUT_OF_RLN_PROOF,
            ),
            (
                Refusal::NotInTree {
                    index: 0,
                    why: "empty".into(),
                },
                code::SERVICE_UNAVAILABLE,
            ),
            (Refusal::NotSynced, code::SERVICE_UNAVAILABLE),
            (Refusal::Busy, code::SERVICE_UNAVAILABLE),
            (Refusal::Stopped, code::SERVICE_UNAVAILABLE),
            (
                Refusal::Rejected(crate::protocols::relay::validation::Reason::InvalidProof),
                code::INVALID_MESSAGE,
            ),
            (Refusal::Duplicate, code::INVALID_MESSAGE),
            (Refusal::Spam, code::INVALID_MESSAGE),
            (Refusal::Internal("/var/lib/x: disk".into()), code::INTERNAL),
        ];
        for (refusal, expected) in cases {
            let out = outcome_of(&refusal);
            assert_eq!(out.code, expected, "{refusal:?}");
            assert!(out.desc.is_some() && out.relay_peer_count.is_none());
        }
        // Internal detail stays in the log.
        let internal = outcome_of(&Refusal::Internal("/var/lib/x: disk".into()));
        assert_eq!(internal.desc.as_deref(), Some("internal error"));
        let share = outcome_of(&Refusal::ShareUsed {
            share: 1,
            epoch: 2,
            next_epoch_in: next,
        });
        assert!(share
            .desc
            .unwrap()
            .starts_with("could not get new message id to generate an rln proof"));
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
