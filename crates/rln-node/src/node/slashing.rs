//! The slasher: settles every piece of stored spam evidence against the chain.

use std::sync::Arc;
use std::time::Duration;

use rln_chain::Slasher;
use rln_core::fr_to_hex;
use rln_db::{RlnDb, SpamEvidence};

use rln_relay::metrics::{Metrics, ResultLabel};

use tokio::sync::watch;

/// The result labels of `rln_node_slashes_total`.
pub(super) const SLASH_RESULTS: [&str; 4] = ["slashed", "gone", "failed", "undone"];

/// Longest wait for one slash (commit and reveal mined) before it counts as failed.
const SLASH_TIMEOUT: Duration = Duration::from_secs(120);
/// First wait before retrying failed slashes; it doubles up to [`SLASH_RETRY_MAX`].
const SLASH_RETRY_MIN: Duration = Duration::from_secs(2);
/// Longest wait between retries.
const SLASH_RETRY_MAX: Duration = Duration::from_secs(300);
/// Pending evidence taken per pass.
const SLASH_BATCH: usize = 64;

/// How the slasher settles a slash.
#[derive(Debug, Clone, Copy)]
pub(super) struct SlashPolicy {
    /// Blocks a landed slash must be buried under before it is settled (`slash.confirmations`).
    pub(super) confirmations: u64,
    /// How often landed slashes are checked while they wait (the chain poll interval).
    pub(super) recheck: Duration,
}

/// Slashes every member whose stored evidence is not settled. The evidence in the database
/// is the queue: the slasher starts with what a previous run left, is woken for new evidence,
/// and retries failures (RPC down, a transaction not mined in time) with growing pauses,
/// rotating through the chain endpoints, until each is slashed or its member is gone. A slash
/// that landed stays pending until it is `confirmations` blocks deep: should a
/// reorganisation undo it (the member is slashable again), it is sent again.
pub(super) async fn run_slasher(
    slashers: Vec<Slasher>,
    policy: SlashPolicy,
    wake: Arc<tokio::sync::Notify>,
    db: Arc<RlnDb>,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut attempts: std::collections::HashMap<[u8; 40], u32> = Default::default();
    let mut pause = SLASH_RETRY_MIN;
    let mut turn = 0usize;
    let count = |result: &str| {
        metrics
            .slashes
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc();
    };
    let record = |evidence: &SpamEvidence, status: &str| {
        if let Err(e) = db.set_slash_status(evidence.epoch, &evidence.nullifier, status) {
            tracing::error!("cannot record the slash status: {e}");
        }
    };
    loop {
        let pending = match db.pending_slashes(SLASH_BATCH) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("cannot read stored spam evidence: {e}");
                Vec::new()
            }
        };
        let mut failed = false;
        let mut waiting = false;
        for evidence in pending {
            if *shutdown.borrow() {
                return;
            }
            let Some(slasher) = slashers.get(turn % slashers.len().max(1)) else {
                return;
            };
            turn += 1;
            if let Some(block) = evidence.landed_block() {
                match confirm_slash(slasher, &evidence, block, policy.confirmations).await {
                    Confirmation::Buried(status) => {
                        record(&evidence, &status);
                        continue;
                    }
                    Confirmation::Waiting => {
                        waiting = true;
                        continue;
                    }
                    Confirmation::Undone => {
                        tracing::warn!(
                            member = %fr_to_hex(&evidence.id_commitment),
                            block,
                            "a reorganisation undid the slash; slashing again"
                        );
                        count("undone");
                    }
                }
            }
            let tries = attempts.entry(evidence.cursor()).or_default();
            *tries += 1;
            let (status, result) = slash_once(slasher, &evidence, *tries, policy).await;
            match result {
                "failed" => failed = true,
                "slashed" if policy.confirmations > 0 => {
                    waiting = true;
                    attempts.remove(&evidence.cursor());
                }
                _ => {
                    attempts.remove(&evidence.cursor());
                }
            }
            count(result);
            record(&evidence, &status);
        }
        let wait = if failed {
            let w = pause;
            pause = (pause * 2).min(SLASH_RETRY_MAX);
            w
        } else {
            pause = SLASH_RETRY_MIN;
            // Nothing pending failed: sleep until new evidence (or a periodic look).
            SLASH_RETRY_MAX
        };
        let wait = if waiting {
            wait.min(policy.recheck)
        } else {
            wait
        };
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// What became of a slash that landed in a block.
#[derive(Debug)]
enum Confirmation {
    /// Deep enough: the settled status to store.
    Buried(String),
    /// Not deep enough yet, or the endpoint cannot tell now (lagging, unreachable).
    Waiting,
    /// The member is slashable again at a head past the slash's block: a reorganisation
    /// dropped the slash.
    Undone,
}

