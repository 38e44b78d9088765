//! Several RPC endpoints with failover and exponential backoff.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{BlockNumberOrTag, Filter, Log};
use alloy::transports::TransportError;

use crate::error::ChainError;

/// How hard to try before giving up on a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries per call, across all endpoints.
    pub attempts: u32,
    /// Delay after the first failure; doubles after each one.
    pub base_delay: Duration,
    /// Longest delay between tries.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 6,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// Read-only access to the chain through one or more endpoints. A failing endpoint hands
/// over to the next one; the last one that worked is tried first.
#[derive(Debug)]
pub struct RpcPool {
    /// The configured URLs (secret: API keys); only ever shown redacted.
    urls: Vec<String>,
    /// The same, redacted, for logs and errors.
    shown: Vec<String>,
    providers: Vec<DynProvider>,
    current: AtomicUsize,
    retry: RetryPolicy,
}

/// How long [`RpcPool::freshest_head`] waits for the first endpoint to answer.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How much longer it waits for the others once one has answered.
const HEAD_GRACE: Duration = Duration::from_millis(300);

/// Whether an RPC error means "ask for fewer blocks" (wording differs between providers).
fn is_range_error(err: &TransportError) -> bool {
    is_range_error_text(&err.to_string())
}

/// [`is_range_error`] on the error's text. A rate limit ("429", "too many requests", "rate
/// limit exceeded", code -32029) is not a range error, though providers word both as a limit
/// exceeded: halving the range would only make more requests.
fn is_range_error_text(text: &str) -> bool {
    let text = text.to_lowercase();
    let rate_limited = [
        "rate limit",
        "too many requests",
        "429",
        "-32029",
        "exceeded the quota",
    ]
    .iter()
    .any(|needle| text.contains(needle));
    !rate_limited
        && [
            "block range",
            "range is too large",
            "range too large",
            "more than 10000",
            "query returned more than",
            "limit exceeded",
            "-32005",
            "too many blocks",
        ]
        .iter()
        .any(|needle| text.contains(needle))
}

impl RpcPool {
    /// Connects to every URL (`http://…` or `https://…`). Fails on a malformed URL or
    /// another scheme.
    pub fn new(urls: &[String], retry: RetryPolicy) -> Result<Self, ChainError> {
        Self::with_ca(urls, retry, None)
    }

    /// Like [`Self::new`], also trusting the PEM certificates in `ca_file` for `https://`.
    pub fn with_ca(
        urls: &[String],
        retry: RetryPolicy,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Self, ChainError> {
        let client = crate::http::client(ca_file)?;
        let mut providers = Vec::with_capacity(urls.len());
        for url in urls {
            let parsed = crate::http::parse_url(url)?;
            providers.push(
                ProviderBuilder::new()
                    .connect_reqwest(client.clone(), parsed)
                    .erased(),
            );
        }
        if providers.is_empty() {
            return Err(ChainError::Unreachable {
                what: "connect",
                endpoints: String::new(),
                attempts: 0,
                last_error: "no RPC endpoint configured".into(),
            });
        }
        Ok(Self {
            shown: urls.iter().map(|u| crate::redact_url(u)).collect(),
            urls: urls.to_vec(),
            providers,
            current: AtomicUsize::new(0),
            retry,
        })
    }

    /// `text` with the configured URLs redacted (errors of the HTTP client quote them).
    pub fn redact(&self, text: &str) -> String {
        crate::redact::redact_in(text, &self.urls)
    }

    /// Asks every endpoint for its head at once and makes the one furthest ahead current, so a
    /// responsive endpoint that lags (a stale or syncing node) is not used while another is
    /// ahead; returns that head. With one endpoint, or none answering, it is a plain
    /// [`Self::block_number`] with its retries.
    pub async fn freshest_head(&self) -> Result<u64, ChainError> {
        if self.providers.len() < 2 {
            return self.block_number().await;
        }
        let mut asks = tokio::task::JoinSet::new();
        for (index, p) in self.providers.iter().enumerate() {
            let p = p.clone();
            asks.spawn(async move { (index, p.get_block_number().await.ok()) });
        }
        // Every endpoint gets HEAD_TIMEOUT, but once one has answered the others get only
        // HEAD_GRACE more: a dead endpoint must not slow every pass down.
        let mut deadline = tokio::time::Instant::now() + HEAD_TIMEOUT;
        let mut best: Option<(usize, u64)> = None;
        while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, asks.join_next()).await {
            if let Ok((index, Some(head))) = joined {
                if best.is_none() {
                    deadline = deadline.min(tokio::time::Instant::now() + HEAD_GRACE);
                }
                // On a tie the current endpoint stays: one the pool moved away from (after
                // a bad answer) must be ahead to be chosen again.
                let current = self.current.load(Ordering::Relaxed) % self.providers.len();
                if best.is_none_or(|(_, b)| head > b || (head == b && index == current)) {
                    best = Some((index, head));
                }
            }
        }
        asks.abort_all();
        let Some((index, head)) = best else {
            return self.block_number().await;
        };
        let current = self.current.swap(index, Ordering::Relaxed) % self.providers.len();
        if current != index {
            tracing::info!(
                endpoint = %self.shown[index],
                head,
                "using the RPC endpoint furthest ahead (instead of {})",
                self.shown[current]
            );
        }
        Ok(head)
    }

