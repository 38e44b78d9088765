//! Membership sync: backfill the contract's events from its deployment block in bounded
//! ranges, then follow new blocks; roll back on reorganisations; resume from the checkpoint.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::rpc::types::Log;
use rln_core::{fr_from_le_bytes, rate_commitment, Fr};
use rln_db::{BlockUpdate, RlnDb};
use tokio::sync::watch;

use crate::contract::RlnMembership;
use crate::error::ChainError;
use crate::rpc::{Pinned, RpcPool};

/// How the node follows the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConfig {
    /// The membership contract.
    pub contract: Address,
    /// The chain the contract lives on.
    pub chain_id: u64,
    /// Blocks per log query (halved when an endpoint refuses a range as too large).
    pub max_block_range: u64,
    /// Blocks behind the head to stay (0 follows the head and relies on reorg rollback).
    pub confirmations: u64,
    /// Time between polls of the head.
    pub poll_interval: Duration,
}

/// Blocks per log query unless set otherwise.
pub const DEFAULT_MAX_BLOCK_RANGE: u64 = 5_000;
/// Confirmations unless set otherwise: follow the head, roll back on reorganisations.
pub const DEFAULT_CONFIRMATIONS: u64 = 0;
/// Time between polls of the head unless set otherwise.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

impl SyncConfig {
    /// Follows `contract` on chain `chain_id` with the default range, confirmations and
    /// polling.
    pub fn new(contract: Address, chain_id: u64) -> Self {
        Self {
            contract,
            chain_id,
            max_block_range: DEFAULT_MAX_BLOCK_RANGE,
            confirmations: DEFAULT_CONFIRMATIONS,
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }
}

/// Where sync stands, for health reports and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStatus {
    /// Caught up with the head (minus confirmations) at the last poll.
    pub synced: bool,
    /// Last block applied.
    pub block: Option<u64>,
    /// Chain head seen at the last successful poll.
    pub head: Option<u64>,
    /// Leaves in the tree (registered members, erased ones included).
    pub members: u64,
    /// The last error, while it persists.
    pub last_error: Option<String>,
}

/// What one pass of [`MembershipSync::sync_once`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// The block ranges queried for logs, in order.
    pub ranges: Vec<(u64, u64)>,
    /// Events applied.
    pub events: usize,
    /// The block the state was rolled back to, if the chain reorganised.
    pub rolled_back_to: Option<u64>,
    /// The head (minus confirmations) synced to.
    pub head: u64,
}

/// Follows the membership contract into an [`RlnDb`].
#[derive(Debug)]
pub struct MembershipSync {
    rpc: RpcPool,
    db: Arc<RlnDb>,
    config: SyncConfig,
    status: watch::Sender<SyncStatus>,
}

impl MembershipSync {
    /// Creates the follower. Nothing is contacted until [`Self::check_chain`] or a sync.
    pub fn new(rpc: RpcPool, db: Arc<RlnDb>, config: SyncConfig) -> Self {
        let (status, _) = watch::channel(SyncStatus::default());
        Self {
            rpc,
            db,
            config,
            status,
        }
    }

    /// Subscribes to status updates.
    pub fn status(&self) -> watch::Receiver<SyncStatus> {
        self.status.subscribe()
    }

    /// Checks that the endpoint serves the configured chain and that the contract exists.
    pub async fn check_chain(&self) -> Result<(), ChainError> {
        let actual = self.rpc.chain_id().await?;
        if actual != self.config.chain_id {
            return Err(ChainError::WrongChain {
                expected: self.config.chain_id,
                actual,
            });
        }
        if !self.rpc.has_code(self.config.contract).await? {
            return Err(ChainError::NoContract(self.config.contract.to_string()));
        }
        Ok(())
    }

    async fn deployment_block(&self, ep: Pinned<'_>) -> Result<u64, ChainError> {
        let contract = RlnMembership::new(self.config.contract, ep.provider());
        let block =
            contract
                .deploymentBlock()
                .call()
                .await
                .map_err(|e| ChainError::Unreachable {
                    what: "deploymentBlock()",
                    endpoints: String::new(),
                    attempts: 1,
                    last_error: e.to_string(),
                })?;
        Ok(block.saturating_to())
    }

