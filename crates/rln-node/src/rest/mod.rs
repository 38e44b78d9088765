//! The REST API (axum): nwaku-compatible relay and store paths ([`store`]), health, RLN
//! information and `/metrics`. Errors are JSON `{"error": "..."}` with a status that says
//! whose fault it is.

pub mod store;
mod types;

pub use types::{ApiError, RestMessage};

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use rln_core::fr_to_hex;

use rln_relay::{RelayError, WakuMessage};

use crate::error::NodeError;
use crate::handle::NodeHandle;

type Node = State<NodeHandle>;

async fn health(State(node): Node) -> impl IntoResponse {
    let h = node.health();
    let status = if h.synced {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(h))
}

async fn info(State(node): Node) -> impl IntoResponse {
    Json(serde_json::json!({
        "peerId": node.peer_id().to_string(),
        "listenAddresses": node.listen_addrs().iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "pubsubTopics": node.config().network.pubsub_topics,
        "clusterId": node.config().network.cluster_id,
        "lightProtocols": {
            "lightpush": node.config().lightpush.enabled,
            "filter": node.config().filter.enabled,
            "store": node.config().store.enabled,
        },
        "backend": rln_bn254::backend_report(),
        "keys": node.keys(),
    }))
}

async fn peers(State(node): Node) -> impl IntoResponse {
    Json(node.peers().await)
}

async fn subscribe(
    State(node): Node,
    Json(topics): Json<Vec<String>>,
) -> Result<&'static str, ApiError> {
    for t in &topics {
        node.subscribe_topic(t).await?;
    }
    Ok("OK")
}

async fn unsubscribe(
    State(node): Node,
    Json(topics): Json<Vec<String>>,
) -> Result<&'static str, ApiError> {
    for t in &topics {
        node.unsubscribe_topic(t).await?;
    }
    Ok("OK")
}

fn take(node: &NodeHandle, topic: &str) -> Result<Vec<WakuMessage>, ApiError> {
    node.hub().take(topic).ok_or_else(|| ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!("not subscribed to {topic}; POST it to /relay/v1/subscriptions first"),
        retry_after: None,
    })
}

async fn get_messages(
    State(node): Node,
    Path(topic): Path<String>,
) -> Result<Json<Vec<RestMessage>>, ApiError> {
    Ok(Json(
        take(&node, &topic)?
            .iter()
            .map(RestMessage::from_message)
            .collect(),
    ))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Published {
    message_hash: String,
    timestamp: Option<i64>,
}

async fn post_message(
    State(node): Node,
    Path(topic): Path<String>,
    Json(message): Json<RestMessage>,
) -> Result<Json<Published>, ApiError> {
    let message = message.to_message()?;
    let sent = node.publish(&topic, message).await?;
    Ok(Json(Published {
        message_hash: format!("0x{}", hex::encode(sent.hash)),
        timestamp: sent.message.timestamp,
    }))
}

fn auto_topic(node: &NodeHandle) -> Result<String, ApiError> {
    node.config()
        .network
        .pubsub_topics
        .first()
        .cloned()
        .ok_or_else(|| ApiError::bad("the node relays no pubsub topic"))
}

async fn auto_get(
    State(node): Node,
    Path(content_topic): Path<String>,
) -> Result<Json<Vec<RestMessage>>, ApiError> {
    let topic = auto_topic(&node)?;
    let all = take(&node, &topic)?;
    Ok(Json(
        all.iter()
            .filter(|m| m.content_topic == content_topic)
            .map(RestMessage::from_message)
            .collect(),
    ))
}

async fn auto_post(
    State(node): Node,
    Json(message): Json<RestMessage>,
) -> Result<Json<Published>, ApiError> {
    let topic = auto_topic(&node)?;
    let message = message.to_message()?;
    let sent = node.publish(&topic, message).await?;
    Ok(Json(Published {
        message_hash: format!("0x{}", hex::encode(sent.hash)),
        timestamp: sent.message.timestamp,
    }))
}

async fn auto_subscribe(
    State(node): Node,
    Json(_content_topics): Json<Vec<String>>,
) -> Result<&'static str, ApiError> {
    let topic = auto_topic(&node)?;
    node.subscribe_topic(&topic).await?;
    Ok("OK")
}

async fn membership(State(node): Node) -> Result<impl IntoResponse, ApiError> {
    let Some(p) = node.publisher() else {
        return Err(RelayError::NoMembership.into());
    };
    let (epoch, next) = p.current_epoch();
    let m = p.member();
    Ok(Json(serde_json::json!({
        "index": m.index,
        "userMessageLimit": m.limit,
        "idCommitment": fr_to_hex(&m.identity.commitment()),
        "epoch": epoch,
        "epochSecs": node.config().rln.epoch_secs,
        "nextEpochInSecs": next.as_secs(),
        "remainingMessages": p.remaining()?,
    })))
}

/// `GET /rln/v1/spam` parameters (the query string).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpamParams {
    /// Pieces per page (default 100, at most 1,000).
    limit: Option<usize>,
    /// The `cursor` of the last piece of the previous page.
    before: Option<String>,
}

/// Spam evidence, newest first, in pages.
const SPAM_PAGE: usize = 100;
const SPAM_PAGE_MAX: usize = 1_000;

