//! Relay throughput of real `rln-node run` processes, with the load generator (this process)
//! outside them: bare GossipSub peers publish pre-proved messages to the first node at an
//! offered rate, and a sink peer behind the last node times their delivery.
//!
//! - **Sweep**: one node, offered rates rising until it falls behind; each point on a fresh
//!   node. The knee is the highest offered rate it still delivers (≥ 95 %); the peak is the
//!   most it delivered per second.
//! - **Latency**: publish-to-delivery p50 / p99 at 50 % of the knee, one hop and three
//!   (three nodes in a line, without discovery so the line holds).
//! - **Proof floods**: the knee's honest traffic plus 1 % and 10 % forged messages (proofs that
//!   fail only the Groth16 check) from 100 peer ids sending a few each, so that graylisting
//!   alone cannot save the node; the honest delivered rate against the clean run's.
//!
//! - **Memory**: the first node publishes as a member too (its prover loaded, the membership
//!   part prepared); its peak resident memory over the clean runs at the knee.
//!
//! The pool of proved messages is made once and kept in cargo's target directory
//! (`rln-load-pool/`, or `$RLN_LOAD_POOL_DIR`). So that it stays valid all week, the nodes
//! run with one-week epochs and a one-week clock gap: the per-message work is the same.
//! `make bench-throughput` builds the release `rln-node` and runs this (`--sweep-only` after
//! the harness's `--bench` stops after the sweep; `RLN_NODE_BINARY` runs another build of the
//! node, for a before-and-after in one sitting); under
//! `cargo test --all-targets` a small version runs once and checks every delivery.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rln_core::Identity;
use rln_node::NodeConfig;
use rln_testkit::chain::CHEAP;
use rln_testkit::load::{self, percentile, LoadPeer, PoolMember, Traffic};
use rln_testkit::node::NodeProcess;
use rln_testkit::TestChain;

const TOPIC: &str = "/waku/2/rs/1/0";
/// One-week epochs keep the cached pool valid for the week.
const EPOCH_SECS: u64 = 7 * 86_400;
/// Honest publisher peers.
const PUBLISHERS: usize = 4;

struct Scale {
    /// Messages in the pool.
    pool: usize,
    /// Seconds of traffic per run.
    secs: f64,
    /// Offered rates of the sweep; it stops early once the node has clearly fallen behind.
    rates: Vec<f64>,
    /// Peer ids sending forged messages.
    flood_peers: usize,
    /// Runs per headline figure (the median is reported).
    repeats: usize,
}

/// What one run measured.
#[derive(Debug, Clone)]
struct Run {
    offered: f64,
    sent: usize,
    delivered: usize,
    rate: f64,
    p50: Duration,
    p99: Duration,
    forged_delivered: usize,
    forged_rejected: f64,
    /// The first node's peak resident memory, in bytes.
    peak_rss: Option<u64>,
    /// The first node's mean proofs per verification batch, and verification time per proof.
    mean_batch: f64,
    per_proof: Duration,
}

/// Forged traffic beside the honest one, and how the node batches proofs.
#[derive(Debug, Clone, Copy)]
struct Flood {
    /// Forged messages' share of all messages.
    share: f64,
    /// Peer ids they come from.
    peers: usize,
    /// `validation.group_by_standing`.
    grouping: bool,
}

/// No forged traffic, the node's defaults.
const CLEAN: Flood = Flood {
    share: 0.0,
    peers: 0,
    grouping: true,
};

impl Flood {
    fn forged(share: f64, peers: usize) -> Self {
        Self {
            share,
            peers,
            grouping: true,
        }
    }
}

struct Bench {
    chain: TestChain,
    dir: tempfile::TempDir,
    binary: std::path::PathBuf,
    pool: Vec<Vec<u8>>,
    /// The first node's membership: it loads the prover and prepares its proofs.
    member: rln_testkit::TestMember,
    runs: usize,
    /// The highest peak resident memory of a first node over all runs, in bytes.
    peak_rss: u64,
}

fn node_config(
    chain: &TestChain,
    dir: &std::path::Path,
    member: Option<&rln_testkit::TestMember>,
    peers: Vec<String>,
    grouping: bool,
) -> NodeConfig {
    let mut c = load::planned_config(chain, dir, member, EPOCH_SECS, peers);
    // The node's own defaults: as many validation workers as cores.
    c.validation.workers = 0;
    c.lightpush.enabled = false;
    c.filter.enabled = false;
    c.validation.group_by_standing = grouping;
    c
}