    /// Compares the stored blocks with the chain and rolls back to the newest one the chain
    /// still has. Returns the block rolled back to, if any.
    async fn reconcile_reorg(&self, ep: Pinned<'_>) -> Result<Option<u64>, ChainError> {
        let Some(checkpoint) = self.db.checkpoint() else {
            return Ok(None);
        };
        if ep.block_hash(checkpoint.number).await?.map(|h| h.0) == Some(checkpoint.hash) {
            return Ok(None);
        }
        let recent = self.db.recent_blocks()?;
        for stored in recent.iter().skip(1) {
            if ep.block_hash(stored.number).await?.map(|h| h.0) == Some(stored.hash) {
                tracing::warn!(
                    from = checkpoint.number,
                    to = stored.number,
                    "chain reorganisation: rolling membership state back"
                );
                let (db, target) = (self.db.clone(), stored.number);
                tokio::task::spawn_blocking(move || db.rollback_to(target))
                    .await
                    .map_err(|e| {
                        ChainError::Config(format!("the sync's block writer stopped: {e}"))
                    })??;
                return Ok(Some(stored.number));
            }
        }
        Err(ChainError::ReorgTooDeep {
            oldest: recent.last().map_or(checkpoint.number, |c| c.number),
        })
    }

    /// One pass: reconcile reorgs, then apply every block from the checkpoint to the head.
    pub async fn sync_once(&self) -> Result<SyncReport, ChainError> {
        let head = self
            .rpc
            .freshest_head()
            .await?
            .saturating_sub(self.config.confirmations);
        self.sync_until(head).await
    }

    /// Like [`Self::sync_once`], but stops at block `head` (benchmarks, tools). The whole pass
    /// talks to one endpoint (see [`RpcPool::pin`]); an endpoint whose answers do not fit
    /// together is dropped for the next pass.
    pub async fn sync_until(&self, head: u64) -> Result<SyncReport, ChainError> {
        let ep = self.rpc.pin();
        let result = self.sync_pass(ep, head).await;
        if let Err(ChainError::BadEvent { .. }) = &result {
            ep.distrust();
        }
        result
    }

    async fn sync_pass(&self, ep: Pinned<'_>, head: u64) -> Result<SyncReport, ChainError> {
        let mut report = SyncReport {
            rolled_back_to: self.reconcile_reorg(ep).await?,
            ..SyncReport::default()
        };
        report.head = head;
        let mut from = match self.db.checkpoint() {
            Some(checkpoint) => checkpoint.number + 1,
            None => self.deployment_block(ep).await?,
        };
        let mut range = self.config.max_block_range.max(1);
        while from <= head {
            let to = head.min(from + range - 1);
            let logs = match ep.logs(self.config.contract, from, to).await {
                Ok(logs) => logs,
                Err(ChainError::RangeTooLarge { .. }) if to > from => {
                    let size = to - from + 1;
                    range = size / 2;
                    tracing::info!(range, "RPC refused the log range; halving it");
                    continue;
                }
                Err(err) => return Err(err),
            };
            report.ranges.push((from, to));
            report.events += self.apply_logs(ep, &logs, from, to).await?;
            from = to + 1;
        }
        self.publish_status(true, Some(head), None)?;
        Ok(report)
    }

