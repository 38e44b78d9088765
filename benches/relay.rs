//! End-to-end validation through GossipSub on loopback: how many messages per second one
//! node validates (decode, checks, Groth16, nullifier log, delivery) when two publisher nodes
//! flood it, with batch verification and without (batches of one), and the latency from
//! publish to delivery (p50 / p99).
//!
//! Proofs are made before the clock starts (proving is not what is measured), so the
//! validator's clock gap is widened to accept their timestamps. `cargo bench --bench relay`
//! (release) measures 1,024 messages per run; under `cargo test --all-targets` a small
//! version runs once.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy::node_bindings::Anvil;
use alloy::primitives::U256;
use alloy::providers::{Provider, ProviderBuilder};
use rln_chain::contract::{ContractParams, RlnMembership};
use rln_chain::keystore::{Keystore, KeystoreMembership};
use rln_core::{
    epoch_at, epoch_to_fr, fr_to_le_bytes, Identity, MerkleTree, RlnIdentifier, TREE_DEPTH,
};
use rln_relay::config::MembershipConfig;
use rln_relay::wire::SignalMode;
use rln_relay::{Node, NodeConfig, WakuMessage};
use rln_zk::{ProofRequest, Prover};

const TOPIC: &str = "/waku/2/rs/1/0";
const EPOCH: u64 = 3_600;