    /// `withdrawalDelay()` of the membership contract, in seconds: how long an erased
    /// member's deposit stays slashable.
    pub async fn withdrawal_delay(&self, contract: Address) -> Result<u64, ChainError> {
        self.call("withdrawalDelay", |p| async move {
            crate::contract::RlnMembership::new(contract, p)
                .withdrawalDelay()
                .call()
                .await
                .map_err(|e| match e {
                    alloy::contract::Error::TransportError(t) => t,
                    other => TransportError::local_usage_str(&other.to_string()),
                })
        })
        .await
    }

    /// The current endpoint, held for a whole sync pass: the logs, block hashes and contract
    /// calls of the pass then all describe one node's view of the chain, instead of mixing two
    /// endpoints that may be on different forks or at different heights.
    pub fn pin(&self) -> Pinned<'_> {
        Pinned {
            pool: self,
            index: self.current.load(Ordering::Relaxed) % self.providers.len(),
        }
    }

    /// Moves the pool off endpoint `index` if it is still the current one.
    fn rotate_from(&self, index: usize) {
        let next = (index + 1) % self.providers.len();
        let _ = self
            .current
            .compare_exchange(index, next, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The endpoint that answered last (or will be tried first).
    pub fn provider(&self) -> DynProvider {
        self.providers[self.current.load(Ordering::Relaxed) % self.providers.len()].clone()
    }

    /// Runs `call` against the current endpoint, moving to the next one with a growing
    /// delay after each failure.
    pub async fn call<T, F, Fut>(&self, what: &'static str, call: F) -> Result<T, ChainError>
    where
        F: Fn(DynProvider) -> Fut,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        let endpoint = || self.current.load(Ordering::Relaxed) % self.providers.len();
        let failed = |index: usize| {
            self.current
                .store((index + 1) % self.providers.len(), Ordering::Relaxed)
        };
        self.retrying(what, endpoint, failed, call)
            .await
            .map_err(|last_error| ChainError::Unreachable {
                what,
                endpoints: self.shown.join(", "),
                attempts: self.retry.attempts,
                last_error,
            })
    }

    /// The retry loop of [`Self::call`] and [`Pinned`]'s calls: each attempt runs `call` on
    /// the endpoint `endpoint()` names, `failed(index)` follows each failure, and the pauses
    /// between attempts double. Returns the last error, redacted, when every attempt failed.
    async fn retrying<T, F, Fut>(
        &self,
        what: &'static str,
        endpoint: impl Fn() -> usize,
        failed: impl Fn(usize),
        call: F,
    ) -> Result<T, String>
    where
        F: Fn(DynProvider) -> Fut,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        let mut delay = self.retry.base_delay;
        let mut last_error = String::new();
        for attempt in 0..self.retry.attempts.max(1) {
            let index = endpoint();
            match call(self.providers[index].clone()).await {
                Ok(value) => return Ok(value),
                Err(err) => {
                    last_error = self.redact(&err.to_string());
                    tracing::warn!(endpoint = %self.shown[index], attempt, error = %last_error, "RPC {what} failed");
                    failed(index);
                    if attempt + 1 < self.retry.attempts {
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(self.retry.max_delay);
                    }
                }
            }
        }
        Err(last_error)
    }

    /// The chain id.
    pub async fn chain_id(&self) -> Result<u64, ChainError> {
        self.call("eth_chainId", |p| async move { p.get_chain_id().await })
            .await
    }

    /// The latest block number.
    pub async fn block_number(&self) -> Result<u64, ChainError> {
        self.call(
            "eth_blockNumber",
            |p| async move { p.get_block_number().await },
        )
        .await
    }

    /// The hash of block `number`, or `None` if the chain is not that long.
    pub async fn block_hash(&self, number: u64) -> Result<Option<B256>, ChainError> {
        self.call("eth_getBlockByNumber", |p| block_hash_on(p, number))
            .await
    }

    /// Whether code is deployed at `address`.
    pub async fn has_code(&self, address: Address) -> Result<bool, ChainError> {
        self.call("eth_getCode", |p| async move {
            Ok(!p.get_code_at(address).await?.is_empty())
        })
        .await
    }
}

