//! Store v3, `/vac/waku/store-query/3.0.0`: history from the node's archive
//! (`rln_db::archive`, fed by [`crate::archive`] with messages that passed RLN validation).
//!
//! Queries are content-filtered (a pubsub topic with 1–10 content topics, or neither for
//! every message), by time range (start inclusive, end exclusive), walked in pages in either
//! direction with an exclusive hash cursor; or hash lookups (with `include_data = false`, a
//! presence check). Pages hold 20 entries unless asked otherwise, 100 at most, always in
//! ascending (timestamp, hash) order.
//!
//! What clients rely on (js-waku 0.0.36): it ignores the response cursor and continues from
//! the last entry's hash, stopping only on an empty page, so past the end the answer is 200
//! with no messages; it sends the pubsub topic along with hash lookups, which are answered
//! whatever the topic. Requests the archive cannot answer exactly are refused with 400 and a
//! reason rather than answered with a page that is silently wrong: a cursor that is not 32
//! bytes or names nothing stored, a pubsub topic without content topics (or the reverse), an
//! inverted time range.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use libp2p::PeerId;
use rln_db::{ArchiveQuery, ArchivedMessage, DbError, MessageArchive, Selection};
use tokio::sync::watch;

use super::framing::FrameError;
use super::reqres::{self, Answer, Handler, Limits};
use crate::error::RelayError;
use crate::handle::NetworkHandle;
use crate::metrics::Metrics;
use crate::wire::store::{StoreEntry, StoreRequest, StoreResponse};
use crate::wire::{WakuMessage, DEFAULT_MAX_MESSAGE_BYTES};

/// The protocol id.
pub const PROTOCOL: &str = "/vac/waku/store-query/3.0.0";

/// Status codes of store (nwaku's).
pub mod code {
    /// The page.
    pub const OK: u32 = 200;
    /// The archive failed (nwaku's `BAD_RESPONSE`).
    pub const ARCHIVE_ERROR: u32 = 300;
    /// Malformed or unanswerable request.
    pub const BAD_REQUEST: u32 = 400;
    /// Too many requests from this peer.
    pub const TOO_MANY_REQUESTS: u32 = 429;
    /// The service is not available.
    pub const SERVICE_UNAVAILABLE: u32 = 503;
}

/// Entries per page when the request does not say.
pub const DEFAULT_PAGE: usize = 20;
/// Most entries per page (and hashes per lookup).
pub const MAX_PAGE: usize = 100;
/// Most content topics per query.
pub const MAX_CONTENT_TOPICS: usize = 10;

/// Largest request read: 100 hashes, or 10 content topics, with room to spare.
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Limits of the service.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// Requests per peer per minute (0: no limit).
    pub requests_per_minute: u32,
}

/// What a valid request asks of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// A page of a walk.
    Page(ArchiveQuery),
    /// Lookups by hash.
    Lookup(Vec<[u8; 32]>),
}

fn hash32(bytes: &[u8]) -> Option<[u8; 32]> {
    bytes.try_into().ok()
}

/// Checks a request and says what it asks; `Err` is the reason for a 400.
pub fn plan(request: &StoreRequest) -> Result<Plan, String> {
    if !request.message_hashes.is_empty() {
        if !request.content_topics.is_empty()
            || request.time_start.is_some()
            || request.time_end.is_some()
            || request.pagination_cursor.is_some()
        {
            return Err("a hash lookup takes no content topics, time range or cursor".to_string());
        }
        if request.message_hashes.len() > MAX_PAGE {
            return Err(format!(
                "{} hashes asked; at most {MAX_PAGE} per request",
                request.message_hashes.len()
            ));
        }
        // js-waku sends its decoder's pubsub topic along with hashes: not a filter.
        let hashes = request
            .message_hashes
            .iter()
            .map(|h| hash32(h))
            .collect::<Option<Vec<_>>>()
            .ok_or("a message hash is not 32 bytes")?;
        return Ok(Plan::Lookup(hashes));
    }
    let selection = match (&request.pubsub_topic, request.content_topics.is_empty()) {
        (Some(pubsub), false) => {
            if request.content_topics.len() > MAX_CONTENT_TOPICS {
                return Err(format!(
                    "{} content topics asked; at most {MAX_CONTENT_TOPICS} per query",
                    request.content_topics.len()
                ));
            }
            if pubsub.is_empty() || request.content_topics.iter().any(String::is_empty) {
                return Err("empty pubsub or content topic".to_string());
            }
            Selection::Topics {
                pubsub: pubsub.clone(),
                content: request.content_topics.clone(),
            }
        }
        (Some(_), true) => {
            return Err("a pubsub topic needs at least one content topic".to_string())
        }
        (None, false) => return Err("content topics need their pubsub topic".to_string()),
        (None, true) => Selection::All,
    };
    if let (Some(start), Some(end)) = (request.time_start, request.time_end) {
        if start > end {
            return Err(format!(
                "time range is inverted: start {start} is after end {end}"
            ));
        }
    }
    let cursor = match &request.pagination_cursor {
        Some(c) => Some(hash32(c).ok_or("the cursor is not a 32-byte message hash")?),
        None => None,
    };
    let limit = match request.pagination_limit {
        None | Some(0) => DEFAULT_PAGE,
        Some(n) => (n.min(MAX_PAGE as u64)) as usize,
    };
    Ok(Plan::Page(ArchiveQuery {
        selection,
        // Start inclusive, end exclusive (the spec; nwaku reads the end as inclusive). js-waku
        // splits long ranges into ranges that share their boundaries, which only an exclusive
        // end answers without repeating the messages on a boundary.
        start: request.time_start,
        end: request.time_end,
        cursor,
        forward: request.pagination_forward,
        limit,
    }))
}