/// Checks a slash that landed in `block` against the chain.
async fn confirm_slash(
    slasher: &Slasher,
    evidence: &SpamEvidence,
    block: u64,
    confirmations: u64,
) -> Confirmation {
    let work = async {
        // The head first: a slashable answer read after it comes from a head at least as high.
        let head = slasher.head_block().await?;
        let slashable = slasher.is_slashable(&evidence.id_commitment).await?;
        Ok::<_, rln_chain::ChainError>((head, slashable))
    };
    match tokio::time::timeout(SLASH_TIMEOUT, work).await {
        // An endpoint whose head is below the slash's block has not seen it yet.
        Ok(Ok((head, true))) if head >= block => Confirmation::Undone,
        Ok(Ok((head, false))) if head >= block.saturating_add(confirmations) => {
            // `landed in block N (reward to R); …` becomes `slashed in block N (reward to R)`.
            let rest = evidence
                .slash_status
                .strip_prefix(rln_db::evidence::LANDED)
                .unwrap_or_default();
            let rest = rest.split(';').next().unwrap_or_default();
            Confirmation::Buried(format!("{}{rest}", rln_db::evidence::SLASHED_IN_BLOCK))
        }
        Ok(Ok(_)) => Confirmation::Waiting,
        Ok(Err(e)) => {
            tracing::debug!("cannot check a landed slash now: {e}");
            Confirmation::Waiting
        }
        Err(_) => Confirmation::Waiting,
    }
}

/// One attempt at slashing the member `evidence` names: the status to store and the metric
/// label (`slashed`, `gone` when nothing is left to take, `failed`).
async fn slash_once(
    slasher: &Slasher,
    evidence: &SpamEvidence,
    attempt: u32,
    policy: SlashPolicy,
) -> (String, &'static str) {
    let member = fr_to_hex(&evidence.id_commitment);
    let work = async {
        if !slasher.is_slashable(&evidence.id_commitment).await? {
            return Ok(None);
        }
        slasher.slash(&evidence.secret).await.map(Some)
    };
    match tokio::time::timeout(SLASH_TIMEOUT, work).await {
        Ok(Ok(Some(outcome))) => {
            tracing::warn!(%member, block = outcome.reveal_block, "spammer slashed");
            let status = if policy.confirmations == 0 {
                format!(
                    "{} {} (reward to {})",
                    rln_db::evidence::SLASHED_IN_BLOCK,
                    outcome.reveal_block,
                    outcome.receiver
                )
            } else {
                format!(
                    "{} {} (reward to {}); settled once {} blocks deep",
                    rln_db::evidence::LANDED,
                    outcome.reveal_block,
                    outcome.receiver,
                    policy.confirmations
                )
            };
            (status, "slashed")
        }
        Ok(Ok(None)) => (
            format!(
                "{}: nothing left to take (slashed already, or erased and its deposit withdrawn)",
                rln_db::evidence::NOT_SLASHED
            ),
            "gone",
        ),
        Ok(Err(e)) => {
            tracing::warn!(%member, attempt, "slash failed, will retry: {e}");
            (format!("attempt {attempt} failed: {e}; retrying"), "failed")
        }
        Err(_) => {
            tracing::warn!(%member, attempt, "slash timed out, will retry");
            (
                format!(
                    "attempt {attempt} timed out after {} s; retrying",
                    SLASH_TIMEOUT.as_secs()
                ),
                "failed",
            )
        }
    }
}
