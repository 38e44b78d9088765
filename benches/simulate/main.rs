//! A network of rln-nodes in one process: N nodes (100 by default) with real validation, real
//! libp2p sockets on loopback and RocksDB each, one anvil chain with N members, honest
//! publishers and 1 % spammers. For each mesh degree it measures:
//!
//! - **propagation**: for every honest message, the time from its publication to its delivery
//!   on 50 %, 90 % and 100 % of the other nodes (medians and p99 over the messages);
//! - **gossip amplification**: bytes every node sent (all of libp2p's traffic, control messages
//!   included) per message delivered on a node;
//! - **spam containment**: a spammer publishes two messages under each of its nullifiers (twice
//!   its limit). A node "saw" the spam if it delivered both messages of a pair or detected the
//!   double signal; the goal is that only the spammer's own peers (the first hop) ever do.
//!
//! `make simulate` runs it (`--nodes`, `--peers`, `--rate`, `--secs`, `--degrees` after `--`;
//! see the README) and writes `report.md` and `propagation.png` under `<target>/simulate/`.
//! Under `cargo test --all-targets` a 10-node version runs and checks every delivery and the
//! containment. The messages are proved once (Waku key set) and cached like the throughput
//! bench's pool; nodes run one-week epochs and clock gap so that the cache stays valid.

mod plot;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rln_core::Identity;
use rln_node::{Node, NodeConfig, NodeHandle};
use rln_relay::network::mesh_bounds;
use rln_relay::WakuMessage;
use rln_testkit::chain::CHEAP;
use rln_testkit::load::{self, percentile, PoolMember, Stamps};
use rln_testkit::node::sum_samples;
use rln_testkit::TestChain;

const TOPIC: &str = "/waku/2/rs/1/0";
/// One-week epochs (and clock gap) keep the cached messages valid for the week.
const EPOCH_SECS: u64 = 7 * 86_400;

/// What to simulate.
#[derive(Debug, Clone)]
struct Params {
    /// Nodes in the network.
    nodes: usize,
    /// Earlier nodes each node dials (its static peers); the others dial it in turn.
    peers: usize,
    /// Honest messages per second, over all publishers.
    rate: f64,
    /// Seconds of honest traffic.
    secs: f64,
    /// Mesh degrees to compare (one network each).
    degrees: Vec<usize>,
    /// Messages each spammer may send per epoch (it sends twice as many).
    spam_limit: u64,
}

impl Params {
    fn full() -> Self {
        Self {
            nodes: 100,
            peers: 8,
            // Every node verifies every message, and all of them share this machine's cores.
            rate: 2.0,
            secs: 30.0,
            degrees: vec![6, 3],
            spam_limit: 3,
        }
    }

    fn small() -> Self {
        Self {
            nodes: 10,
            peers: 3,
            rate: 4.0,
            secs: 2.0,
            degrees: vec![6, 3],
            spam_limit: 2,
        }
    }

    /// Honest publishers: one node in ten.
    fn publishers(&self) -> usize {
        (self.nodes / 10).max(1)
    }

    /// Spammers: one node in a hundred.
    fn spammers(&self) -> usize {
        (self.nodes / 100).max(1)
    }

    fn honest(&self) -> usize {
        (self.rate * self.secs).round().max(1.0) as usize
    }

    /// `--nodes 200 --peers 8 --rate 20 --secs 10 --degrees 6,3` over the defaults.
    fn parse(mut self, args: &[String]) -> Result<Self, String> {
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            let number = |name: &str, v: String| {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x > 0.0)
                    .ok_or_else(|| format!("{name} takes a positive number, not `{v}`"))
            };
            match arg.as_str() {
                "--nodes" => self.nodes = number(arg, value(arg)?)? as usize,
                "--peers" => self.peers = number(arg, value(arg)?)? as usize,
                "--rate" => self.rate = number(arg, value(arg)?)?,
                "--secs" => self.secs = number(arg, value(arg)?)?,
                "--degrees" => {
                    self.degrees = value(arg)?
                        .split(',')
                        .map(|d| {
                            d.trim()
                                .parse::<usize>()
                                .ok()
                                .filter(|&d| (1..=rln_relay::network::MAX_MESH_DEGREE).contains(&d))
                                .ok_or_else(|| format!("--degrees: `{d}` is not a mesh degree"))
                        })
                        .collect::<Result<_, _>>()?
                }
                // cargo's own arguments to bench binaries.
                "--bench" | "--nocapture" | "--quiet" => {}
                other if other.starts_with("--") => return Err(format!("unknown option {other}")),
                _ => {}
            }
        }
        if self.nodes < 3 {
            return Err("--nodes must be at least 3".into());
        }
        Ok(self)
    }
}

