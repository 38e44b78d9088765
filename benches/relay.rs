//! End-to-end validation through GossipSub on loopback: how many messages per second one
//! node validates (decode, checks, Groth16, nullifier log, delivery) when two publisher nodes
//! flood it, with batch verification and without (batches of one), and the latency from
//! publish to delivery (p50 / p99).
//!
//! Proofs are made before the clock starts (proving is not what is measured), so the
//! validator's clock gap is widened to accept their timestamps. `cargo bench --bench relay`
//! (release) measures 1,024 messages per run; under `cargo test --all-targets` a small
//! version runs once.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rln_core::{epoch_at, epoch_to_fr, Identity, MerkleTree, RlnIdentifier, TREE_DEPTH};
use rln_node::{Node, NodeConfig};
use rln_relay::wire::encode_proof;
use rln_relay::{SignalMode, WakuMessage};
use rln_testkit::chain::CHEAP;
use rln_testkit::node::loopback_config;
use rln_testkit::{TestChain, TestMember};
use rln_zk::ProofRequest;

const TOPIC: &str = "/waku/2/rs/1/0";
const EPOCH: u64 = 3_600;

/// A loopback node for the bench: long epochs and clock gap (the proofs are made up front),
/// no REST API.
fn config(
    chain: &TestChain,
    dir: &std::path::Path,
    member: Option<&TestMember>,
    peers: Vec<String>,
) -> NodeConfig {
    let mut c = loopback_config(chain, dir, member, EPOCH);
    c.network.static_peers = peers;
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

    let chain = TestChain::with_params(CHEAP).await;
    let limit = per_publisher as u32;
    let members: Vec<Identity> = (0..2u8).map(|i| Identity::from_seed(&[b'b', i])).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut keystores = Vec::new();
    for (i, id) in members.iter().enumerate() {
        let member_dir = dir.path().join(format!("member{i}"));
        std::fs::create_dir_all(&member_dir).unwrap();
        let m = chain
            .register_identity(id.clone(), &member_dir, limit)
            .await;
        let index = m.index;
        keystores.push((m, index));
    }

    // Proofs made beforehand and sent to a fresh validator in every run (its nullifier log
    // starts empty), against the tree of the two registrations.
    // The nodes verify with their default key set, Waku's.
    let prover = rln_zk::KeySet::Waku.prover().unwrap();
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
            m.rate_limit_proof = Some(encode_proof(
                &prover.prove(&req, &mut rand::rngs::OsRng).unwrap(),
            ));
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
                &chain,
                &dir.path().join(format!("v-{max_batch}-{round}")),
                None,
                vec![],
            );
            vc.validation.max_batch = max_batch;
            vc.validation.queue = 8_192;
            let validator = Node::start(vc).await.unwrap();
            assert!(
                validator
                    .handle()
                    .wait_synced(Duration::from_secs(30))
                    .await
            );
            while validator.handle().listen_addrs().is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let v_addr: Vec<String> = validator
                .handle()
                .listen_addrs()
                .iter()
                .map(|a| a.to_string())
                .collect();
            let mut publishers = Vec::new();
            for (i, (member, _)) in keystores.iter().enumerate() {
                let pc = config(
                    &chain,
                    &dir.path().join(format!("p{i}-{max_batch}-{round}")),
                    Some(member),
                    v_addr.clone(),
                );
                let p = Node::start(pc).await.unwrap();
                assert!(p.handle().wait_synced(Duration::from_secs(30)).await);
                publishers.push(p);
            }
            // Wait for the mesh.
            loop {
                if validator
                    .handle()
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
            let mut rx = validator.handle().messages();
            let mut sent_at = std::collections::HashMap::new();
            let started = Instant::now();
            let max_len = batches.iter().map(Vec::len).max().unwrap_or(0);
            for k in 0..max_len {
                for (i, msgs) in batches.iter().enumerate() {
                    if let Some(bytes) = msgs.get(k) {
                        let m = WakuMessage::decode(bytes, usize::MAX).unwrap();
                        sent_at.insert(m.hash(TOPIC), Instant::now());
                        publishers[i]
                            .handle()
                            .send_raw(TOPIC, bytes.clone())
                            .await
                            .unwrap();
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
                p.shutdown().await.unwrap();
            }
            validator.shutdown().await.unwrap();
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