/// An archived message as the wire carries it.
pub fn to_wire(m: ArchivedMessage) -> (String, WakuMessage) {
    (
        m.pubsub_topic,
        WakuMessage {
            payload: m.payload,
            content_topic: m.content_topic,
            version: m.version,
            timestamp: Some(m.timestamp),
            meta: m.meta,
            rate_limit_proof: m.proof,
            ephemeral: None,
        },
    )
}

/// How long asking a peer's store may take (opening the stream, writing, reading a page).
const ASK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Largest answer read from a peer: a full page of the largest messages.
pub const MAX_ANSWER_BYTES: usize = MAX_PAGE * (DEFAULT_MAX_MESSAGE_BYTES + 1024) + 64 * 1024;

/// Sends `request` to `peer`'s store over the node's own connection (the peer must be
/// connected or dialable) and reads its answer.
pub async fn ask(
    net: &NetworkHandle,
    peer: PeerId,
    request: &StoreRequest,
) -> Result<StoreResponse, RelayError> {
    let mut control = net.streams();
    let answer = reqres::request(
        &mut control,
        peer,
        PROTOCOL,
        &request.encode(),
        MAX_ANSWER_BYTES,
        ASK_TIMEOUT,
    )
    .await
    .map_err(|e| RelayError::Network(format!("store query to {peer}: {e}")))?;
    StoreResponse::decode(
        &answer,
        net.max_message_bytes().max(DEFAULT_MAX_MESSAGE_BYTES),
    )
    .map_err(|e| RelayError::Network(format!("store query to {peer}: decoding: {e}")))
}

/// The store service.
pub struct Store {
    archive: Arc<dyn MessageArchive>,
    settings: StoreSettings,
    metrics: Metrics,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// The service over `archive`.
    pub fn new(
        archive: Arc<dyn MessageArchive>,
        settings: StoreSettings,
        metrics: Metrics,
    ) -> Arc<Self> {
        Arc::new(Self {
            archive,
            settings,
            metrics,
        })
    }

    /// Serves queries until shutdown.
    pub fn serve(
        self: &Arc<Self>,
        net: &NetworkHandle,
        shutdown: watch::Receiver<bool>,
    ) -> Result<impl Future<Output = ()> + Send + 'static, RelayError> {
        reqres::serve(
            net,
            PROTOCOL,
            Arc::clone(self),
            Limits::per_minute(self.settings.requests_per_minute),
            self.metrics.clone(),
            shutdown,
        )
    }

    /// Answers one request from the archive (blocking: it reads RocksDB). No rate limit: the
    /// protocol applies it per peer, and the REST API answers its own caller.
    pub fn query(&self, request: &StoreRequest) -> StoreResponse {
        let started = Instant::now();
        let id = request.request_id.as_str();
        let answer = match plan(request) {
            Err(reason) => StoreResponse::status(id, code::BAD_REQUEST, reason),
            Ok(plan) => match self.run(&plan) {
                Ok((found, more)) => {
                    let cursor = match &plan {
                        Plan::Page(q) if more => if q.forward {
                            found.last()
                        } else {
                            found.first()
                        }
                        .map(|m| m.hash),
                        _ => None,
                    };
                    StoreResponse {
                        request_id: id.to_string(),
                        status_code: code::OK,
                        status_desc: None,
                        messages: found
                            .into_iter()
                            .map(|m| StoreEntry {
                                hash: m.hash,
                                message: request.include_data.then(|| to_wire(m)),
                            })
                            .collect(),
                        cursor,
                    }
                }
                Err(DbError::UnknownCursor) => StoreResponse::status(
                    id,
                    code::BAD_REQUEST,
                    "the cursor names no stored message (unknown, or pruned since)",
                ),
                Err(e) => {
                    tracing::error!("store query failed: {e}");
                    StoreResponse::status(id, code::ARCHIVE_ERROR, "the archive failed to answer")
                }
            },
        };
        self.metrics
            .store_query_seconds
            .observe(started.elapsed().as_secs_f64());
        answer
    }

    fn run(&self, plan: &Plan) -> Result<(Vec<ArchivedMessage>, bool), DbError> {
        match plan {
            Plan::Page(query) => {
                let page = self.archive.query(query)?;
                Ok((page.messages, page.more))
            }
            Plan::Lookup(hashes) => Ok((self.archive.lookup(hashes)?, false)),
        }
    }
}