/// The messages of a run and where each went.
struct Traffic {
    /// Encoded messages: the honest ones, then each spammer's pairs.
    messages: Vec<Vec<u8>>,
    honest: usize,
    by_hash: HashMap<[u8; 32], usize>,
    nodes: usize,
    sent: Stamps,
    /// Slot `message * nodes + node`.
    received: Stamps,
}

impl Traffic {
    fn new(messages: Vec<Vec<u8>>, honest: usize, nodes: usize) -> Self {
        let by_hash = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let msg = WakuMessage::decode(m, usize::MAX).expect("a pool message decodes");
                (msg.hash(TOPIC), i)
            })
            .collect();
        let start = Instant::now();
        Self {
            sent: Stamps::new(messages.len(), start),
            received: Stamps::new(messages.len() * nodes, start),
            by_hash,
            honest,
            nodes,
            messages,
        }
    }

    fn received(&self, message: usize, node: usize) -> Option<Duration> {
        self.received.at(message * self.nodes + node)
    }

    fn sent_at(&self, m: usize) -> Duration {
        self.sent.at(m).unwrap_or_default()
    }
}

/// What one network measured.
#[derive(Debug, Clone)]
struct Report {
    degree: usize,
    /// Deliveries of honest messages over all (message, other node) pairs.
    delivered: usize,
    possible: usize,
    /// Per honest message: time to reach 50 %, 90 %, 100 % of the other nodes, and the first
    /// of them (one hop) (None: never).
    reach: Vec<[Option<Duration>; 4]>,
    /// Every delivery's latency (for the plot's distribution).
    latencies: Vec<Duration>,
    /// Bytes all nodes sent during the traffic, per honest delivery.
    bytes_per_delivery: f64,
    message_bytes: usize,
    mean_mesh: f64,
    first_hop: usize,
    /// Nodes that saw the over-limit spam: among the spammers' peers, and beyond them.
    spam_first_hop: usize,
    spam_beyond: usize,
    /// Nodes that accepted both messages of a pair (more than the limit).
    over_limit_accepted: usize,
    lagged: u64,
}