impl Bench {
    /// Starts `hops` nodes in a line, the first taking the load, the last feeding the sink.
    async fn nodes(&mut self, hops: usize, grouping: bool) -> Vec<NodeProcess> {
        self.runs += 1;
        let mut nodes: Vec<NodeProcess> = Vec::new();
        for h in 0..hops {
            let dir = self.dir.path().join(format!("run{}-node{h}", self.runs));
            let peers = nodes
                .last()
                .map(|n| vec![n.p2p.clone()])
                .unwrap_or_default();
            let member = (h == 0).then_some(&self.member);
            let config = node_config(&self.chain, &dir, member, peers, grouping);
            nodes.push(NodeProcess::start_with_config(&self.binary, &config, &dir));
        }
        for n in &nodes {
            n.wait_synced().await;
        }
        // Each inner node meshes with both neighbours, the first with the second.
        for (h, n) in nodes.iter().enumerate().take(hops.saturating_sub(1)) {
            let want = if h == 0 { 1.0 } else { 2.0 };
            let deadline = Instant::now() + Duration::from_secs(30);
            while n.metric("libp2p_gossipsub_mesh_peer_counts", "").await < want {
                assert!(Instant::now() < deadline, "node {h} formed no mesh in 30 s");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        nodes
    }

    /// Offers `rate` honest messages per second for `secs`, plus `forged_share` of the total
    /// as forged messages from `flood_peers` peer ids, through `hops` nodes (proofs grouped
    /// by their sender's standing, or all in one batch).
    async fn run(&mut self, hops: usize, rate: f64, secs: f64, flood: Flood) -> Run {
        let Flood {
            share: forged_share,
            peers: flood_peers,
            grouping,
        } = flood;
        let honest = ((rate * secs) as usize).min(self.pool.len());
        let forged_count = (honest as f64 * forged_share / (1.0 - forged_share)).round() as usize;
        let nodes = self.nodes(hops, grouping).await;
        let first = &nodes[0];
        let last = &nodes[hops - 1];

        let mut sink = LoadPeer::new(Some(TOPIC));
        sink.connect(&last.p2p, TOPIC).await;
        let mut publishers = Vec::new();
        for _ in 0..PUBLISHERS + if forged_count > 0 { flood_peers } else { 0 } {
            let mut p = LoadPeer::new(None);
            p.connect(&first.p2p, TOPIC).await;
            publishers.push(p);
        }

        let mut messages = self.pool[..honest].to_vec();
        messages.extend(load::forged(
            &self.pool[0],
            forged_count,
            &mut rand::thread_rng(),
        ));
        let traffic = Arc::new(Traffic::new(messages));
        let lead = Duration::from_millis(200);
        let mut schedules: Vec<Vec<(Duration, usize)>> = vec![Vec::new(); publishers.len()];
        for k in 0..honest {
            let at = lead + Duration::from_secs_f64(k as f64 / rate);
            schedules[k % PUBLISHERS].push((at, k));
        }
        for j in 0..forged_count {
            let at = lead + Duration::from_secs_f64(j as f64 * secs / forged_count as f64);
            schedules[PUBLISHERS + j % flood_peers].push((at, honest + j));
        }
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let sink_task = tokio::spawn(sink.sink(traffic.clone(), stopped.clone()));
        let mut tasks = Vec::new();
        for (p, schedule) in publishers.into_iter().zip(schedules) {
            tasks.push(tokio::spawn(p.publish(
                TOPIC,
                traffic.clone(),
                schedule,
                stopped.clone(),
            )));
        }
        // Wait for the sending to end, then until every honest message arrived or none did
        // for two seconds.
        tokio::time::sleep(lead + Duration::from_secs_f64(secs)).await;
        load::until_delivered_or_quiet(
            honest,
            Duration::from_secs(2),
            Duration::from_millis(100),
            || traffic.delivered(0..honest),
        )
        .await;
        let forged_rejected = first
            .metric("waku_rln_invalid_messages_total", "type=\"invalid_proof\"")
            .await;
        // Where the first node's verification time went: proofs per batch, time per proof.
        let mean_batch = first
            .histogram_mean("rln_node_verification_batch_size")
            .await;
        let per_proof = Duration::from_secs_f64(
            first
                .histogram_mean("waku_rln_proof_verification_duration_seconds")
                .await,
        );
        let peak_rss = first.peak_rss();
        self.peak_rss = self.peak_rss.max(peak_rss.unwrap_or(0));
        let _ = stop.send(true);
        let mut failed = 0;
        for t in tasks {
            failed += t.await.expect("a publisher task");
        }
        sink_task.await.expect("the sink task");
        assert_eq!(failed, 0, "publishes failed in the load peers");
        drop(nodes);

        let mut latencies = Vec::new();
        let (mut first_sent, mut last_received) = (Duration::MAX, Duration::ZERO);
        for i in 0..honest {
            let sent = traffic.sent_at(i).expect("every message was sent");
            first_sent = first_sent.min(sent);
            if let Some(received) = traffic.received_at(i) {
                last_received = last_received.max(received);
                latencies.push(received.saturating_sub(sent));
            }
        }
        latencies.sort();
        let delivered = latencies.len();
        Run {
            offered: rate,
            sent: honest,
            delivered,
            rate: delivered as f64 / last_received.saturating_sub(first_sent).as_secs_f64(),
            p50: percentile(&latencies, 0.5),
            p99: percentile(&latencies, 0.99),
            forged_delivered: traffic.delivered(honest..honest + forged_count),
            forged_rejected,
            peak_rss,
            mean_batch,
            per_proof,
        }
    }

    /// The run with the median delivered rate of `repeats`.
    async fn median(
        &mut self,
        repeats: usize,
        hops: usize,
        rate: f64,
        secs: f64,
        flood: Flood,
    ) -> Run {
        let mut runs = Vec::new();
        for _ in 0..repeats {
            let run = self.run(hops, rate, secs, flood).await;
            print_run(
                &format!(
                    "  {hops} hop(s), {:.0} % forged{}",
                    flood.share * 100.0,
                    if flood.grouping { "" } else { ", one batch" }
                ),
                &run,
            );
            runs.push(run);
        }
        runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        runs.swap_remove(runs.len() / 2)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn print_run(what: &str, r: &Run) {
    println!(
        "{what}: offered {:.0}/s, delivered {}/{} at {:.0}/s, latency p50 {:.1} ms, p99 {:.1} ms; \
         first node: {:.1} proofs per batch, {:.3} ms per proof{}",
        r.offered,
        r.delivered,
        r.sent,
        r.rate,
        ms(r.p50),
        ms(r.p99),
        r.mean_batch,
        ms(r.per_proof),
        if r.forged_rejected > 0.0 {
            format!(", {:.0} forged proofs rejected", r.forged_rejected)
        } else {
            String::new()
        }
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let scale = if measuring {
        Scale {
            pool: 12_000,
            secs: 2.0,
            rates: vec![
                500.0, 1_000.0, 1_500.0, 2_000.0, 2_500.0, 3_000.0, 4_000.0, 6_000.0,
            ],
            flood_peers: 100,
            repeats: 3,
        }
    } else {
        Scale {
            pool: 60,
            secs: 1.0,
            rates: vec![30.0],
            flood_peers: 10,
            repeats: 1,
        }
    };

    let chain = TestChain::with_params(CHEAP).await;
    let per_member = (scale.pool / 4) as u64;
    let mut members = Vec::new();
    for i in 0..4u8 {
        let identity = Identity::from_seed(&[b'l', b'o', b'a', b'd', i]);
        let index = chain.register(&identity, per_member as u32).await;
        members.push(PoolMember {
            identity,
            index,
            limit: per_member,
        });
    }
    // The first node's own membership: a leaf of the pool's tree (it proves none of the pool).
    let dir = tempfile::tempdir().expect("a temporary directory");
    let member = chain
        .register_identity(Identity::from_seed(b"load node"), dir.path(), 1)
        .await;
    members.push(PoolMember {
        identity: member.identity.clone(),
        index: member.index,
        limit: member.limit,
    });
    let pool = load::honest_pool(&members, scale.pool, EPOCH_SECS, &load::pool_dir());
    let mut bench = Bench {
        chain,
        dir,
        binary: load::node_binary(),
        pool,
        member,
        runs: 0,
        peak_rss: 0,
    };
    println!(
        "throughput: {} on {} core(s); {PUBLISHERS} publisher peers, {:.0} s of traffic per run",
        bench.binary.display(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        scale.secs
    );

    // The sweep: one node, rising offered rates.
    let mut sweep: Vec<Run> = Vec::new();
    for &rate in &scale.rates {
        if rate * scale.secs > scale.pool as f64 {
            break;
        }
        let run = bench.run(1, rate, scale.secs, CLEAN).await;
        print_run("sweep", &run);
        let behind = run.rate < 0.8 * rate;
        sweep.push(run);
        if behind && sweep.iter().rev().take(2).all(|r| r.rate < 0.8 * r.offered) {
            break;
        }
    }
    let knee = sweep
        .iter()
        .filter(|r| r.delivered as f64 >= 0.95 * r.sent as f64 && r.rate >= 0.95 * r.offered)
        .map(|r| r.offered)
        .fold(0.0, f64::max);
    let peak = sweep.iter().map(|r| r.rate).fold(0.0, f64::max);
    println!("throughput: knee {knee:.0} msg/s offered, peak {peak:.0} msg/s delivered");
    if std::env::args().any(|a| a == "--sweep-only") {
        return;
    }

    if !measuring {
        // The small version: everything offered arrives, one hop and three, and forged
        // messages are rejected on the first hop, never delivered.
        let one = &sweep[0];
        assert_eq!(one.delivered, one.sent, "every message crosses one node");
        let three = bench.run(3, 30.0, scale.secs, CLEAN).await;
        print_run("three hops", &three);
        assert_eq!(
            three.delivered, three.sent,
            "every message crosses three nodes"
        );
        let flood = bench
            .run(1, 30.0, scale.secs, Flood::forged(0.1, scale.flood_peers))
            .await;
        print_run("10 % forged", &flood);
        assert_eq!(flood.delivered, flood.sent, "honest messages pass a flood");
        assert_eq!(flood.forged_delivered, 0, "no forged message is delivered");
        assert!(
            flood.forged_rejected >= 1.0,
            "forged proofs reach the verifier"
        );
        assert!(
            flood.peak_rss.is_some_and(|b| b > 0),
            "the node's peak memory is read"
        );
        return;
    }

    let half = (knee / 2.0).max(scale.rates[0] / 2.0);
    println!(
        "throughput: latency at 50 % of the knee ({half:.0} msg/s), median of {}",
        scale.repeats
    );
    let one = bench
        .median(scale.repeats, 1, half, scale.secs, CLEAN)
        .await;
    let three = bench
        .median(scale.repeats, 3, half, scale.secs, CLEAN)
        .await;
    println!(
        "throughput: proof floods at the knee ({knee:.0} msg/s honest), median of {}",
        scale.repeats
    );
    // The last one is the same-run baseline: every waiting proof in one batch.
    let p = scale.flood_peers;
    let floods = [
        CLEAN,
        Flood::forged(0.01, p),
        Flood::forged(0.10, p),
        Flood {
            grouping: false,
            ..Flood::forged(0.10, p)
        },
    ];
    let mut at_knee = Vec::new();
    for flood in floods {
        at_knee.push(
            bench
                .median(scale.repeats, 1, knee, scale.secs, flood)
                .await,
        );
    }
    let (clean, light, heavy, heavy_one_batch) =
        (&at_knee[0], &at_knee[1], &at_knee[2], &at_knee[3]);
    println!();
    println!("| figure | measured |");
    println!("|---|---|");
    println!("| knee (offered, ≥ 95 % delivered) | {knee:.0} msg/s |");
    println!("| peak delivered | {peak:.0} msg/s |");
    println!(
        "| peak RSS of the first node (prover loaded), highest over all runs | {:.1} MiB |",
        bench.peak_rss as f64 / (1024.0 * 1024.0)
    );
    println!(
        "| latency at {half:.0} msg/s, 1 hop | p50 {:.1} ms, p99 {:.1} ms |",
        ms(one.p50),
        ms(one.p99)
    );
    println!(
        "| latency at {half:.0} msg/s, 3 hops | p50 {:.1} ms, p99 {:.1} ms |",
        ms(three.p50),
        ms(three.p99)
    );
    for (name, r) in [
        ("1 %", light),
        ("10 %", heavy),
        ("10 % (one batch, no grouping)", heavy_one_batch),
    ] {
        println!(
            "| honest delivered with {name} forged from {} peers | {:.0}/s = {:.0} % of clean ({:.0}/s) |",
            scale.flood_peers,
            r.rate,
            100.0 * r.rate / clean.rate,
            clean.rate
        );
    }
}
