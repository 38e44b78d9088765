//! Filling the history a node missed while it was down, from another node's store.
//!
//! The node asks the peer for every message since its newest archived one (or, with an
//! empty archive, since the lookback), page by page, and keeps only what passes the same
//! RLN checks as relay traffic: the [`Validator`] runs on each message as if it had arrived
//! at its own timestamp (so the clock-gap and epoch checks hold the timestamp to the proof),
//! the root must be one the node accepts, the proof must verify, and the nullifier goes into
//! the log (a second share under it is spam: evidence is kept, the message is not). A store
//! peer therefore cannot put into this node's history anything relay would have refused.
//! Messages proved against a root that has since left the window cannot be checked and are
//! left out (counted). Nothing fetched is relayed or delivered to subscribers: it is history.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use libp2p::Multiaddr;
use rln_db::ArchivedMessage;

use super::relay::pipeline::{handle_spam, Sinks};
use super::relay::validation::{Candidate, Outcome, Validator};
use super::store::{self, MAX_PAGE};
use crate::archive::archived;
use crate::clock::now_nanos;
use crate::error::RelayError;
use crate::handle::NetworkHandle;
use crate::metrics::ResultLabel;
use crate::wire::store::StoreRequest;

/// How far back to fetch when the archive is empty.
#[derive(Debug, Clone)]
pub struct ResumeSettings {
    /// The store node to ask (with `/p2p/<peer id>`).
    pub peer: Multiaddr,
    /// The pubsub topics this node relays; messages of others are skipped.
    pub topics: Vec<String>,
    /// How far back to go with an empty archive.
    pub lookback: Duration,
    /// Archive the proofs too (as `store.keep_proofs`).
    pub keep_proofs: bool,
}

/// What a resume did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resumed {
    /// Pages fetched.
    pub pages: usize,
    /// Messages fetched.
    pub fetched: usize,
    /// Messages that passed the checks and were archived.
    pub stored: usize,
    /// Messages this node already had.
    pub known: usize,
    /// Messages refused (failed a check, another topic, or spam).
    pub refused: usize,
    /// Of those, messages that came without a proof (the peer keeps none).
    pub unproved: usize,
}

/// Most pages fetched in one resume (a bound on what a peer can make the node do).
const MAX_PAGES: usize = 100_000;

/// Fetches and checks the missed history; see the module documentation.
pub async fn resume(
    net: &NetworkHandle,
    validator: Arc<Validator>,
    sinks: &Sinks,
    settings: &ResumeSettings,
) -> Result<Resumed, RelayError> {
    let peer = net.connect(&settings.peer, Duration::from_secs(30)).await?;
    let archive = sinks.archive.clone();
    let newest = tokio::task::spawn_blocking(move || archive.newest())
        .await
        .map_err(|_| RelayError::Stopped)??;
    let now = now_nanos();
    let lookback = settings.lookback.as_nanos().min(i64::MAX as u128) as i64;
    // From the newest message kept, less the clock gap (a message the peer received while
    // this node was going down may carry an earlier timestamp; what comes back twice is
    // known), or the lookback.
    let gap = validator
        .rules()
        .max_clock_gap
        .as_nanos()
        .min(i64::MAX as u128) as i64;
    let since = newest.map_or(now.saturating_sub(lookback), |t| t.saturating_sub(gap));
    let mut request = StoreRequest {
        request_id: "resume".into(),
        include_data: true,
        time_start: Some(since),
        time_end: Some(now),
        pagination_forward: true,
        pagination_limit: Some(MAX_PAGE as u64),
        ..Default::default()
    };
    let mut done = Resumed::default();
    tracing::info!(%peer, since, "store resume: fetching the history missed while down");
    while done.pages < MAX_PAGES {
        let page = store::ask(net, peer, &request).await?;
        if page.status_code != store::code::OK {
            return Err(RelayError::Network(format!(
                "store resume: {peer} answered {}: {}",
                page.status_code,
                page.status_desc.unwrap_or_default()
            )));
        }
        done.pages += 1;
        done.fetched += page.messages.len();
        let mut candidates = Vec::new();
        for entry in &page.messages {
            let Some((topic, message)) = &entry.message else {
                done.refused += 1;
                continue;
            };
            let in_range = message
                .timestamp
                .is_some_and(|t| t >= since && t <= now.saturating_add(gap));
            if !settings.topics.contains(topic) || !in_range || message.ephemeral == Some(true) {
                done.refused += 1;
                continue;
            }
            let at = message.timestamp.unwrap_or(0).max(0) as u64;
            candidates.push(Candidate::new(
                topic.clone(),
                message.clone(),
                UNIX_EPOCH + Duration::from_nanos(at),
                None,
            ));
        }
        let (candidates, checked) = {
            let validator = Arc::clone(&validator);
            tokio::task::spawn_blocking(move || {
                let outcomes = validator.validate_history(&candidates);
                (candidates, outcomes)
            })
            .await
            .map_err(|_| RelayError::Stopped)?
        };
        let mut keep = Vec::new();
        for (c, outcome) in candidates.into_iter().zip(checked) {
            match outcome {
                Outcome::Valid => keep.push(c),
                Outcome::Ignored(super::relay::validation::Reason::Duplicate) => done.known += 1,
                Outcome::Rejected(super::relay::validation::Reason::MissingProof) => {
                    done.refused += 1;
                    done.unproved += 1;
                }
                Outcome::Spam { evidence, .. } => {
                    handle_spam(&evidence, sinks);
                    done.refused += 1;
                }
                _ => done.refused += 1,
            }
        }
        if !keep.is_empty() {
            let entries: Vec<ArchivedMessage> = keep
                .into_iter()
                .filter_map(|c| archived(c.topic, c.message, c.hash, settings.keep_proofs))
                .collect();
            let archive = sinks.archive.clone();
            let inserted = tokio::task::spawn_blocking(move || archive.insert(&entries))
                .await
                .map_err(|_| RelayError::Stopped)??;
            done.stored += inserted.stored;
            done.known += inserted.duplicates;
            sinks
                .metrics
                .store_archived
                .get_or_create(&ResultLabel {
                    result: "resumed".into(),
                })
                .inc_by(inserted.stored as u64);
        }
        if done.pages % 10 == 0 {
            tracing::info!(
                pages = done.pages,
                stored = done.stored,
                "store resume: still fetching"
            );
        }
        match (page.messages.last(), page.cursor) {
            (Some(last), Some(_)) => request.pagination_cursor = Some(last.hash.to_vec()),
            _ => break,
        }
    }
    if done.unproved > 0 {
        tracing::warn!(
            n = done.unproved,
            %peer,
            "store resume: messages came without their RLN proofs and could not be checked; \
             the store node must keep proofs (store.keep_proofs = true) to be resumed from"
        );
    }
    tracing::info!(
        pages = done.pages,
        fetched = done.fetched,
        stored = done.stored,
        known = done.known,
        refused = done.refused,
        "store resume: done"
    );
    Ok(done)
}