    /// Applies `blocks` in order on a blocking thread (tree hashing and RocksDB writes must not
    /// stall the async runtime).
    async fn apply_blocking(&self, blocks: Vec<BlockUpdate>) -> Result<(), ChainError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            blocks
                .iter()
                .try_for_each(|block| db.apply_block(block).map(|_| ()))
        })
        .await
        .map_err(|e| ChainError::Config(format!("the sync's block writer stopped: {e}")))??;
        Ok(())
    }

    /// Checks the logs of `from..=to` against the endpoint's canonical chain and the
    /// contract's member count, then applies them block by block and moves the checkpoint to
    /// `to`. Nothing of the range is applied if a check fails.
    async fn apply_logs(
        &self,
        ep: Pinned<'_>,
        logs: &[Log],
        from: u64,
        to: u64,
    ) -> Result<usize, ChainError> {
        // The range end's hash first: the member count below is read at exactly this block,
        // and the checkpoint records it.
        let to_hash = ep
            .block_hash(to)
            .await?
            .ok_or_else(|| ChainError::BadEvent {
                block: to,
                reason: format!(
                    "{} served logs up to this block but does not have it (a lagging endpoint)",
                    ep.shown()
                ),
            })?;
        let mut blocks: BTreeMap<u64, BlockUpdate> = BTreeMap::new();
        let mut events = 0;
        for log in logs {
            let number = log.block_number.ok_or_else(|| ChainError::BadEvent {
                block: 0,
                reason: "log without a block number (pending?)".into(),
            })?;
            let hash = log.block_hash.ok_or_else(|| ChainError::BadEvent {
                block: number,
                reason: "log without a block hash".into(),
            })?;
            if !(from..=to).contains(&number) {
                return Err(ChainError::BadEvent {
                    block: number,
                    reason: format!("a log outside the requested blocks {from}..={to}"),
                });
            }
            let Some(leaf) = leaf_change(log, number)? else {
                continue;
            };
            events += 1;
            blocks
                .entry(number)
                .or_insert_with(|| BlockUpdate {
                    number,
                    hash: hash.0,
                    leaves: Vec::new(),
                })
                .leaves
                .push(leaf);
        }
        // Every log must come from the canonical block of its number: logs of a block that a
        // reorganisation replaced (a stale fork, or an endpoint's cache) are refused.
        for block in blocks.values() {
            let canonical = if block.number == to {
                Some(to_hash)
            } else {
                ep.block_hash(block.number).await?
            };
            if canonical.map(|h| h.0) != Some(block.hash) {
                return Err(ChainError::BadEvent {
                    block: block.number,
                    reason: format!(
                        "the logs name block hash {} but the canonical block is {}: they come \
                         from a replaced fork; the range will be fetched again",
                        alloy::primitives::B256::from(block.hash),
                        canonical.map_or_else(|| "missing".to_string(), |h| h.to_string())
                    ),
                });
            }
        }
        let mut next_index = self.db.next_index()?;
        for block in blocks.values() {
            next_index = check_indices(next_index, block)?;
        }
        // The contract counts every index it ever assigned: if the logs' registrations do not
        // bring the tree to that count as of `to`, some are missing (a truncated answer).
        let on_chain = ep.member_count_at(self.config.contract, to_hash).await?;
        if on_chain != next_index {
            return Err(ChainError::BadEvent {
                block: to,
                reason: format!(
                    "the logs up to this block register {next_index} members but the contract \
                     counts {on_chain}: the RPC answer is missing logs; the range will be \
                     fetched again"
                ),
            });
        }
        // The same for erasures: the contract counts them, the tree must agree after the range.
        let erased = erased_after(&self.db, blocks.values())?;
        let on_chain = ep.erased_count_at(self.config.contract, to_hash).await?;
        if on_chain != erased {
            return Err(ChainError::BadEvent {
                block: to,
                reason: format!(
                    "the logs up to this block leave {erased} members erased but the contract \
                     counts {on_chain}: the RPC answer is missing logs; the range will be \
                     fetched again"
                ),
            });
        }
        let last_with_events = blocks.keys().next_back().copied();
        // Hashing the tree and writing RocksDB block the thread: off the async runtime.
        self.apply_blocking(blocks.into_values().collect()).await?;
        if last_with_events != Some(to) {
            // Record the end of the range so it is not scanned again after a restart.
            self.apply_blocking(vec![BlockUpdate {
                number: to,
                hash: to_hash.0,
                leaves: Vec::new(),
            }])
            .await?;
        }
        Ok(events)
    }

    fn publish_status(
        &self,
        synced: bool,
        head: Option<u64>,
        last_error: Option<String>,
    ) -> Result<(), ChainError> {
        let members = self.db.next_index()?;
        let block = self.db.checkpoint().map(|c| c.number);
        self.status.send_modify(|status| {
            status.synced = synced;
            status.block = block;
            if head.is_some() {
                status.head = head;
            }
            status.members = members;
            status.last_error = last_error;
        });
        Ok(())
    }

    /// Syncs until `shutdown` turns true: every poll interval, and again after errors (which
    /// mark the node not synced but never stop it; the RPC pool backs off between tries).
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if let Err(err) = self.sync_once().await {
                let err = self.rpc.redact(&err.to_string());
                tracing::warn!(error = %err, "membership sync failed; retrying");
                let _ = self.publish_status(false, None, Some(err));
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.poll_interval) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }
}