/// The protocol, as the request-response scaffold serves it.
impl Handler for Store {
    type Request = StoreRequest;

    fn label(&self) -> &'static str {
        "store"
    }

    fn max_request_bytes(&self) -> usize {
        MAX_REQUEST_BYTES
    }

    fn decode(&self, frame: &[u8]) -> Result<StoreRequest, Answer> {
        StoreRequest::decode(frame).map_err(|e| {
            answer(StoreResponse::status(
                "",
                code::BAD_REQUEST,
                format!("malformed request: {e}"),
            ))
        })
    }

    fn unreadable(&self, e: &FrameError) -> Option<Answer> {
        Some(answer(StoreResponse::status(
            "",
            code::BAD_REQUEST,
            e.to_string(),
        )))
    }

    fn too_many(&self, request: &StoreRequest) -> Answer {
        answer(StoreResponse::status(
            &request.request_id,
            code::TOO_MANY_REQUESTS,
            format!(
                "more than {} requests per minute",
                self.settings.requests_per_minute
            ),
        ))
    }

    async fn handle(self: Arc<Self>, _peer: PeerId, request: StoreRequest) -> Answer {
        // The archive is read on the blocking pool.
        let id = request.request_id.clone();
        let response = tokio::task::spawn_blocking(move || self.query(&request))
            .await
            .unwrap_or_else(|_| {
                StoreResponse::status(&id, code::ARCHIVE_ERROR, "the query failed")
            });
        answer(response)
    }
}

fn answer(response: StoreResponse) -> Answer {
    Answer {
        code: response.status_code,
        bytes: response.encode(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content_query() -> StoreRequest {
        StoreRequest {
            request_id: "r".into(),
            include_data: true,
            pubsub_topic: Some("/waku/2/rs/1/0".into()),
            content_topics: vec!["/a/1/b/proto".into()],
            ..Default::default()
        }
    }

    #[test]
    fn every_bad_request_has_a_reason() {
        let bad: Vec<(StoreRequest, &str)> = vec![
            (
                StoreRequest {
                    content_topics: vec![],
                    ..content_query()
                },
                "needs at least one content topic",
            ),
            (
                StoreRequest {
                    pubsub_topic: None,
                    ..content_query()
                },
                "need their pubsub topic",
            ),
            (
                StoreRequest {
                    content_topics: (0..11).map(|i| format!("/a/1/{i}/p")).collect(),
                    ..content_query()
                },
                "at most 10",
            ),
            (
                StoreRequest {
                    time_start: Some(10),
                    time_end: Some(9),
                    ..content_query()
                },
                "inverted",
            ),
            (
                StoreRequest {
                    pagination_cursor: Some(vec![1, 2, 3]),
                    ..content_query()
                },
                "cursor is not a 32-byte",
            ),
            (
                StoreRequest {
                    message_hashes: vec![vec![0u8; 32]],
                    ..content_query()
                },
                "hash lookup takes no content topics",
            ),
            (
                StoreRequest {
                    pubsub_topic: None,
                    content_topics: vec![],
                    message_hashes: vec![vec![0u8; 31]],
                    ..content_query()
                },
                "not 32 bytes",
            ),
            (
                StoreRequest {
                    pubsub_topic: None,
                    content_topics: vec![],
                    message_hashes: vec![vec![0u8; 32]; 101],
                    ..content_query()
                },
                "at most 100",
            ),
        ];
        for (request, reason) in bad {
            let err = plan(&request).expect_err(reason);
            assert!(err.contains(reason), "{err:?} should say {reason:?}");
        }
    }

    #[test]
    fn good_requests_plan_what_they_ask() {
        let Plan::Page(q) = plan(&content_query()).unwrap() else {
            panic!("a page")
        };
        assert_eq!((q.limit, q.forward), (DEFAULT_PAGE, false), "spec defaults");
        let big = StoreRequest {
            pagination_limit: Some(5_000),
            pagination_forward: true,
            time_start: Some(5),
            time_end: Some(5),
            ..content_query()
        };
        let Plan::Page(q) = plan(&big).unwrap() else {
            panic!("a page")
        };
        assert_eq!((q.limit, q.forward), (MAX_PAGE, true));
        // js-waku's hash lookups carry the pubsub topic.
        let lookup = StoreRequest {
            content_topics: vec![],
            message_hashes: vec![vec![4u8; 32]],
            ..content_query()
        };
        assert_eq!(plan(&lookup).unwrap(), Plan::Lookup(vec![[4u8; 32]]));
        let everything = StoreRequest {
            pubsub_topic: None,
            content_topics: vec![],
            ..content_query()
        };
        assert!(matches!(
            plan(&everything).unwrap(),
            Plan::Page(ArchiveQuery {
                selection: Selection::All,
                ..
            })
        ));
    }
}