impl SpamParams {
    /// The page asked for: its size and the cursor it continues from.
    pub fn page(&self) -> Result<(usize, Option<rln_db::EvidenceCursor>), ApiError> {
        let limit = self.limit.unwrap_or(SPAM_PAGE);
        if limit == 0 || limit > SPAM_PAGE_MAX {
            return Err(ApiError::bad(&format!(
                "limit must be between 1 and {SPAM_PAGE_MAX}"
            )));
        }
        let before = match &self.before {
            None => None,
            Some(text) => Some(
                hex::decode(text.trim_start_matches("0x"))
                    .ok()
                    .and_then(|b| rln_db::EvidenceCursor::try_from(b.as_slice()).ok())
                    .ok_or_else(|| ApiError::bad("before must be a cursor from a previous page"))?,
            ),
        };
        Ok((limit, before))
    }
}

async fn spam(
    State(node): Node,
    axum::extract::Query(params): axum::extract::Query<SpamParams>,
) -> Result<impl IntoResponse, ApiError> {
    let (limit, before) = params.page()?;
    let page = node
        .db()
        .spam_evidence_page(before.as_ref(), limit)
        .map_err(NodeError::from)?;
    let list: Vec<serde_json::Value> = page
        .iter()
        .map(|e| {
            serde_json::json!({
                "cursor": format!("0x{}", hex::encode(e.cursor())),
                "epoch": e.epoch,
                "nullifier": fr_to_hex(&e.nullifier),
                "idCommitment": fr_to_hex(&e.id_commitment),
                "recoveredSecret": fr_to_hex(&e.secret),
                "first": {"x": fr_to_hex(&e.first.x), "y": fr_to_hex(&e.first.y), "messageHash": format!("0x{}", hex::encode(e.first.message_hash))},
                "second": {"x": fr_to_hex(&e.second.x), "y": fr_to_hex(&e.second.y), "messageHash": format!("0x{}", hex::encode(e.second.message_hash))},
                "slashStatus": e.slash_status,
            })
        })
        .collect();
    Ok(Json(list))
}

async fn metrics(State(node): Node) -> Result<impl IntoResponse, ApiError> {
    let text = node.encode_metrics().map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("encoding metrics: {e}"),
        retry_after: None,
    })?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    ))
}

/// Refuses requests addressed to a host name the API does not answer to (DNS rebinding: a
/// web page whose name resolves to 127.0.0.1 sends its own name), and, with a token set,
/// requests without it (all but `GET /health`).
async fn guard(
    State(node): Node,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let rest = &node.config().rest;
    if let (Some(names), Some(host)) = (
        rest.host_names(),
        request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok()),
    ) {
        let name = crate::config::host_without_port(host).to_ascii_lowercase();
        if !names.contains(&name) {
            return ApiError {
                status: StatusCode::FORBIDDEN,
                message: format!(
                    "this API does not answer to host `{name}` (rest.allowed_hosts, \
                     --rest-allowed-host)"
                ),
                retry_after: None,
            }
            .into_response();
        }
    }
    if let Some(token) = &rest.token {
        let open = request.method() == axum::http::Method::GET && request.uri().path() == "/health";
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or("");
        if !open && !same_secret(given.as_bytes(), token.trim().as_bytes()) {
            let mut response = ApiError {
                status: StatusCode::UNAUTHORIZED,
                message: "this API needs `Authorization: Bearer <token>` (rest.token)".into(),
                retry_after: None,
            }
            .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
            return response;
        }
    }
    next.run(request).await
}

/// Compares two secrets in time that depends on their lengths only.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The API's routes.
pub fn router(node: NodeHandle) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/debug/v1/info", get(info))
        .route("/admin/v1/peers", get(peers))
        .route(
            "/relay/v1/subscriptions",
            axum::routing::post(subscribe).delete(unsubscribe),
        )
        .route(
            "/relay/v1/messages/{topic}",
            get(get_messages).post(post_message),
        )
        .route(
            "/relay/v1/auto/subscriptions",
            axum::routing::post(auto_subscribe),
        )
        .route("/relay/v1/auto/messages/{content_topic}", get(auto_get))
        .route("/relay/v1/auto/messages", axum::routing::post(auto_post))
        .route("/store/v3/messages", get(store::messages))
        .route("/rln/v1/membership", get(membership))
        .route("/rln/v1/spam", get(spam))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(node.clone(), guard))
        .with_state(node)
}

/// Binds the API to `addr`; returns the bound address and the server, which runs until
/// `shutdown` turns `true` (the caller spawns it).
pub async fn serve(
    node: NodeHandle,
    addr: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, impl Future<Output = ()>), NodeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Io {
            what: format!("cannot listen on {addr} for the REST API (is the port in use?)"),
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| NodeError::Io {
        what: "reading the REST address".into(),
        source,
    })?;
    let app = router(node);
    let server = async move {
        let stop = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!("REST API failed: {e}");
        }
    };
    Ok((bound, server))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(e: ApiError) -> (StatusCode, String) {
        let response = e.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap_or_default();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn internal_errors_are_logged_not_told() {
        let internal = ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "RocksDB failed while reading /var/lib/rln/secret: IO error".into(),
            retry_after: None,
        };
        let (status, body) = body_of(internal).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            !body.contains("/var/lib") && body.contains("internal error"),
            "{body}"
        );
        // The caller's own mistakes and the node's temporary state are still explained.
        let (_, body) = body_of(ApiError::bad("payload is not base64")).await;
        assert!(body.contains("payload is not base64"));
        let busy = ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "no connected peer relays /waku/2/rs/1/0 yet".into(),
            retry_after: None,
        };
        assert!(body_of(busy).await.1.contains("no connected peer"));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abcdef", b"abcdef"));
        assert!(!same_secret(b"abcde", b"abcdef"));
        assert!(!same_secret(b"abcdeg", b"abcdef"));
    }
}