/// Checks that `block`'s leaf changes fit a tree whose next free index is `next_index`: each
/// registration takes exactly the next index, each erasure an index already taken. Returns
/// the next free index after the block. A gap or a repeat means the endpoint left logs out
/// (or served them twice): nothing of the range is applied, and the next pass fetches it
/// again.
fn check_indices(mut next_index: u64, block: &BlockUpdate) -> Result<u64, ChainError> {
    for (index, leaf) in &block.leaves {
        let registration = *leaf != Fr::from(0u64);
        let fits = if registration {
            *index == next_index
        } else {
            *index < next_index
        };
        if !fits {
            return Err(ChainError::BadEvent {
                block: block.number,
                reason: format!(
                    "{} of index {index} while the next free index is {next_index}: the RPC \
                     answer is missing or repeating logs; the range will be fetched again",
                    if registration {
                        "a registration"
                    } else {
                        "an erasure"
                    }
                ),
            });
        }
        if registration {
            next_index += 1;
        }
    }
    Ok(next_index)
}

/// The erased count after `blocks` are applied on top of `db`: an erasure counts if the leaf
/// it zeroes held a member (set before the range, or earlier in it).
fn erased_after<'a>(
    db: &RlnDb,
    blocks: impl Iterator<Item = &'a BlockUpdate>,
) -> Result<u64, ChainError> {
    let zero = Fr::from(0u64);
    let mut erased = db.erased_count();
    let mut in_range: std::collections::HashMap<u64, Fr> = std::collections::HashMap::new();
    for block in blocks {
        for (index, leaf) in &block.leaves {
            let before = match in_range.get(index) {
                Some(value) => *value,
                None => db.leaf(*index)?,
            };
            if *leaf == zero && before != zero {
                erased += 1;
            }
            in_range.insert(*index, *leaf);
        }
    }
    Ok(erased)
}

fn u256_to_fr(value: U256, block: u64) -> Result<Fr, ChainError> {
    fr_from_le_bytes(&value.to_le_bytes::<32>()).map_err(|e| ChainError::BadEvent {
        block,
        reason: format!("id commitment is not a field element: {e}"),
    })
}

/// The leaf change a membership log makes: `(index, new leaf)`. Other events of the
/// contract (slash commitments, withdrawals) change no leaf.
fn leaf_change(log: &Log, block: u64) -> Result<Option<(u64, Fr)>, ChainError> {
    let bad = |e: alloy::sol_types::Error| ChainError::BadEvent {
        block,
        reason: e.to_string(),
    };
    match log.topic0() {
        Some(topic) if *topic == <RlnMembership::MembershipRegistered as alloy::sol_types::SolEvent>::SIGNATURE_HASH => {
            let event = log.log_decode::<RlnMembership::MembershipRegistered>().map_err(bad)?;
            let data = event.inner.data;
            let id = u256_to_fr(data.idCommitment, block)?;
            let leaf = rate_commitment(id, u64::from(data.userMessageLimit)).map_err(|e| {
                ChainError::BadEvent {
                    block,
                    reason: e.to_string(),
                }
            })?;
            Ok(Some((u64::from(data.index), leaf)))
        }
        Some(topic) if *topic == <RlnMembership::MembershipErased as alloy::sol_types::SolEvent>::SIGNATURE_HASH => {
            let event = log.log_decode::<RlnMembership::MembershipErased>().map_err(bad)?;
            Ok(Some((u64::from(event.inner.data.index), Fr::from(0u64))))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(leaves: &[(u64, u64)]) -> BlockUpdate {
        BlockUpdate {
            number: 7,
            hash: [0; 32],
            leaves: leaves.iter().map(|&(i, v)| (i, Fr::from(v))).collect(),
        }
    }

    #[test]
    fn registrations_take_the_next_index_and_erasures_a_taken_one() {
        assert_eq!(
            check_indices(3, &block(&[(3, 9), (4, 9), (1, 0)])).unwrap(),
            5
        );
        assert_eq!(check_indices(0, &block(&[])).unwrap(), 0);
        // A registration skipped (a truncated answer), repeated, or an erasure of a free index.
        for bad in [&[(4, 9)][..], &[(3, 9), (3, 9)], &[(3, 0)], &[(2, 9)]] {
            let err = check_indices(3, &block(bad)).unwrap_err().to_string();
            assert!(err.contains("fetched again"), "{bad:?}: {err}");
        }
    }
}