impl Report {
    fn quantile(&self, which: usize, q: f64) -> Option<Duration> {
        let mut v: Vec<Duration> = Vec::new();
        for r in &self.reach {
            // A message that never reached the share counts as the slowest.
            v.push(r[which].unwrap_or(Duration::MAX));
        }
        v.sort();
        let d = percentile(&v, q);
        (d != Duration::MAX).then_some(d)
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("never".into(), |d| {
        format!("{:.0} ms", d.as_secs_f64() * 1e3)
    })
}

/// A node of the simulation.
struct SimNode {
    node: Node,
    peer_id: String,
}

/// Starts `p.nodes` nodes on `chain` at mesh degree `degree`, each dialling `p.peers` random
/// earlier ones (a seeded random graph: the same for every degree).
async fn start_network(
    chain: &TestChain,
    dir: &std::path::Path,
    p: &Params,
    degree: usize,
) -> Vec<SimNode> {
    let mut rng = StdRng::seed_from_u64(p.nodes as u64);
    let mut nodes: Vec<SimNode> = Vec::with_capacity(p.nodes);
    let started = Instant::now();
    for i in 0..p.nodes {
        let mut earlier: Vec<usize> = (0..i).collect();
        earlier.shuffle(&mut rng);
        let peers: Vec<String> = earlier
            .iter()
            .take(p.peers)
            .flat_map(|&j| nodes[j].node.handle().listen_addrs())
            .map(|a| a.to_string())
            .collect();
        let config = node_config(
            chain,
            &dir.join(format!("d{degree}-node{i}")),
            peers,
            degree,
        );
        let node = Node::start(config)
            .await
            .unwrap_or_else(|e| panic!("node {i} starts: {e}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while node.handle().listen_addrs().is_empty() {
            assert!(Instant::now() < deadline, "node {i} listens within 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let peer_id = node.handle().peer_id().to_string();
        nodes.push(SimNode { node, peer_id });
        if (i + 1) % 10 == 0 || i + 1 == p.nodes {
            println!(
                "sim:   {}/{} nodes started ({:.0} s)",
                i + 1,
                p.nodes,
                started.elapsed().as_secs_f64()
            );
        }
    }
    for (i, n) in nodes.iter().enumerate() {
        assert!(
            n.node.handle().wait_synced(Duration::from_secs(60)).await,
            "node {i} syncs with the chain within 60 s"
        );
    }
    nodes
}

fn node_config(
    chain: &TestChain,
    dir: &std::path::Path,
    peers: Vec<String>,
    degree: usize,
) -> NodeConfig {
    let mut c = load::planned_config(chain, dir, None, EPOCH_SECS, peers);
    c.network.mesh_degree = degree;
    c.chain.poll_interval_ms = 1_000;
    // The production heartbeat: GossipSub keeps a message for forwarding five heartbeats.
    c.network.heartbeat_ms = rln_node::config::defaults::HEARTBEAT_MS;
    c.validation.workers = 1;
    c.rest.listen = None;
    c.lightpush.enabled = false;
    c.filter.enabled = false;
    c
}

fn metric(node: &NodeHandle, name: &str, label: &str) -> f64 {
    node.encode_metrics()
        .map(|text| sum_samples(&text, name, label))
        .unwrap_or(0.0)
}

/// Waits until 95 % of the nodes' meshes hold their lower bound (or all their peers, if
/// fewer), for at most 30 s; returns the mean mesh size.
async fn wait_for_meshes(nodes: &[SimNode], degree: usize) -> f64 {
    let (low, _, _) = mesh_bounds(degree);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut short = 0;
        let mut total = 0.0;
        for n in nodes {
            let mesh = metric(n.node.handle(), "libp2p_gossipsub_mesh_peer_counts", "");
            let peers = n.node.handle().peers().await.len() as f64;
            total += mesh;
            if mesh < (low as f64).min(peers) || mesh < 1.0 {
                short += 1;
            }
        }
        let mean = total / nodes.len() as f64;
        if short * 20 <= nodes.len() {
            if short > 0 {
                println!("sim:   {short} node(s) below the mesh's lower bound; going on");
            }
            return mean;
        }
        if Instant::now() > deadline {
            println!("sim:   {short} node(s) still below the mesh's lower bound after 30 s");
            return mean;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn simulate(chain: &TestChain, pool: &[Vec<u8>], p: &Params, degree: usize) -> Report {
    println!("sim: mesh degree {degree}: starting {} nodes", p.nodes);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let nodes = start_network(chain, dir.path(), p, degree).await;
    let mean_mesh = wait_for_meshes(&nodes, degree).await;
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.peer_id.as_str(), i))
        .collect();

    let honest = p.honest();
    let traffic = Arc::new(Traffic::new(pool.to_vec(), honest, p.nodes));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let lagged = Arc::new(AtomicU64::new(0));
    let mut listeners = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let mut rx = n.node.handle().messages();
        let (traffic, lagged, mut stopped) = (traffic.clone(), lagged.clone(), stopped.clone());
        listeners.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    got = rx.recv() => match got {
                        Ok(d) => {
                            if let Some(&m) = traffic.by_hash.get(&d.hash) {
                                traffic.received.stamp(m * traffic.nodes + i);
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            lagged.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(_) => break,
                    },
                    _ = stopped.changed() => break,
                }
            }
        }));
    }

    // Publishers spread over the node list; spammers taken from the others.
    let publishers: Vec<usize> = (0..p.publishers())
        .map(|k| k * p.nodes / p.publishers())
        .collect();
    let mut rng = StdRng::seed_from_u64(7);
    let mut others: Vec<usize> = (0..p.nodes).filter(|i| !publishers.contains(i)).collect();
    others.shuffle(&mut rng);
    let spammers: Vec<usize> = others.into_iter().take(p.spammers()).collect();
    let mut first_hop: HashSet<usize> = HashSet::new();
    for &s in &spammers {
        for peer in nodes[s].node.handle().peers().await {
            if let Some(&j) = index.get(peer.peer_id.as_str()) {
                first_hop.insert(j);
            }
        }
    }
    for s in &spammers {
        first_hop.remove(s);
    }

