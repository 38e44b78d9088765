//! Background tasks of a node that belong to no protocol: the sync status mirror, the
//! publisher's membership part kept ready, and the pruning of nullifiers and evidence.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rln_chain::SyncStatus;
use rln_core::epoch_at;
use rln_db::RlnDb;

use rln_relay::metrics::Metrics;

use rln_relay::{Publisher, SyncView};

use tokio::sync::watch;

/// Spam evidence is kept this long for audits, then pruned.
const EVIDENCE_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Waits for the next sync status; `false` once the node stops. A closed status channel
/// means the sync task is gone (the supervisor reports that one), so it waits for the stop.
async fn next_status(
    status: &mut watch::Receiver<SyncStatus>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let closed = tokio::select! {
        r = status.changed() => r.is_err(),
        _ = shutdown.wait_for(|s| *s) => return false,
    };
    if closed {
        let _ = shutdown.wait_for(|s| *s).await;
        return false;
    }
    true
}

/// Mirrors the sync status into the validator's flag and the metrics until shutdown.
pub(super) async fn watch_sync(
    mut status: watch::Receiver<SyncStatus>,
    synced: Arc<SyncView>,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        {
            let s = status.borrow_and_update();
            synced.update(s.synced, now_millis());
            metrics.synced.set(i64::from(s.synced));
            metrics.synced_block.set(s.block.unwrap_or(0) as i64);
            metrics.registered_members.set(s.members as i64);
        }
        if !next_status(&mut status, &mut shutdown).await {
            return;
        }
    }
}

/// Keeps the publisher's membership part current: after each change of the synced tree,
/// prepares it in the background so that the next publication pays only for its message.
pub(super) async fn prepare_after_sync(
    publisher: Arc<Publisher>,
    mut status: watch::Receiver<SyncStatus>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut prepared_for = None;
    loop {
        let state = {
            let s = status.borrow_and_update();
            (s.synced, s.block)
        };
        if state.0 && prepared_for != Some(state) {
            let p = publisher.clone();
            match tokio::task::spawn_blocking(move || p.prepared()).await {
                Ok(Ok(_)) => prepared_for = Some(state),
                Ok(Err(e)) => tracing::debug!("membership part not prepared: {e}"),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => return,
            }
        }
        if !next_status(&mut status, &mut shutdown).await {
            return;
        }
    }
}

/// Drops nullifiers of epochs no valid message can carry any more.
pub(super) async fn prune_nullifiers(
    db: Arc<RlnDb>,
    epoch_secs: u64,
    gap_secs: u64,
    mut shutdown: watch::Receiver<bool>,
) {
    let period = Duration::from_secs((epoch_secs / 2).clamp(1, 60));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        // The oldest epoch a message within the clock gap can carry.
        let oldest = epoch_at(now.saturating_sub(gap_secs), epoch_secs);
        if let Err(e) = db.prune_nullifiers_before(oldest) {
            tracing::warn!("pruning the nullifier log failed: {e}");
        }
        let kept_from = epoch_at(now.saturating_sub(EVIDENCE_RETENTION.as_secs()), epoch_secs);
        match db.prune_evidence_before(kept_from) {
            Ok(0) => {}
            Ok(n) => tracing::info!("pruned {n} pieces of spam evidence older than 30 days"),
            Err(e) => tracing::warn!("pruning spam evidence failed: {e}"),
        }
    }
}

pub(super) fn now_secs() -> u64 {
    rln_relay::clock::now_nanos().max(0) as u64 / 1_000_000_000
}

pub(super) fn now_millis() -> u64 {
    rln_relay::clock::now_nanos().max(0) as u64 / 1_000_000
}