fn config(dir: &std::path::Path, rpc: &str, contract: &str, peers: Vec<String>) -> NodeConfig {
    let mut c = NodeConfig {
        data_dir: dir.to_path_buf(),
        ..NodeConfig::default()
    };
    c.chain.rpc = vec![rpc.to_string()];
    c.chain.contract = contract.to_string();
    c.chain.poll_interval_ms = 200;
    c.network.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
    c.network.static_peers = peers;
    c.network.heartbeat_ms = 300;
    c.rln.epoch_secs = EPOCH;
    c.rln.max_clock_gap_secs = 3_600;
    c.rest.listen = None;
    c
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Run {
    rate: f64,
    p50: Duration,
    p99: Duration,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let per_publisher: usize = if measuring { 400 } else { 16 };
    let rounds = if measuring { 3 } else { 1 };

    let anvil_path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    let anvil = Anvil::at(anvil_path).spawn();
    let provider = ProviderBuilder::new()
        .wallet(anvil.wallet().unwrap())
        .connect_http(anvil.endpoint_url())
        .erased();
    let params = ContractParams {
        deposit_per_message: U256::from(1u64),
        min_limit: 1,
        max_limit: 60_000,
    };
    let contract = rln_chain::deploy(&provider, params).await.unwrap();
    let membership = RlnMembership::new(contract, provider.clone());
    let limit = per_publisher as u32;
    let members: Vec<Identity> = (0..2u8).map(|i| Identity::from_seed(&[b'b', i])).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut keystores = Vec::new();
    for (i, id) in members.iter().enumerate() {
        let receipt = membership
            .register(U256::from_le_bytes(fr_to_le_bytes(&id.commitment())), limit)
            .value(U256::from(limit))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        let index = receipt
            .decoded_log::<RlnMembership::MembershipRegistered>()
            .unwrap()
            .data
            .index;
        let path = dir.path().join(format!("ks{i}.json"));
        let mut ks = Keystore::load_or_new(&path).unwrap();
        let m = KeystoreMembership::new(
            id,
            None,
            anvil.chain_id(),
            &contract.to_checksum(None),
            u64::from(index),
            u64::from(limit),
        );
        ks.add(&m, b"pw", 1_000, &mut rand::rngs::OsRng).unwrap();
        ks.save(&path).unwrap();
        keystores.push((path, u64::from(index)));
    }
    let (rpc, contract_s) = (anvil.endpoint(), contract.to_string());

    // Proofs made beforehand and sent to a fresh validator in every run (its nullifier log
    // starts empty), against the tree of the two registrations.
    let prover = Prover::dev().unwrap();
    let mut tree = MerkleTree::in_memory(TREE_DEPTH).unwrap();
    let leaves: Vec<(u64, rln_core::Fr)> = members
        .iter()
        .zip(&keystores)
        .map(|(id, (_, index))| (*index, id.rate_commitment(u64::from(limit)).unwrap()))
        .collect();
    tree.set_leaves(&leaves).unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let epoch = epoch_at(now.as_secs(), EPOCH);
    let proving = Instant::now();
    let mut batches: Vec<Vec<Vec<u8>>> = Vec::new();
    for (i, id) in members.iter().enumerate() {
        let path = tree.proof(keystores[i].1).unwrap();
        let mut msgs = Vec::new();
        for k in 0..per_publisher {
            let mut m = WakuMessage {
                payload: format!("bench {i} {k}").into_bytes(),
                content_topic: "/bench/1/load/proto".into(),
                timestamp: Some(now.as_nanos() as i64 + k as i64),
                ..Default::default()
            };
            let signal = m.signal(SignalMode::Timestamped);
            let req = ProofRequest::for_signal(
                id,
                u64::from(limit),
                k as u64,
                &path,
                &signal,
                epoch_to_fr(epoch),
                RlnIdentifier::waku(),
            );
            m.rate_limit_proof = Some(prover.prove(&req, &mut rand::rngs::OsRng).unwrap().encode());
            msgs.push(m.encode());
        }
        batches.push(msgs);
    }
    println!(
        "relay: {} proofs made in {:.1} s",
        per_publisher * members.len(),
        proving.elapsed().as_secs_f64()
    );
    println!(
        "relay: {} publishers × {per_publisher} messages per run, {rounds} runs per mode",
        members.len()
    );
    for (mode, max_batch) in [("batched (up to 64)", 64usize), ("one by one", 1)] {
        let mut runs = Vec::new();
        for round in 0..rounds {
            let mut vc = config(
                &dir.path().join(format!("v-{max_batch}-{round}")),
                &rpc,
                &contract_s,
                vec![],
            );
            vc.validation.max_batch = max_batch;
            vc.validation.queue = 8_192;
            let validator = Node::start(vc).await.unwrap();
            assert!(validator.wait_synced(Duration::from_secs(30)).await);
            while validator.listen_addrs().is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let v_addr: Vec<String> = validator
                .listen_addrs()
                .iter()
                .map(|a| a.to_string())
                .collect();
            let mut publishers = Vec::new();
            for (i, (ks, _)) in keystores.iter().enumerate() {
                let mut pc = config(
                    &dir.path().join(format!("p{i}-{max_batch}-{round}")),
                    &rpc,
                    &contract_s,
                    v_addr.clone(),
                );
                pc.membership = Some(MembershipConfig {
                    keystore: ks.clone(),
                    password: "pw".into(),
                    id: None,
                });
                let p = Node::start(pc).await.unwrap();
                assert!(p.wait_synced(Duration::from_secs(30)).await);
                publishers.push(p);
            }
            // Wait for the mesh.
            loop {
                if validator
                    .peers()
                    .await
                    .iter()
                    .filter(|p| p.topics.iter().any(|t| t == TOPIC))
                    .count()
                    == publishers.len()
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;

            let total = batches.iter().map(Vec::len).sum::<usize>();
            let mut rx = validator.messages();
            let mut sent_at = std::collections::HashMap::new();
            let started = Instant::now();
            let max_len = batches.iter().map(Vec::len).max().unwrap_or(0);
            for k in 0..max_len {
                for (i, msgs) in batches.iter().enumerate() {
                    if let Some(bytes) = msgs.get(k) {
                        let m = WakuMessage::decode(bytes, usize::MAX).unwrap();
                        sent_at.insert(m.hash(TOPIC), Instant::now());
                        publishers[i].send_raw(TOPIC, bytes.clone()).await.unwrap();
                    }
                }
            }
            let mut latencies = Vec::with_capacity(total);
            let mut last = started;
            while latencies.len() < total {
                match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
                    Ok(Ok(d)) => {
                        last = Instant::now();
                        if let Some(t) = sent_at.get(&d.hash) {
                            latencies.push(last - *t);
                        }
                    }
                    other => panic!(
                        "validator stalled after {} of {total}: {other:?}",
                        latencies.len()
                    ),
                }
            }
            latencies.sort();
            let run = Run {
                rate: total as f64 / (last - started).as_secs_f64(),
                p50: percentile(&latencies, 0.5),
                p99: percentile(&latencies, 0.99),
            };
            println!(
                "  {mode}, run {round}: {total} messages, {:.0} msg/s, latency p50 {:.1} ms, p99 {:.1} ms",
                run.rate,
                run.p50.as_secs_f64() * 1e3,
                run.p99.as_secs_f64() * 1e3
            );
            runs.push(run);
            for p in publishers {
                p.shutdown().await;
            }
            validator.shutdown().await;
        }
        runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        let mid = &runs[runs.len() / 2];
        println!(
            "relay {mode}: median {:.0} msg/s, p50 {:.1} ms, p99 {:.1} ms",
            mid.rate,
            mid.p50.as_secs_f64() * 1e3,
            mid.p99.as_secs_f64() * 1e3
        );
    }
}