    let bytes_before: f64 = nodes
        .iter()
        .map(|n| metric(n.node.handle(), "libp2p_bandwidth_bytes_total", "Outbound"))
        .sum();
    let lead = Duration::from_millis(200);
    let begin = Instant::now();
    let mut senders = Vec::new();
    for (k, &node) in publishers.iter().enumerate() {
        let handle = nodes[node].node.handle().clone();
        let traffic = traffic.clone();
        let every = publishers.len();
        let rate = p.rate;
        senders.push(tokio::spawn(async move {
            for m in (k..traffic.honest).step_by(every) {
                let at = begin + lead + Duration::from_secs_f64(m as f64 / rate);
                tokio::time::sleep_until(at.into()).await;
                traffic.sent.stamp(m);
                if let Err(e) = handle.send_raw(TOPIC, traffic.messages[m].clone()).await {
                    println!("sim:   publishing message {m} failed: {e}");
                }
            }
        }));
    }
    // Each spammer sends its pairs back to back, halfway through the honest traffic.
    let pairs = p.spam_limit as usize;
    for (k, &node) in spammers.iter().enumerate() {
        let handle = nodes[node].node.handle().clone();
        let traffic = traffic.clone();
        let at = begin + lead + Duration::from_secs_f64(p.secs / 2.0);
        senders.push(tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let first = traffic.honest + k * 2 * pairs;
            for m in first..first + 2 * pairs {
                traffic.sent.stamp(m);
                if let Err(e) = handle.send_raw(TOPIC, traffic.messages[m].clone()).await {
                    println!("sim:   spammer {k}'s message failed: {e}");
                }
            }
        }));
    }
    for s in senders {
        s.await.expect("a publishing task");
    }
    // Until every honest message reached every node, or nothing arrived for three seconds.
    let everywhere = honest * (p.nodes - 1 - spammers.len());
    let count = |t: &Traffic| -> usize {
        (0..honest)
            .map(|m| {
                (0..t.nodes)
                    .filter(|&i| !spammers.contains(&i) && t.received(m, i).is_some())
                    .count()
            })
            .sum()
    };
    load::until_delivered_or_quiet(
        everywhere,
        Duration::from_secs(3),
        Duration::from_millis(200),
        || count(&traffic),
    )
    .await;
    let bytes_after: f64 = nodes
        .iter()
        .map(|n| metric(n.node.handle(), "libp2p_bandwidth_bytes_total", "Outbound"))
        .sum();
    let spam_detected: Vec<bool> = nodes
        .iter()
        .map(|n| metric(n.node.handle(), "waku_rln_spam_messages_total", "") > 0.0)
        .collect();
    let _ = stop.send(true);
    for l in listeners {
        let _ = l.await;
    }

    // Propagation of each honest message to the other nodes. Spammers are left out: their
    // peers graylist them once they are caught, so they stop receiving anything (as they
    // should).
    let publisher_of = |m: usize| publishers[m % publishers.len()];
    let mut reach = Vec::with_capacity(honest);
    let mut latencies = Vec::new();
    let mut delivered = 0;
    let others = p.nodes - 1 - spammers.len();
    for m in 0..honest {
        let sent = traffic.sent_at(m);
        let mut times: Vec<Duration> = (0..p.nodes)
            .filter(|&i| i != publisher_of(m) && !spammers.contains(&i))
            .filter_map(|i| traffic.received(m, i))
            .map(|r| r.saturating_sub(sent))
            .collect();
        times.sort();
        delivered += times.len();
        let at_share = |share: f64| {
            let need = ((share * others as f64).ceil() as usize).max(1);
            times.get(need - 1).copied()
        };
        reach.push([
            at_share(0.5),
            at_share(0.9),
            at_share(1.0),
            times.first().copied(),
        ]);
        latencies.extend(times);
    }
    // Spam: who saw more than a spammer's limit.
    let (mut spam_first_hop, mut spam_beyond, mut over_limit_accepted) = (0, 0, 0);
    for i in (0..p.nodes).filter(|i| !spammers.contains(i)) {
        let both = (0..spammers.len() * pairs).any(|pair| {
            let a = honest + 2 * pair;
            traffic.received(a, i).is_some() && traffic.received(a + 1, i).is_some()
        });
        over_limit_accepted += both as usize;
        if both || spam_detected[i] {
            if first_hop.contains(&i) {
                spam_first_hop += 1;
            } else {
                spam_beyond += 1;
            }
        }
    }
    let message_bytes = pool[..honest].iter().map(Vec::len).sum::<usize>() / honest;
    let report = Report {
        degree,
        delivered,
        possible: everywhere,
        reach,
        latencies,
        bytes_per_delivery: (bytes_after - bytes_before) / delivered.max(1) as f64,
        message_bytes,
        mean_mesh,
        first_hop: first_hop.len(),
        spam_first_hop,
        spam_beyond,
        over_limit_accepted,
        lagged: lagged.load(Ordering::Relaxed),
    };
    print_report(&report);
    let stopping: Vec<_> = nodes.into_iter().map(|n| n.node.shutdown()).collect();
    for (i, r) in futures::future::join_all(stopping)
        .await
        .into_iter()
        .enumerate()
    {
        if let Err(e) = r {
            println!("sim:   node {i} stopped with an error: {e}");
        }
    }
    report
}

