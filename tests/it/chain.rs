//! Membership contract and sync on a real anvil chain started by the test.

use std::sync::Arc;

use alloy::network::EthereumWallet;
use alloy::primitives::{keccak256, Address, U256};
use alloy::providers::{Provider, ProviderBuilder};
use rln_chain::contract::{ContractParams, RlnMembership};
use rln_chain::{MembershipSync, RetryPolicy, RpcPool, SyncConfig};
use rln_core::{Fr, Identity, MerkleTree, RlnIdentifier, TREE_DEPTH};
use rln_db::{DbConfig, RlnDb};
use rln_zk::{ProofRequest, ProofVerdict, Verifier};

use rln_testkit::chain::{account, free_port, spawn_persistent_anvil as persistent_anvil, to_u256};

pub use rln_testkit::TestChain as Chain;

pub async fn chain() -> Chain {
    Chain::start().await
}

/// The root of the contract's leaves, computed here from its `leaves` view.
pub async fn contract_root(chain: &Chain) -> Fr {
    let count = chain.membership().memberCount().call().await.unwrap();
    let leaves = chain.membership().leaves(0, count).call().await.unwrap();
    let mut tree = MerkleTree::in_memory(TREE_DEPTH).unwrap();
    let leaves: Vec<(u64, Fr)> = leaves
        .iter()
        .enumerate()
        .map(|(i, v)| {
            (
                i as u64,
                rln_core::fr_from_le_bytes(&v.to_le_bytes::<32>()).unwrap(),
            )
        })
        .collect();
    tree.set_leaves(&leaves).unwrap();
    tree.root().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_registrations_sync_to_the_contract_root() {
    let chain = chain().await;
    let dir = tempfile::tempdir().unwrap();
    let (db, sync) = chain.follower(dir.path(), 37);
    sync.check_chain().await.unwrap();

    let members: Vec<Identity> = (0..200u64)
        .map(|i| Identity::from_seed(&i.to_le_bytes()))
        .collect();
    for (i, member) in members.iter().enumerate() {
        let index = chain.register(member, (i % 100 + 1) as u32).await;
        assert_eq!(index as usize, i);
        if i == 120 {
            // Sync half-way through, so the rest arrives by following.
            sync.sync_once().await.unwrap();
        }
    }
    let report = sync.sync_once().await.unwrap();
    assert!(report.events > 0);
    assert!(report.ranges.iter().all(|(from, to)| to - from < 37));
    assert_eq!(db.next_index().unwrap(), 200);
    assert_eq!(db.root().unwrap(), contract_root(&chain).await);
    assert!(db.is_root_acceptable(&db.root().unwrap()));

    // A membership proof served by the node verifies.
    let index = 150u64;
    let member = &members[index as usize];
    let path = db.proof(index).unwrap();
    let request = ProofRequest::for_signal(
        member,
        51,
        50,
        &path,
        b"synced",
        rln_core::epoch_to_fr(1),
        RlnIdentifier::waku(),
    );
    let proof = crate::common::prover()
        .prove(&request, &mut rand::thread_rng())
        .unwrap();
    assert_eq!(proof.merkle_root, db.root().unwrap());
    assert_eq!(Verifier::dev().unwrap().verify(&proof), ProofVerdict::Valid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_and_slash_zero_the_leaf_an_erased_deposit_is_still_slashed_and_bad_slashes_revert() {
    let chain = chain().await;
    let dir = tempfile::tempdir().unwrap();
    let (db, sync) = chain.follower(dir.path(), 1000);
    let (a, b, c) = (
        Identity::from_seed(b"a"),
        Identity::from_seed(b"b"),
        Identity::from_seed(b"c"),
    );
    for id in [&a, &b, &c] {
        chain.register(id, 2).await;
    }
    sync.sync_once().await.unwrap();
    assert_ne!(db.leaf(0).unwrap(), Fr::from(0u64));

    // The holder erases a.
    chain
        .membership()
        .erase(to_u256(a.commitment()))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();

    // Someone else slashes b with its secret: commit, then reveal in a later block.
    let receiver = Address::repeat_byte(0x42);
    let secret = to_u256(b.secret());
    let commitment =
        keccak256([secret.to_be_bytes::<32>().as_slice(), receiver.as_slice()].concat());
    let membership = RlnMembership::new(chain.contract, account(&chain.anvil, 1));
    // A reveal without a commitment reverts.
    assert!(membership
        .revealSlash(secret, receiver)
        .call()
        .await
        .is_err());
    membership
        .commitSlash(commitment)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    membership
        .revealSlash(secret, receiver)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert_eq!(
        chain.provider.get_balance(receiver).await.unwrap(),
        U256::from(2000u64)
    );

    // A wrong secret reverts even with its own commitment.
    let wrong = secret + U256::from(1u64);
    let wrong_commitment =
        keccak256([wrong.to_be_bytes::<32>().as_slice(), receiver.as_slice()].concat());
    membership
        .commitSlash(wrong_commitment)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let _ = chain
        .provider
        .raw_request::<_, String>("evm_mine".into(), ())
        .await;
    assert!(membership
        .revealSlash(wrong, receiver)
        .call()
        .await
        .is_err());

    // a erased itself before anyone slashed it: its deposit is frozen, not paid out, and the
    // node's slasher still takes it (the spam-then-erase race the withdrawal delay closes).
    let slasher = rln_chain::Slasher::new(
        &chain.anvil.endpoint(),
        &format!("0x{}", alloy::hex::encode(chain.anvil.keys()[3].to_bytes())),
        chain.contract,
        Some(Address::repeat_byte(0x43)),
        None,
    )
    .unwrap();
    assert!(slasher.is_slashable(&a.commitment()).await.unwrap());
    assert!(!slasher.is_slashable(&b.commitment()).await.unwrap());
    slasher.slash(&a.secret()).await.unwrap();
    assert_eq!(
        chain
            .provider
            .get_balance(Address::repeat_byte(0x43))
            .await
            .unwrap(),
        U256::from(2000u64)
    );
    assert!(!slasher.is_slashable(&a.commitment()).await.unwrap());
    let again = slasher.slash(&a.secret()).await.unwrap_err().to_string();
    assert!(again.contains("already used"), "{again}");

    sync.sync_once().await.unwrap();
    assert_eq!(db.leaf(0).unwrap(), Fr::from(0u64));
    assert_eq!(db.leaf(1).unwrap(), Fr::from(0u64));
    assert_eq!(db.leaf(2).unwrap(), c.rate_commitment(2).unwrap());
    assert_eq!(db.root().unwrap(), contract_root(&chain).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_is_followed() {
    let chain = chain().await;
    let dir = tempfile::tempdir().unwrap();
    let (db, sync) = chain.follower(dir.path(), 1000);
    chain.register(&Identity::from_seed(b"kept"), 1).await;
    sync.sync_once().await.unwrap();

    let snapshot: U256 = chain
        .provider
        .raw_request("evm_snapshot".into(), ())
        .await
        .unwrap();
    let dropped = Identity::from_seed(b"dropped");
    chain.register(&dropped, 3).await;
    chain
        .register(&Identity::from_seed(b"dropped too"), 3)
        .await;
    sync.sync_once().await.unwrap();
    assert_eq!(db.next_index().unwrap(), 3);

    let reverted: bool = chain
        .provider
        .raw_request("evm_revert".into(), (snapshot,))
        .await
        .unwrap();
    assert!(reverted);
    let replacement = Identity::from_seed(b"replacement");
    chain.register(&replacement, 5).await;
    // Make the new branch at least as long as the old one.
    for _ in 0..3 {
        let _: String = chain
            .provider
            .raw_request("evm_mine".into(), ())
            .await
            .unwrap();
    }
    let report = sync.sync_once().await.unwrap();
    assert!(report.rolled_back_to.is_some(), "{report:?}");
    assert_eq!(db.next_index().unwrap(), 2);
    assert_eq!(db.leaf(1).unwrap(), replacement.rate_commitment(5).unwrap());
    assert!(db
        .leaves()
        .unwrap()
        .iter()
        .all(|(_, l)| *l != dropped.rate_commitment(3).unwrap()));
    assert_eq!(db.root().unwrap(), contract_root(&chain).await);
    db.check_consistency().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_from_the_checkpoint() {
    let chain = chain().await;
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = {
        let (db, sync) = chain.follower(dir.path(), 1000);
        for i in 0..5u64 {
            chain.register(&Identity::from_seed(&[i as u8]), 1).await;
        }
        sync.sync_once().await.unwrap();
        db.checkpoint().unwrap().number
    };
    for i in 5..8u64 {
        chain.register(&Identity::from_seed(&[i as u8]), 1).await;
    }
    let (db, sync) = chain.follower(dir.path(), 1000);
    let report = sync.sync_once().await.unwrap();
    assert_eq!(
        report.ranges.first().map(|r| r.0),
        Some(checkpoint + 1),
        "{report:?}"
    );
    assert_eq!(db.next_index().unwrap(), 8);
    assert_eq!(db.root().unwrap(), contract_root(&chain).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_chain_and_missing_contract_are_reported() {
    let chain = chain().await;
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(RlnDb::open(dir.path(), chain.db_config()).unwrap());
    let rpc = RpcPool::new(&[chain.anvil.endpoint()], RetryPolicy::default()).unwrap();
    let wrong_chain = MembershipSync::new(rpc, Arc::clone(&db), SyncConfig::new(chain.contract, 1));
    let err = wrong_chain.check_chain().await.unwrap_err();
    assert!(err.to_string().contains("chain id 31337"), "{err}");
    let rpc = RpcPool::new(&[chain.anvil.endpoint()], RetryPolicy::default()).unwrap();
    let no_contract = MembershipSync::new(
        rpc,
        db,
        SyncConfig::new(Address::repeat_byte(9), chain.anvil.chain_id()),
    );
    let err = no_contract.check_chain().await.unwrap_err();
    assert!(err.to_string().contains("no contract"), "{err}");
    // A dead endpoint is retried, then reported with the endpoint named.
    let dead = RpcPool::new(
        &["http://127.0.0.1:9".to_string()],
        RetryPolicy {
            attempts: 2,
            base_delay: std::time::Duration::from_millis(10),
            max_delay: std::time::Duration::from_millis(10),
        },
    )
    .unwrap();
    let err = dead.block_number().await.unwrap_err();
    assert!(err.to_string().contains("127.0.0.1:9"), "{err}");
}

async fn wait_for(
    status: &mut tokio::sync::watch::Receiver<rln_chain::SyncStatus>,
    what: &str,
    done: impl Fn(&rln_chain::SyncStatus) -> bool,
) {
    let reached = {
        let wait = status.wait_for(|s| done(s));
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(30), wait).await,
            Ok(Ok(_))
        )
    };
    assert!(
        reached,
        "timed out waiting for {what}: {:?}",
        *status.borrow()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_recovers_when_the_rpc_process_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("anvil-state.json");
    let port = free_port();
    let mut node = persistent_anvil(port, &state);
    let endpoint = format!("http://127.0.0.1:{port}");
    // anvil's default mnemonic: account 0.
    let key: alloy::signers::local::PrivateKeySigner =
        "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
            .parse()
            .unwrap();
    rln_chain::http::install_provider();
    let provider = ProviderBuilder::new()
        .with_simple_nonce_management()
        .wallet(EthereumWallet::from(key))
        .connect_http(endpoint.parse().unwrap())
        .erased();
    let contract = rln_chain::deploy(&provider, ContractParams::default())
        .await
        .unwrap();
    let register = |i: u64| {
        let provider = provider.clone();
        async move {
            rln_chain::register(
                &provider,
                contract,
                &Identity::from_seed(&i.to_le_bytes()),
                1,
            )
            .await
            .unwrap()
        }
    };
    for i in 0..10 {
        register(i).await;
    }

    let db = Arc::new(
        RlnDb::open(
            dir.path().join("db"),
            DbConfig {
                contract: contract.0 .0,
                sync_writes: false,
                ..DbConfig::default()
            },
        )
        .unwrap(),
    );
    let retry = RetryPolicy {
        attempts: 2,
        base_delay: std::time::Duration::from_millis(50),
        max_delay: std::time::Duration::from_millis(100),
    };
    let sync = Arc::new(MembershipSync::new(
        RpcPool::new(std::slice::from_ref(&endpoint), retry).unwrap(),
        Arc::clone(&db),
        SyncConfig {
            poll_interval: std::time::Duration::from_millis(100),
            // anvil's own chain id.
            ..SyncConfig::new(contract, 31_337)
        },
    ));
    let mut status = sync.status();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn({
        let sync = Arc::clone(&sync);
        async move { sync.run(stop_rx).await }
    });
    wait_for(&mut status, "the first sync", |s| {
        s.synced && s.members == 10
    })
    .await;

    // Stop the RPC node (it saves its chain): the node reports not synced and keeps running.
    std::process::Command::new("kill")
        .args(["-TERM", &node.id().to_string()])
        .status()
        .unwrap();
    node.wait().unwrap();
    wait_for(&mut status, "the outage to be reported", |s| {
        !s.synced && s.last_error.is_some()
    })
    .await;
    assert_eq!(
        db.next_index().unwrap(),
        10,
        "state kept through the outage"
    );
    assert!(db.is_root_acceptable(&db.root().unwrap()));

    // Restart it: sync resumes by itself and picks up new registrations.
    let mut node = persistent_anvil(port, &state);
    for i in 10..15 {
        register(i).await;
    }
    wait_for(&mut status, "recovery", |s| s.synced && s.members == 15).await;
    let contract_view = RlnMembership::new(contract, provider.clone());
    let count = contract_view.memberCount().call().await.unwrap();
    assert_eq!(count, 15);
    let _ = stop.send(true);
    task.await.unwrap();
    db.check_consistency().unwrap();
    let _ = node.kill();
    let _ = node.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_fails_over_to_a_live_one() {
    let chain = chain().await;
    chain.register(&Identity::from_seed(b"failover"), 1).await;
    let retry = RetryPolicy {
        attempts: 3,
        base_delay: std::time::Duration::from_millis(10),
        max_delay: std::time::Duration::from_millis(10),
    };
    let endpoints = ["http://127.0.0.1:9".to_string(), chain.anvil.endpoint()];
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(RlnDb::open(dir.path(), chain.db_config()).unwrap());
    let sync = MembershipSync::new(
        RpcPool::new(&endpoints, retry).unwrap(),
        Arc::clone(&db),
        SyncConfig::new(chain.contract, chain.anvil.chain_id()),
    );
    sync.check_chain().await.unwrap();
    sync.sync_once().await.unwrap();
    assert_eq!(db.next_index().unwrap(), 1);
    assert_eq!(db.root().unwrap(), contract_root(&chain).await);
}

/// An HTTP JSON-RPC proxy in front of anvil that refuses `eth_getLogs` over more than
/// `max_range` blocks, as hosted endpoints do, and records every log range asked for.
async fn range_limited_proxy(
    upstream: String,
    max_range: u64,
) -> (String, Arc<std::sync::Mutex<Vec<(u64, u64, bool)>>>) {
    use axum::{extract::State, routing::post, Json, Router};
    type Shared = (
        String,
        u64,
        Arc<std::sync::Mutex<Vec<(u64, u64, bool)>>>,
        reqwest::Client,
    );
    async fn handle(
        State((upstream, max_range, log, client)): State<Shared>,
        Json(request): Json<serde_json::Value>,
    ) -> Json<serde_json::Value> {
        if request["method"] == "eth_getLogs" {
            let block = |k: &str| {
                u64::from_str_radix(
                    request["params"][0][k]
                        .as_str()
                        .unwrap()
                        .trim_start_matches("0x"),
                    16,
                )
                .unwrap()
            };
            let (from, to) = (block("fromBlock"), block("toBlock"));
            let refused = to - from + 1 > max_range;
            log.lock().unwrap().push((from, to, refused));
            if refused {
                return Json(serde_json::json!({
                    "jsonrpc": "2.0",
                    "id": request["id"],
                    "error": {"code": -32005, "message": format!("query exceeds max block range {max_range}")}
                }));
            }
        }
        let response = client.post(&upstream).json(&request).send().await.unwrap();
        Json(response.json().await.unwrap())
    }
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    rln_chain::http::install_provider();
    let state: Shared = (upstream, max_range, log.clone(), reqwest::Client::new());
    let app = Router::new().route("/", post(handle)).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_log_range_is_halved_until_the_endpoint_accepts_it() {
    let chain = chain().await;
    for i in 0..30u64 {
        chain
            .register(&Identity::from_seed(&[100 + i as u8]), 1)
            .await;
    }
    let (url, log) = range_limited_proxy(chain.anvil.endpoint(), 8).await;
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(RlnDb::open(dir.path(), chain.db_config()).unwrap());
    let rpc = RpcPool::new(&[url], RetryPolicy::default()).unwrap();
    let sync = MembershipSync::new(
        rpc,
        Arc::clone(&db),
        SyncConfig {
            max_block_range: 1000,
            ..SyncConfig::new(chain.contract, chain.anvil.chain_id())
        },
    );
    let report = sync.sync_once().await.unwrap();
    let asked = log.lock().unwrap().clone();
    assert!(asked[0].2, "the first, large range is refused: {asked:?}");
    assert!(asked.iter().filter(|a| a.2).all(|a| a.1 - a.0 + 1 > 8));
    assert!(
        report.ranges.iter().all(|(f, t)| t - f < 8),
        "{:?}",
        report.ranges
    );
    // The accepted ranges tile the history without gaps.
    for pair in report.ranges.windows(2) {
        assert_eq!(pair[0].1 + 1, pair[1].0);
    }
    assert_eq!(db.next_index().unwrap(), 30);
    assert_eq!(db.root().unwrap(), contract_root(&chain).await);
}

/// What [`tampering_proxy`] does to answers.
#[derive(Debug, Default)]
struct Tamper {
    /// Drop the last log of this many non-empty `eth_getLogs` answers.
    truncations: usize,
    /// Report the head this many blocks behind (a responsive endpoint that lags).
    head_lag: u64,
    /// Answer every `eth_getLogs` with these logs (an endpoint still on a replaced fork).
    stale_logs: Option<serde_json::Value>,
}

/// An HTTP JSON-RPC proxy in front of anvil that tampers with answers as `Tamper` says.
async fn tampering_proxy(upstream: String) -> (String, Arc<std::sync::Mutex<Tamper>>) {
    use axum::{extract::State, routing::post, Json, Router};
    type Shared = (String, Arc<std::sync::Mutex<Tamper>>, reqwest::Client);
    async fn handle(
        State((upstream, tamper, client)): State<Shared>,
        Json(request): Json<serde_json::Value>,
    ) -> Json<serde_json::Value> {
        let response = client.post(&upstream).json(&request).send().await.unwrap();
        let mut answer: serde_json::Value = response.json().await.unwrap();
        let mut t = tamper.lock().unwrap();
        if request["method"] == "eth_getLogs" && t.truncations > 0 {
            if let Some(logs) = answer["result"].as_array_mut() {
                if logs.pop().is_some() {
                    t.truncations -= 1;
                }
            }
        }
        if request["method"] == "eth_getLogs" {
            if let Some(stale) = &t.stale_logs {
                answer["result"] = stale.clone();
            }
        }
        if request["method"] == "eth_blockNumber" && t.head_lag > 0 {
            let head = u64::from_str_radix(
                answer["result"].as_str().unwrap().trim_start_matches("0x"),
                16,
            )
            .unwrap();
            answer["result"] = format!("0x{:x}", head.saturating_sub(t.head_lag)).into();
        }
        Json(answer)
    }
    let tamper = Arc::new(std::sync::Mutex::new(Tamper::default()));
    rln_chain::http::install_provider();
    let state: Shared = (upstream, tamper.clone(), reqwest::Client::new());
    let app = Router::new().route("/", post(handle)).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, tamper)
}

fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 2,
        base_delay: std::time::Duration::from_millis(10),
        max_delay: std::time::Duration::from_millis(10),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_log_answer_is_fetched_again_and_never_applied() {
    let chain = chain().await;
    for i in 0..6u64 {
        chain
            .register(&Identity::from_seed(&[40 + i as u8]), 1)
            .await;
    }
    let (url, tamper) = tampering_proxy(chain.anvil.endpoint()).await;
    tamper.lock().unwrap().truncations = 2;
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(RlnDb::open(dir.path(), chain.db_config()).unwrap());
    let sync = MembershipSync::new(
        RpcPool::new(&[url], quick_retry()).unwrap(),
        Arc::clone(&db),
        SyncConfig::new(chain.contract, chain.anvil.chain_id()),
    );
    for _ in 0..2 {
        let err = sync.sync_once().await.unwrap_err().to_string();
        assert!(err.contains("fetched again"), "{err}");
        assert_eq!(
            db.next_index().unwrap(),
            0,
            "nothing of a short answer is applied"
        );
    }
    sync.sync_once().await.unwrap();
    assert_eq!(db.next_index().unwrap(), 6);
    assert_eq!(db.root().unwrap(), contract_root(&chain).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responsive_but_lagging_endpoint_is_not_followed() {
    let chain = chain().await;
    chain.register(&Identity::from_seed(b"before"), 1).await;
    let (lagging, tamper) = tampering_proxy(chain.anvil.endpoint()).await;
    tamper.lock().unwrap().head_lag = 3;
    // The lagging endpoint is listed first, so it is the one a plain pool would use.
    let endpoints = [lagging, chain.anvil.endpoint()];
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(RlnDb::open(dir.path(), chain.db_config()).unwrap());
    let sync = MembershipSync::new(
        RpcPool::new(&endpoints, quick_retry()).unwrap(),
        Arc::clone(&db),
        SyncConfig::new(chain.contract, chain.anvil.chain_id()),
    );
    sync.sync_once().await.unwrap();
    for i in 0..2u8 {
        chain.register(&Identity::from_seed(&[200 + i]), 1).await;
    }
    let report = sync.sync_once().await.unwrap();
    let head = account(&chain.anvil, 0).get_block_number().await.unwrap();
    assert_eq!(
        report.head, head,
        "synced to the real head, not 3 blocks behind"
    );
    assert_eq!(db.next_index().unwrap(), 3);
    assert_eq!(db.root().unwrap(), contract_root(&chain).await);
}

/// The membership logs of the last block, as anvil answers `eth_getLogs`.
async fn logs_of_head(chain: &Chain) -> serde_json::Value {
    let head = chain.provider.get_block_number().await.unwrap();
    let filter = serde_json::json!([{
        "address": chain.contract.to_string(),
        "fromBlock": format!("0x{head:x}"),
        "toBlock": format!("0x{head:x}"),
    }]);
    let logs: serde_json::Value = chain
        .provider
        .raw_request("eth_getLogs".into(), filter)
        .await
        .unwrap();
    assert_eq!(logs.as_array().map(Vec::len), Some(1), "{logs}");
    logs
}

/// A registration on a fork that a reorganisation replaced, with another registration at the
/// same height and index on the canonical chain. An endpoint that keeps serving the old
/// fork's logs passes every count and index check; only their block hash gives them away.
async fn fork_with_replaced_registration(chain: &Chain) -> serde_json::Value {
    chain.register(&Identity::from_seed(b"kept"), 1).await;
    let snapshot: U256 = chain
        .provider
        .raw_request("evm_snapshot".into(), ())
        .await
        .unwrap();
    chain.register(&Identity::from_seed(b"replaced"), 1).await;
    let stale = logs_of_head(chain).await;
    let reverted: bool = chain
        .provider
        .raw_request("evm_revert".into(), (snapshot,))
        .await
        .unwrap();
    assert!(reverted);
    chain.register(&Identity::from_seed(b"canonical"), 2).await;
    stale
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_from_a_replaced_fork_are_refused_and_the_tree_stays_the_contracts() {
    let chain = chain().await;
    let stale = fork_with_replaced_registration(&chain).await;
    let (url, tamper) = tampering_proxy(chain.anvil.endpoint()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(RlnDb::open(dir.path(), chain.db_config()).unwrap());
    let sync = MembershipSync::new(
        RpcPool::new(&[url], quick_retry()).unwrap(),
        Arc::clone(&db),
        SyncConfig::new(chain.contract, chain.anvil.chain_id()),
    );
    tamper.lock().unwrap().stale_logs = Some(stale);
    for _ in 0..2 {
        let err = sync.sync_once().await.unwrap_err().to_string();
        assert!(err.contains("replaced fork"), "{err}");
        assert_eq!(db.next_index().unwrap(), 0, "nothing of the stale answer");
        assert!(db.checkpoint().is_none(), "the range is fetched again");
    }
    tamper.lock().unwrap().stale_logs = None;
    sync.sync_once().await.unwrap();
    assert_eq!(db.next_index().unwrap(), 2);
    assert_eq!(
        db.leaf(1).unwrap(),
        Identity::from_seed(b"canonical")
            .rate_commitment(2)
            .unwrap()
    );
    assert_eq!(db.root().unwrap(), contract_root(&chain).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_stuck_on_a_replaced_fork_is_dropped_for_a_healthy_one() {
    let chain = chain().await;
    let stale = fork_with_replaced_registration(&chain).await;
    let (url, tamper) = tampering_proxy(chain.anvil.endpoint()).await;
    tamper.lock().unwrap().stale_logs = Some(stale);
    // The stale endpoint is listed first and stays stale.
    let endpoints = [url, chain.anvil.endpoint()];
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(RlnDb::open(dir.path(), chain.db_config()).unwrap());
    let sync = MembershipSync::new(
        RpcPool::new(&endpoints, quick_retry()).unwrap(),
        Arc::clone(&db),
        SyncConfig::new(chain.contract, chain.anvil.chain_id()),
    );
    let mut refused = 0;
    for _ in 0..3 {
        match sync.sync_once().await {
            Ok(_) => break,
            Err(err) => {
                assert!(err.to_string().contains("replaced fork"), "{err}");
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 1, "the stale endpoint is used first, and once");
    assert_eq!(db.next_index().unwrap(), 2);
    assert_eq!(db.root().unwrap(), contract_root(&chain).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_missing_an_erasure_is_fetched_again_and_never_applied() {
    let chain = chain().await;
    let gone = Identity::from_seed(b"gone");
    chain.register(&Identity::from_seed(b"stays"), 1).await;
    chain.register(&gone, 1).await;
    chain
        .membership()
        .erase(to_u256(gone.commitment()))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    // The truncated answer lacks the erasure only: every registration is there, so the
    // member count agrees; the contract's erased count does not.
    let (url, tamper) = tampering_proxy(chain.anvil.endpoint()).await;
    tamper.lock().unwrap().truncations = 1;
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(RlnDb::open(dir.path(), chain.db_config()).unwrap());
    let sync = MembershipSync::new(
        RpcPool::new(&[url], quick_retry()).unwrap(),
        Arc::clone(&db),
        SyncConfig::new(chain.contract, chain.anvil.chain_id()),
    );
    let err = sync.sync_once().await.unwrap_err().to_string();
    assert!(err.contains("erased but the contract counts 1"), "{err}");
    assert_eq!(db.next_index().unwrap(), 0, "nothing of the short answer");
    sync.sync_once().await.unwrap();
    assert_eq!(db.erased_count(), 1);
    assert_eq!(db.leaf(1).unwrap(), Fr::from(0u64));
    assert_eq!(db.root().unwrap(), contract_root(&chain).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_endpoints_sync_and_register_and_an_untrusted_certificate_is_refused() {
    let chain = chain().await;
    chain.register(&Identity::from_seed(b"over tls"), 1).await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = rln_testkit::tls::TlsProxy::start(&chain.anvil.endpoint(), dir.path()).await;
    assert!(proxy.url.starts_with("https://"));

    // The proxy's CA is not in the system's store: without the CA file, nothing is applied.
    let untrusted = tempfile::tempdir().unwrap();
    let db = Arc::new(RlnDb::open(untrusted.path(), chain.db_config()).unwrap());
    let sync = MembershipSync::new(
        RpcPool::new(std::slice::from_ref(&proxy.url), quick_retry()).unwrap(),
        Arc::clone(&db),
        SyncConfig::new(chain.contract, chain.anvil.chain_id()),
    );
    assert!(sync.sync_once().await.is_err());
    assert!(db.checkpoint().is_none());

    // With it, sync runs over TLS...
    let trusted = tempfile::tempdir().unwrap();
    let db = Arc::new(RlnDb::open(trusted.path(), chain.db_config()).unwrap());
    let sync = MembershipSync::new(
        RpcPool::with_ca(
            std::slice::from_ref(&proxy.url),
            quick_retry(),
            Some(&proxy.ca_pem),
        )
        .unwrap(),
        Arc::clone(&db),
        SyncConfig::new(chain.contract, chain.anvil.chain_id()),
    );
    sync.sync_once().await.unwrap();
    assert_eq!(db.next_index().unwrap(), 1);

    // ...and so do signed transactions: a registration through the same endpoint.
    let key = format!("0x{}", alloy::hex::encode(chain.anvil.keys()[4].to_bytes()));
    let (provider, _) = rln_chain::wallet_provider(&proxy.url, &key, Some(&proxy.ca_pem)).unwrap();
    let registered =
        rln_chain::register(&provider, chain.contract, &Identity::from_seed(b"tls 2"), 2)
            .await
            .unwrap();
    assert_eq!(registered.index, 1);
    sync.sync_once().await.unwrap();
    assert_eq!(db.next_index().unwrap(), 2);
    assert_eq!(db.root().unwrap(), contract_root(&chain).await);
}