/// The hash of block `number` on one endpoint, `None` past its head.
async fn block_hash_on(p: DynProvider, number: u64) -> Result<Option<B256>, TransportError> {
    let block = p
        .get_block_by_number(BlockNumberOrTag::Number(number))
        .await?;
    Ok(block.map(|b| b.header.hash))
}

/// One endpoint of an [`RpcPool`], pinned for a sync pass (see [`RpcPool::pin`]). Calls are
/// retried on this endpoint only; when they keep failing, or when the caller finds its
/// answers inconsistent ([`Self::distrust`]), the pool moves on so the next pass uses
/// another endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Pinned<'a> {
    pool: &'a RpcPool,
    index: usize,
}

impl Pinned<'_> {
    /// The endpoint, redacted, for logs and errors.
    pub fn shown(&self) -> &str {
        &self.pool.shown[self.index]
    }

    /// The endpoint's provider.
    pub fn provider(&self) -> DynProvider {
        self.pool.providers[self.index].clone()
    }

    /// Makes the pool use another endpoint from the next pass on.
    pub fn distrust(&self) {
        self.pool.rotate_from(self.index);
    }

    /// Runs `call` on this endpoint with the pool's retries; when every attempt fails the pool
    /// moves on for the next pass.
    async fn call<T, F, Fut>(&self, what: &'static str, call: F) -> Result<T, ChainError>
    where
        F: Fn(DynProvider) -> Fut,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        self.pool
            .retrying(what, || self.index, |_| {}, call)
            .await
            .map_err(|last_error| {
                self.distrust();
                ChainError::Unreachable {
                    what,
                    endpoints: self.shown().to_string(),
                    attempts: self.pool.retry.attempts,
                    last_error,
                }
            })
    }

    /// The hash of block `number`, or `None` if this endpoint's chain is not that long.
    pub async fn block_hash(&self, number: u64) -> Result<Option<B256>, ChainError> {
        self.call("eth_getBlockByNumber", |p| block_hash_on(p, number))
            .await
    }

    /// `memberCount()` of the membership contract at the block with hash `block` (EIP-1898,
    /// canonical blocks only): the count and the hash cannot come from different forks.
    pub async fn member_count_at(&self, contract: Address, block: B256) -> Result<u64, ChainError> {
        use crate::contract::RlnMembership::memberCountCall;
        self.count_at("memberCount", contract, block, memberCountCall {})
            .await
    }

    /// `erasedCount()` of the membership contract at the block with hash `block`.
    pub async fn erased_count_at(&self, contract: Address, block: B256) -> Result<u64, ChainError> {
        use crate::contract::RlnMembership::erasedCountCall;
        self.count_at("erasedCount", contract, block, erasedCountCall {})
            .await
    }

    /// A `uint32` view of the contract, called at the canonical block with hash `block`.
    async fn count_at<C>(
        &self,
        what: &'static str,
        contract: Address,
        block: B256,
        call: C,
    ) -> Result<u64, ChainError>
    where
        C: alloy::sol_types::SolCall<Return = u32>,
    {
        let input = alloy::primitives::Bytes::from(call.abi_encode());
        let at = alloy::eips::BlockId::Hash(alloy::eips::RpcBlockHash {
            block_hash: block,
            require_canonical: Some(true),
        });
        self.call(what, |p| {
            let tx = alloy::rpc::types::TransactionRequest::default()
                .to(contract)
                .input(input.clone().into());
            async move {
                let out = p.call(tx).block(at).await?;
                C::abi_decode_returns(&out)
                    .map(u64::from)
                    .map_err(|e| TransportError::local_usage_str(&e.to_string()))
            }
        })
        .await
    }

    /// Logs of `address` in `from..=to`. A refusal for size is returned at once as
    /// [`ChainError::RangeTooLarge`] (the caller splits the range) instead of being retried.
    pub async fn logs(&self, address: Address, from: u64, to: u64) -> Result<Vec<Log>, ChainError> {
        let filter = Filter::new().address(address).from_block(from).to_block(to);
        match self.provider().get_logs(&filter).await {
            Ok(logs) => Ok(logs),
            Err(err) if is_range_error(&err) => Err(ChainError::RangeTooLarge { from, to }),
            Err(_) => {
                self.call("eth_getLogs", |p| {
                    let filter = filter.clone();
                    async move { p.get_logs(&filter).await }
                })
                .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limit_is_not_a_range_error() {
        for text in [
            "query returned more than 10000 results",
            "block range is too large",
            "server returned an error response: error code -32005: limit exceeded",
            "eth_getLogs is limited to a 10,000 range: too many blocks",
        ] {
            assert!(is_range_error_text(text), "{text}");
        }
        for text in [
            "HTTP error 429 with body: Too Many Requests",
            "server returned an error response: error code -32005: rate limit exceeded",
            "error code -32029: you have exceeded the quota",
            "connection refused",
        ] {
            assert!(!is_range_error_text(text), "{text}");
        }
    }
}