fn print_report(r: &Report) {
    println!(
        "sim: D = {}: {}/{} deliveries; reach 50 % p50 {} p99 {}; 90 % p50 {} p99 {}; \
         100 % p50 {} p99 {}; {:.0} bytes sent per delivery ({:.1}× the {}-byte message); \
         mean mesh {:.1}; spam seen by {}/{} first-hop peers and {} node(s) beyond{}",
        r.degree,
        r.delivered,
        r.possible,
        ms(r.quantile(0, 0.5)),
        ms(r.quantile(0, 0.99)),
        ms(r.quantile(1, 0.5)),
        ms(r.quantile(1, 0.99)),
        ms(r.quantile(2, 0.5)),
        ms(r.quantile(2, 0.99)),
        r.bytes_per_delivery,
        r.bytes_per_delivery / r.message_bytes as f64,
        r.message_bytes,
        r.mean_mesh,
        r.spam_first_hop,
        r.first_hop,
        r.spam_beyond,
        if r.lagged > 0 {
            format!(" ({} deliveries missed by the listeners)", r.lagged)
        } else {
            String::new()
        }
    );
}

fn table(p: &Params, reports: &[Report]) -> String {
    let mut t = String::new();
    t.push_str(&format!(
        "{} nodes, each dialling {} earlier ones; {} publisher(s) at {:.0} msg/s in all for {:.0} s; \
         {} spammer(s) sending twice their limit of {}.\n\n",
        p.nodes,
        p.peers,
        p.publishers(),
        p.rate,
        p.secs,
        p.spammers(),
        p.spam_limit
    ));
    t.push_str("| figure |");
    for r in reports {
        t.push_str(&format!(" D = {} |", r.degree));
    }
    t.push_str("\n|---|");
    for _ in reports {
        t.push_str("---|");
    }
    t.push('\n');
    type Cell = Box<dyn Fn(&Report) -> String>;
    let rows: Vec<(&str, Cell)> = vec![
        (
            "deliveries (message × other node)",
            Box::new(|r| format!("{}/{}", r.delivered, r.possible)),
        ),
        (
            "time to the first node (one hop), p50 / p99",
            Box::new(|r| format!("{} / {}", ms(r.quantile(3, 0.5)), ms(r.quantile(3, 0.99)))),
        ),
        (
            "time to 50 % of nodes, p50 / p99",
            Box::new(|r| format!("{} / {}", ms(r.quantile(0, 0.5)), ms(r.quantile(0, 0.99)))),
        ),
        (
            "time to 90 % of nodes, p50 / p99",
            Box::new(|r| format!("{} / {}", ms(r.quantile(1, 0.5)), ms(r.quantile(1, 0.99)))),
        ),
        (
            "time to all nodes, p50 / p99",
            Box::new(|r| format!("{} / {}", ms(r.quantile(2, 0.5)), ms(r.quantile(2, 0.99)))),
        ),
        (
            "bytes sent per delivered message per node",
            Box::new(|r| {
                format!(
                    "{:.0} ({:.1}× the message)",
                    r.bytes_per_delivery,
                    r.bytes_per_delivery / r.message_bytes as f64
                )
            }),
        ),
        (
            "mean mesh size",
            Box::new(|r| format!("{:.1}", r.mean_mesh)),
        ),
        (
            "nodes that saw over-limit spam: first hop / beyond",
            Box::new(|r| format!("{}/{} / {}", r.spam_first_hop, r.first_hop, r.spam_beyond)),
        ),
        (
            "nodes that accepted more than the limit",
            Box::new(|r| r.over_limit_accepted.to_string()),
        ),
    ];
    for (name, cell) in rows {
        t.push_str(&format!("| {name} |"));
        for r in reports {
            t.push_str(&format!(" {} |", cell(r)));
        }
        t.push('\n');
    }
    t
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let measuring = args.iter().any(|a| a == "--bench");
    let base = if measuring {
        Params::full()
    } else {
        Params::small()
    };
    let p = match base.parse(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    // The small version's report goes beside the full one, never over it.
    let out = load::target_dir().join(if measuring {
        "simulate"
    } else {
        "simulate-small"
    });
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("error: cannot create {}: {e}", out.display());
        std::process::exit(1);
    }

    println!(
        "sim: {} nodes, mesh degrees {:?}, one process; starting anvil and registering {} members",
        p.nodes, p.degrees, p.nodes
    );
    let chain = TestChain::with_params(CHEAP).await;
    let honest = p.honest();
    let per_publisher = honest.div_ceil(p.publishers()) as u64;
    let mut members = Vec::with_capacity(p.nodes);
    for i in 0..p.nodes {
        let limit = if i < p.publishers() {
            per_publisher
        } else if i < p.publishers() + p.spammers() {
            p.spam_limit
        } else {
            1
        };
        let identity = Identity::from_seed(format!("sim member {i}").as_bytes());
        let index = chain.register(&identity, limit as u32).await;
        members.push(PoolMember {
            identity,
            index,
            limit,
        });
        if (i + 1) % 25 == 0 {
            println!("sim:   {}/{} members registered", i + 1, p.nodes);
        }
    }
    // Honest message k from publisher member k mod P; then each spammer member's double
    // signals: message ids 0..limit, each twice.
    let mut slots: Vec<(usize, u64)> = (0..honest)
        .map(|k| (k % p.publishers(), (k / p.publishers()) as u64))
        .collect();
    for s in 0..p.spammers() {
        for id in 0..p.spam_limit {
            slots.push((p.publishers() + s, id));
            slots.push((p.publishers() + s, id));
        }
    }
    let pool = load::prove_pool(&members, &slots, EPOCH_SECS, &load::pool_dir());

    let mut reports = Vec::new();
    for &degree in &p.degrees {
        reports.push(simulate(&chain, &pool, &p, degree).await);
    }
    let table = table(&p, &reports);
    println!();
    print!("{table}");
    let png = out.join("propagation.png");
    let report_md = out.join("report.md");
    if let Err(e) = plot::propagation(&png, &p, &reports) {
        eprintln!("error: cannot draw {}: {e}", png.display());
        std::process::exit(1);
    }
    let md = format!("# rln-node network simulation\n\n{table}\n![propagation](propagation.png)\n");
    if let Err(e) = std::fs::write(&report_md, md) {
        eprintln!("error: cannot write {}: {e}", report_md.display());
        std::process::exit(1);
    }
    println!("sim: wrote {} and {}", report_md.display(), png.display());

    if !measuring {
        // The small version: every honest message reaches every node at both degrees, the
        // spam stays with the spammers' peers and is caught there, and bytes were counted.
        for r in &reports {
            assert_eq!(
                r.delivered, r.possible,
                "D = {}: every message reaches every node",
                r.degree
            );
            assert_eq!(
                r.spam_beyond, 0,
                "D = {}: no spam beyond the first hop",
                r.degree
            );
            assert_eq!(
                r.over_limit_accepted, 0,
                "D = {}: no node accepts over the limit",
                r.degree
            );
            assert!(
                r.spam_first_hop >= 1,
                "D = {}: the first hop detects the spam",
                r.degree
            );
            assert!(
                r.bytes_per_delivery > r.message_bytes as f64,
                "D = {}: delivering a message costs at least its bytes",
                r.degree
            );
        }
        let png_bytes = std::fs::read(&png).expect("the plot was written");
        assert!(
            png_bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "the plot is a PNG"
        );
    }
}
