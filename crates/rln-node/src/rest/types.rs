//! What every REST handler shares: the message as the API carries it and the error answer,
//! with the one mapping from each kind of failure to a status.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use serde::{Deserialize, Serialize};

use rln_relay::wire::MAX_META_BYTES;
use rln_relay::{Refusal, RelayError, WakuMessage};

use crate::error::NodeError;

/// A message as the REST API carries it (nwaku's `WakuMessageRest`): bytes in base64.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestMessage {
    /// Payload, base64.
    pub payload: String,
    /// Content topic.
    pub content_topic: String,
    /// Version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Timestamp, nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// Meta, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<String>,
    /// Ephemeral flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral: Option<bool>,
    /// The encoded RateLimitProof, base64 (output only; the node proves what it publishes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
}

impl RestMessage {
    /// The REST form of a message.
    pub fn from_message(m: &WakuMessage) -> Self {
        Self {
            payload: B64.encode(&m.payload),
            content_topic: m.content_topic.clone(),
            version: m.version,
            timestamp: m.timestamp,
            meta: m.meta.as_ref().map(|b| B64.encode(b)),
            ephemeral: m.ephemeral,
            proof: m.rate_limit_proof.as_ref().map(|b| B64.encode(b)),
        }
    }

    /// The message to publish (any proof given is ignored: the node proves it).
    pub fn to_message(&self) -> Result<WakuMessage, ApiError> {
        let payload = B64
            .decode(&self.payload)
            .map_err(|_| ApiError::bad("payload is not base64"))?;
        let meta = match &self.meta {
            Some(m) => Some(
                B64.decode(m)
                    .map_err(|_| ApiError::bad("meta is not base64"))?,
            ),
            None => None,
        };
        if meta.as_ref().is_some_and(|m| m.len() > MAX_META_BYTES) {
            return Err(ApiError::bad("meta is longer than 64 bytes"));
        }
        if self.content_topic.is_empty() {
            return Err(ApiError::bad("contentTopic is required"));
        }
        Ok(WakuMessage {
            payload,
            content_topic: self.content_topic.clone(),
            version: self.version,
            timestamp: self.timestamp,
            meta,
            rate_limit_proof: None,
            ephemeral: self.ephemeral,
        })
    }
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub(super) status: StatusCode,
    pub(super) message: String,
    pub(super) retry_after: Option<u64>,
}

impl ApiError {
    pub(super) fn bad(message: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            retry_after: None,
        }
    }
}

impl From<RelayError> for ApiError {
    fn from(e: RelayError) -> Self {
        let (status, retry_after) = match &e {
            RelayError::LimitReached { next_epoch_in, .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                Some(next_epoch_in.as_secs().max(1)),
            ),
            RelayError::Unrecorded { next_epoch_in, .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                Some(next_epoch_in.as_secs().max(1)),
            ),
            RelayError::InvalidMessage(_) => (StatusCode::BAD_REQUEST, None),
            RelayError::NoMembership => (StatusCode::CONFLICT, None),
            RelayError::NotInTree { .. }
            | RelayError::Publish(_)
            | RelayError::NoPeers(_)
            | RelayError::Stopped => (StatusCode::SERVICE_UNAVAILABLE, None),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, None),
        };
        Self {
            status,
            message: e.to_string(),
            retry_after,
        }
    }
}

impl From<Refusal> for ApiError {
    /// The one place refusals to publish become HTTP answers.
    fn from(r: Refusal) -> Self {
        let retry = |d: &std::time::Duration| Some(d.as_secs().max(1));
        let (status, retry_after) = match &r {
            Refusal::LimitReached { next_epoch_in, .. } => {
                (StatusCode::TOO_MANY_REQUESTS, retry(next_epoch_in))
            }
            Refusal::Unrecorded { next_epoch_in } => {
                (StatusCode::SERVICE_UNAVAILABLE, retry(next_epoch_in))
            }
            Refusal::TooLarge(_)
            | Refusal::Invalid(_)
            | Refusal::ClockGap { .. }
            | Refusal::Rejected(_)
            | Refusal::Duplicate
            | Refusal::Spam => (StatusCode::BAD_REQUEST, None),
            Refusal::NoMembership | Refusal::NoProofService => (StatusCode::CONFLICT, None),
            // Only light clients have shares; the node's own publishing never sees this.
            Refusal::ShareUsed { next_epoch_in, .. } => {
                (StatusCode::TOO_MANY_REQUESTS, retry(next_epoch_in))
            }
            Refusal::NoPeers { .. }
            | Refusal::NotInTree { .. }
            | Refusal::NotSynced
            | Refusal::Busy
            | Refusal::Stopped => (StatusCode::SERVICE_UNAVAILABLE, None),
            Refusal::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, None),
        };
        Self {
            status,
            message: r.to_string(),
            retry_after,
        }
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::Relay(e) => e.into(),
            other => Self {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: other.to_string(),
                retry_after: None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The node's own failures are logged, not told: their text can name paths, endpoints
        // or internals a caller has no business seeing.
        let message = if self.status.is_server_error()
            && self.status != StatusCode::SERVICE_UNAVAILABLE
            && self.status != StatusCode::BAD_GATEWAY
        {
            tracing::error!(status = %self.status, "REST request failed: {}", self.message);
            "internal error; the node's log has the details".to_string()
        } else {
            self.message
        };
        let body = Json(serde_json::json!({ "error": message }));
        match self.retry_after {
            Some(secs) => {
                (self.status, [(header::RETRY_AFTER, secs.to_string())], body).into_response()
            }
            None => (self.status, body).into_response(),
        }
    }
}
