//! `rln-devnet`: a local RLN relay network on one machine, for a first look and for tests.
//!
//! Starts anvil, deploys the membership contract, registers one membership per node (limits
//! 2, 3, 4, …) and one for a spammer (limit 1), starts the `rln-node run` processes wired into
//! a mesh, and drives traffic: every node publishes its limit each epoch through its REST API,
//! and an in-process spammer node proves several messages per epoch with the same message id.
//! A summary refreshes until Ctrl-C, or until `--duration` ends the run with a verdict: the exit
//! code is 0 only if every honest message reached every node and the spammer was caught.
//!
//! `--chaos` (`make chaos`) adds faults during the traffic: nodes killed with SIGKILL and
//! restarted on their data directories, anvil stopped and restarted from its state file, and
//! reorganisations played with `evm_snapshot` / `evm_revert`. The verdict then also requires
//! every node's root to equal the contract's and allows a node to miss only the messages
//! published while it was down or on a fork that was replaced.

mod chaos;
mod metrics;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy::network::EthereumWallet;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::U256;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use clap::Parser;
use rln_chain::keystore::{Keystore, KeystoreMembership};
use rln_chain::ContractParams;
use rln_core::fr_to_hex;
use rln_core::Identity;
use rln_node::config::defaults::PUBSUB_TOPIC as DEFAULT_PUBSUB_TOPIC;
use rln_node::config::MembershipConfig;
use rln_node::rest::RestMessage;
use rln_node::{banner, Node, NodeConfig, NodeHandle};
use rln_relay::{MessageIdChoice, WakuMessage};

use crate::metrics::Scrape;

const PASSWORD: &str = "devnet";
const CONTENT_TOPIC: &str = "/devnet/1/chat/proto";

#[derive(Debug, Parser)]
#[command(
    name = "rln-devnet",
    version,
    about = "A local RLN relay network: anvil, nodes, honest traffic and a spammer"
)]
struct Args {
    /// Relay nodes to start (4 to 6).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(4..=6))]
    nodes: u8,
    /// Stop after this many seconds, print the final summary, and exit non-zero unless every
    /// honest message reached every node and the spammer was caught.
    #[arg(long)]
    duration: Option<u64>,
    /// Epoch length in seconds (short, so limits and resets show quickly).
    #[arg(long, default_value_t = 10)]
    epoch_secs: u64,
    /// Directory for the nodes' state and logs (wiped at start).
    #[arg(long, default_value = "target/devnet")]
    dir: PathBuf,
    /// The anvil binary (`make tools` installs it; `make devnet` passes its path).
    #[arg(long, env = "RLN_ANVIL")]
    anvil: PathBuf,
    /// The rln-node binary [default: next to this program].
    #[arg(long)]
    rln_node: Option<PathBuf>,
    /// Seconds between summary refreshes.
    #[arg(long, default_value_t = 2)]
    refresh: u64,
    /// Inject faults during the run (kill -9 and restart nodes, restart anvil, reorgs); with
    /// `--duration`, the verdict also checks that every node's root equals the contract's.
    #[arg(long)]
    chaos: bool,
    /// Seconds between two faults in `--chaos` mode.
    #[arg(long, default_value_t = 8)]
    chaos_every: u64,
}

/// A node process, stopped with SIGTERM (then SIGKILL) on drop.
struct Process {
    child: Child,
    rest: String,
    p2p: String,
    limit: u32,
}

/// How to start (and restart) one node: fixed ports, so peers find it again after a restart.
#[derive(Debug, Clone)]
struct NodeSpec {
    index: usize,
    dir: PathBuf,
    keystore: PathBuf,
    limit: u32,
    slash_key: String,
    tcp_port: u16,
    ws_port: u16,
    rest_port: u16,
    peers: Vec<String>,
}

/// Everything the node processes share.
#[derive(Debug, Clone)]
struct NetSpec {
    rln_node: PathBuf,
    rpc: String,
    contract: String,
    epoch_secs: u64,
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts `rln-node run` for `spec` and waits until it prints its REST address.
fn spawn_node(net: &NetSpec, spec: &NodeSpec) -> Result<Process> {
    let i = spec.index;
    let mut cmd = Command::new(&net.rln_node);
    cmd.arg("run")
        .args(["--data-dir", &spec.dir.to_string_lossy()])
        .args(["--eth-rpc", &net.rpc, "--eth-contract", &net.contract])
        .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{}", spec.tcp_port)])
        .args([
            "--listen",
            &format!("/ip4/127.0.0.1/tcp/{}/ws", spec.ws_port),
        ])
        .args(["--rest-address", &format!("127.0.0.1:{}", spec.rest_port)])
        .args([
            "--keystore",
            &spec.keystore.to_string_lossy(),
            "--keystore-password",
            PASSWORD,
        ])
        .args([
            "--epoch-secs",
            &net.epoch_secs.to_string(),
            "--poll-interval-ms",
            "500",
        ])
        .args(["--slash", "--eth-private-key", &spec.slash_key]);
    for peer in &spec.peers {
        cmd.args(["--static-peer", peer]);
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(spec.dir.join("node.log"))?;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(log)
        .env(
            "RUST_LOG",
            "warn,rln_node=info,rln_relay=info,rln_chain=info",
        )
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    // The node prints its listen addresses (TCP, then WebSocket), then its REST address.
    let (mut p2p, mut ws, mut rest) = (None, None, None);
    for line in lines.by_ref() {
        let line = line?;
        if let Some(a) = banner::listen_addr(&line) {
            if a.contains("/ws/") {
                ws.get_or_insert_with(|| a.to_string());
            } else {
                p2p.get_or_insert_with(|| a.to_string());
            }
        }
        if let Some(url) = banner::rest_url(&line) {
            rest = Some(url.to_string());
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let announced_rest = rest.is_some();
    let (Some(p2p), Some(rest)) = (p2p, rest) else {
        // The end of its log says why, in the error itself (a test's directory goes with it).
        let log = spec.dir.join("node.log");
        if announced_rest {
            let _ = child.kill();
        }
        // Otherwise its stdout closed before the REST line: the process is ending.
        let status = match child.wait() {
            Ok(status) => status.to_string(),
            Err(e) => format!("status unknown: {e}"),
        };
        let what = if announced_rest {
            "announced no TCP listen address".to_string()
        } else {
            format!("exited during start ({status})")
        };
        bail!(
            "node {i} {what}; the end of {}:\n{}",
            log.display(),
            log_tail(&log, 15)
        );
    };
    eprintln!("    node {i}: limit {}, REST {rest}, {p2p}", spec.limit);
    if let Some(ws) = ws {
        eprintln!("            light clients (js-waku): {ws}");
    }
    Ok(Process {
        child,
        rest,
        p2p,
        limit: spec.limit,
    })
}

/// The last `n` lines of the file at `path`, or a sentence saying it cannot be read.
fn log_tail(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(unreadable: {e})"),
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn step(text: &str) {
    eprintln!("==> {text}");
}

fn account(anvil: &AnvilInstance, n: usize) -> DynProvider {
    let key = anvil.keys()[n].clone();
    rln_chain::http::install_provider();
    ProviderBuilder::new()
        .wallet(EthereumWallet::from(
            alloy::signers::local::PrivateKeySigner::from(key),
        ))
        .connect_http(anvil.endpoint_url())
        .erased()
}

async fn register(
    provider: &DynProvider,
    anvil: &AnvilInstance,
    contract: alloy::primitives::Address,
    dir: &Path,
    limit: u32,
) -> Result<(Identity, PathBuf)> {
    let identity = Identity::random(&mut rand::rngs::OsRng);
    let registration = rln_chain::register(provider, contract, &identity, limit).await?;
    std::fs::create_dir_all(dir)?;
    let path = dir.join("keystore.json");
    let mut ks = Keystore::load_or_new(&path)?;
    let m = KeystoreMembership::new(
        &identity,
        None,
        anvil.chain_id(),
        &contract.to_checksum(None),
        registration.index,
        u64::from(limit),
    );
    ks.add(&m, PASSWORD.as_bytes(), 10_000, &mut rand::rngs::OsRng)?;
    ks.save(&path)?;
    rln_db::MessageIdLedger::open(&rln_db::MessageIdLedger::path_for(&path))?
        .record_new(&identity.commitment())?;
    Ok((identity, path))
}

fn encode_topic(topic: &str) -> String {
    topic.replace('/', "%2F")
}

/// What the traffic and the collectors saw.
#[derive(Debug, Default)]
struct Ledger {
    /// Honest payloads published: payload → (origin node, when).
    published: BTreeMap<String, (usize, Instant)>,
    /// Payloads each node delivered.
    received: Vec<BTreeSet<String>>,
    /// Spam payloads sent, and the epoch of each.
    spam_sent: BTreeMap<String, u64>,
    /// Publish errors by node.
    errors: Vec<usize>,
    /// Stretches in which a node (or every node, `None`) may miss messages: it was down, or
    /// a reorganisation replaced the roots messages were proved against.
    outages: Vec<(Option<usize>, Instant, Instant)>,
}

impl Ledger {
    /// Whether node `j` may miss a message published at `at` by node `origin`.
    fn excused(&self, j: usize, origin: usize, at: Instant) -> bool {
        self.outages.iter().any(|(who, from, to)| {
            (*who).is_none_or(|w| w == j || w == origin) && *from <= at && at <= *to
        })
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}

async fn run(args: Args) -> Result<()> {
    let n = usize::from(args.nodes);
    let rln_node = match &args.rln_node {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("rln-node"),
    };
    if !rln_node.exists() {
        bail!(
            "{} not found; build it first (`make devnet` does) or pass --rln-node",
            rln_node.display()
        );
    }
    if !args.anvil.exists() {
        bail!(
            "anvil not found at {}; run `make tools` or pass --anvil",
            args.anvil.display()
        );
    }
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)
            .with_context(|| format!("cannot wipe {}", args.dir.display()))?;
    }
    std::fs::create_dir_all(&args.dir)?;

    step("starting anvil on loopback");
    let anvil_port = free_port()?;
    let anvil_state = args.dir.join("anvil-state.json");
    let mut anvil = Anvil::at(&args.anvil)
        .port(anvil_port)
        .args([
            "--state".to_string(),
            anvil_state.to_string_lossy().into_owned(),
        ])
        .spawn();
    let deployer = account(&anvil, 0);
    step("deploying the membership contract");
    let contract = rln_chain::deploy(
        &deployer,
        ContractParams {
            deposit_per_message: U256::from(10u64).pow(U256::from(15u64)),
            min_limit: 1,
            max_limit: 100,
            withdrawal_delay_secs: rln_chain::contract::DEFAULT_WITHDRAWAL_DELAY_SECS,
        },
    )
    .await?;
    step(&format!(
        "registering {} memberships (limits 2..={}, spammer 1)",
        n + 1,
        n + 1
    ));
    let mut keystores = Vec::new();
    for i in 0..n {
        let limit = 2 + i as u32;
        let (_, path) = register(
            &deployer,
            &anvil,
            contract,
            &args.dir.join(format!("node{i}")),
            limit,
        )
        .await?;
        keystores.push((path, limit));
    }
    let (spammer_id, spammer_ks) =
        register(&deployer, &anvil, contract, &args.dir.join("spammer"), 1).await?;

    step(&format!("starting {n} rln-node processes"));
    let net = NetSpec {
        rln_node: rln_node.clone(),
        rpc: anvil.endpoint(),
        contract: contract.to_string(),
        epoch_secs: args.epoch_secs,
    };
    let mut nodes: Vec<Process> = Vec::new();
    let mut specs: Vec<NodeSpec> = Vec::new();
    for (i, (ks, limit)) in keystores.iter().enumerate() {
        let spec = NodeSpec {
            index: i,
            dir: args.dir.join(format!("node{i}")),
            keystore: ks.clone(),
            limit: *limit,
            slash_key: format!("0x{}", alloy::hex::encode(anvil.keys()[1 + i].to_bytes())),
            tcp_port: free_port()?,
            ws_port: free_port()?,
            rest_port: free_port()?,
            peers: nodes.iter().map(|p| p.p2p.clone()).collect(),
        };
        nodes.push(spawn_node(&net, &spec)?);
        specs.push(spec);
    }

    step("starting the spammer (an in-process node whose publisher reuses message id 0)");
    let mut sc = NodeConfig {
        data_dir: args.dir.join("spammer/node"),
        ..NodeConfig::default()
    };
    sc.chain.rpc = vec![anvil.endpoint()];
    sc.chain.contract = contract.to_string();
    sc.chain.poll_interval_ms = 500;
    sc.network.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
    sc.network.static_peers = nodes.iter().take(2).map(|p| p.p2p.clone()).collect();
    sc.rln.epoch_secs = args.epoch_secs;
    sc.rest.listen = None;
    sc.membership = Some(MembershipConfig {
        keystore: spammer_ks,
        password: PASSWORD.into(),
        id: None,
    });
    let spammer = Node::start(sc).await?;

    let client = rln_chain::http::client(None)?;
    step("waiting for the mesh to form");
    let started = Instant::now();
    loop {
        let mut ready = 0;
        for p in &nodes {
            let peers: Vec<serde_json::Value> = match client
                .get(format!("{}/admin/v1/peers", p.rest))
                .send()
                .await
            {
                Ok(r) => r.json().await.unwrap_or_default(),
                Err(_) => Vec::new(),
            };
            if peers.len() >= 2 {
                ready += 1;
            }
        }
        if ready == n
            && spammer
                .handle()
                .wait_synced(Duration::from_millis(10))
                .await
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "the mesh did not form within 60 s; see the logs in {}",
                args.dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let ledger = Arc::new(Mutex::new(Ledger {
        received: vec![BTreeSet::new(); n],
        errors: vec![0; n],
        ..Default::default()
    }));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for (i, p) in nodes.iter().enumerate() {
        tasks.push(tokio::spawn(honest_traffic(
            client.clone(),
            p.rest.clone(),
            i,
            p.limit,
            args.epoch_secs,
            ledger.clone(),
            stop_rx.clone(),
        )));
    }
    tasks.push(tokio::spawn(spam_traffic(
        spammer.handle().clone(),
        args.epoch_secs,
        ledger.clone(),
        stop_rx.clone(),
    )));

    let rests: Vec<String> = nodes.iter().map(|p| p.rest.clone()).collect();
    let interactive = std::io::stdout().is_terminal() && args.duration.is_none();
    eprintln!(
        "\nREST and metrics: {}",
        rests
            .iter()
            .map(|r| format!("{r}/metrics"))
            .collect::<Vec<_>>()
            .join("  ")
    );
    eprintln!("data and logs:    {}/node*/", args.dir.display());
    eprintln!(
        "{}",
        if args.duration.is_some() {
            "running for the given duration..."
        } else {
            "Ctrl-C stops the network\n"
        }
    );
    let run_started = Instant::now();
    let mut chaos = args.chaos.then(|| {
        chaos::Chaos::new(
            &args.anvil,
            anvil_port,
            &anvil_state,
            Duration::from_secs(args.chaos_every.max(2)),
        )
    });
    let refresh = if chaos.is_some() {
        1
    } else {
        args.refresh.max(1)
    };
    let mut tick = tokio::time::interval(Duration::from_secs(refresh));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        collect(&client, &rests, &ledger).await;
        if let Some(chaos) = chaos.as_mut() {
            // The last stretch of a timed run is calm, so the verdict reads a settled network.
            let calm = args.duration.is_some_and(|d| {
                run_started.elapsed() + Duration::from_secs(15) >= Duration::from_secs(d)
            });
            if !calm {
                chaos
                    .maybe_strike(
                        &net, &specs, &mut nodes, &mut anvil, &client, &rests, &ledger,
                    )
                    .await?;
            }
        }
        if interactive {
            let summary = summary(&client, &rests, &ledger, &spammer_id).await;
            print!("\x1b[2J\x1b[H{}", summary.text);
        }
        if args
            .duration
            .is_some_and(|d| run_started.elapsed() >= Duration::from_secs(d))
        {
            break;
        }
    }
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    // Let the last messages arrive, then read everything.
    tokio::time::sleep(Duration::from_secs(3)).await;
    collect(&client, &rests, &ledger).await;
    let mut summary = summary(&client, &rests, &ledger, &spammer_id).await;
    if let Some(chaos) = &chaos {
        let roots = chaos::check_roots(&deployer, contract, &client, &rests).await;
        summary.text.push_str(&chaos.report());
        summary.text.push_str(&roots.text);
        summary.failures.extend(roots.failures);
        summary.failures.extend(chaos.failures());
    }
    println!("{}", summary.text);
    step("stopping the nodes");
    drop(nodes);
    if let Err(e) = spammer.shutdown().await {
        eprintln!("the spammer node stopped with an error: {e}");
    }
    drop(chaos);
    drop(anvil);
    if args.duration.is_some() {
        let mode = if args.chaos { "chaos" } else { "devnet" };
        if summary.failures.is_empty() {
            if args.chaos {
                println!(
                    "chaos: PASS (honest messages delivered to every node that was up, spammer \
                     caught, every root the contract's)"
                );
            } else {
                println!("devnet: PASS (honest messages delivered everywhere, spammer caught)");
            }
        } else {
            for f in &summary.failures {
                println!("{mode}: FAIL: {f}");
            }
            std::process::exit(1);
        }
    }
    Ok(())
}

/// Each node publishes its limit every epoch, spread over the epoch.
async fn honest_traffic(
    client: reqwest::Client,
    rest: String,
    i: usize,
    limit: u32,
    epoch_secs: u64,
    ledger: Arc<Mutex<Ledger>>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let url = format!(
        "{rest}/relay/v1/messages/{}",
        encode_topic(DEFAULT_PUBSUB_TOPIC)
    );
    let gap = Duration::from_millis(epoch_secs * 1000 / (u64::from(limit) + 1));
    let mut counter = 0u64;
    while !*stop.borrow() {
        let epoch = now_secs() / epoch_secs;
        for _ in 0..limit {
            tokio::time::sleep(gap).await;
            if *stop.borrow() || now_secs() / epoch_secs != epoch {
                break;
            }
            counter += 1;
            let payload = format!("node{i} epoch{epoch} #{counter}");
            let message = RestMessage {
                payload: B64.encode(&payload),
                content_topic: CONTENT_TOPIC.into(),
                ..Default::default()
            };
            let ok = matches!(client.post(&url).json(&message).send().await, Ok(r) if r.status().is_success());
            let mut l = ledger
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if ok {
                l.published.insert(payload, (i, Instant::now()));
            } else {
                l.errors[i] += 1;
            }
        }
        // Wait for the next epoch.
        while !*stop.borrow() && now_secs() / epoch_secs == epoch {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Three messages per epoch, all with message id 0, until the member is slashed. They are
/// sent in the middle third of an epoch so that all three fall into it.
async fn spam_traffic(
    node: NodeHandle,
    epoch_secs: u64,
    ledger: Arc<Mutex<Ledger>>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut last_epoch = None;
    while !*stop.borrow() {
        let now = now_secs();
        let (epoch, into) = (now / epoch_secs, now % epoch_secs);
        if last_epoch != Some(epoch) && into >= epoch_secs / 3 && into < epoch_secs * 2 / 3 {
            last_epoch = Some(epoch);
            for k in 0..3 {
                let payload = format!("spam epoch{epoch} #{k}");
                let m = WakuMessage {
                    payload: payload.clone().into_bytes(),
                    content_topic: CONTENT_TOPIC.into(),
                    ..Default::default()
                };
                if let Ok(sent) = node
                    .publish_with(DEFAULT_PUBSUB_TOPIC, m, MessageIdChoice::Forced(0))
                    .await
                {
                    // The epoch the proof is for, from the timestamp the publisher set.
                    let stamped = sent.message.timestamp.unwrap_or(0).max(0) as u64
                        / 1_000_000_000
                        / epoch_secs;
                    ledger
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .spam_sent
                        .insert(payload, stamped);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Drains each node's message cache into the ledger.
async fn collect(client: &reqwest::Client, rests: &[String], ledger: &Mutex<Ledger>) {
    for (j, rest) in rests.iter().enumerate() {
        collect_one(client, j, rest, ledger).await;
    }
}

/// Drains node `j`'s message cache into the ledger.
async fn collect_one(client: &reqwest::Client, j: usize, rest: &str, ledger: &Mutex<Ledger>) {
    let url = format!(
        "{rest}/relay/v1/messages/{}",
        encode_topic(DEFAULT_PUBSUB_TOPIC)
    );
    let Ok(r) = client.get(&url).send().await else {
        return;
    };
    let messages: Vec<RestMessage> = r.json().await.unwrap_or_default();
    let mut l = ledger
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for m in messages {
        if let Ok(p) = B64.decode(&m.payload) {
            l.received[j].insert(String::from_utf8_lossy(&p).into_owned());
        }
    }
}

struct Summary {
    text: String,
    failures: Vec<String>,
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |s| {
        if s.is_finite() {
            format!("≤{:.1} ms", s * 1e3)
        } else {
            "slow".into()
        }
    })
}

async fn summary(
    client: &reqwest::Client,
    rests: &[String],
    ledger: &Mutex<Ledger>,
    spammer: &Identity,
) -> Summary {
    use std::fmt::Write;
    let mut out = String::new();
    let mut failures = Vec::new();
    let spammer_commitment = fr_to_hex(&spammer.commitment());
    let spammer_secret = fr_to_hex(&spammer.secret());
    let _ = writeln!(out, "rln-devnet  {}", chrono_like_now());
    let _ = writeln!(
        out,
        "{:<5} {:>5} {:>7} {:<12} {:>8} {:>7} {:>9} {:>5} {:>8} {:>7} {:>10} {:>10}  rejected by reason",
        "node",
        "peers",
        "block",
        "root",
        "accepted",
        "stored",
        "rejected",
        "spam",
        "secrets",
        "slashes",
        "prove p50",
        "verify p50"
    );
    let mut caught = false;
    let mut total_spam_rejects = 0.0;
    for (j, rest) in rests.iter().enumerate() {
        let health: serde_json::Value = match client.get(format!("{rest}/health")).send().await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        };
        let scrape = match client.get(format!("{rest}/metrics")).send().await {
            Ok(r) => Scrape::parse(&r.text().await.unwrap_or_default()),
            Err(_) => Scrape::default(),
        };
        let evidence: Vec<serde_json::Value> =
            match client.get(format!("{rest}/rln/v1/spam")).send().await {
                Ok(r) => r.json().await.unwrap_or_default(),
                Err(_) => Vec::new(),
            };
        caught |= evidence.iter().any(|e| {
            e["idCommitment"] == spammer_commitment.as_str()
                && e["recoveredSecret"] == spammer_secret.as_str()
        });
        let rejected = scrape.by_label("waku_rln_invalid_messages_total", "type");
        let reasons: Vec<String> = rejected
            .iter()
            .filter(|(_, v)| *v > 0.0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        total_spam_rejects += scrape.get("waku_rln_invalid_messages_total{type=\"spam\"}");
        let root = health["root"].as_str().unwrap_or("-");
        let _ = writeln!(
            out,
            "{:<5} {:>5} {:>7} {:<12} {:>8} {:>7} {:>9} {:>5} {:>8} {:>7} {:>10} {:>10}  {}",
            j,
            health["peers"]
                .as_u64()
                .map_or("-".into(), |p| p.to_string()),
            health["block"]
                .as_u64()
                .map_or("-".into(), |b| b.to_string()),
            format!("{}…", &root[..root.len().min(10)]),
            scrape.get("waku_rln_valid_messages_total"),
            scrape.get("rln_node_store_messages"),
            rejected.iter().map(|(_, v)| v).sum::<f64>(),
            scrape.get("waku_rln_spam_messages_total"),
            scrape.get("rln_node_secrets_recovered_total"),
            scrape.get("rln_node_slashes_total{result=\"slashed\"}"),
            ms(scrape.median("waku_rln_proof_generation_duration_seconds")),
            ms(scrape.median("waku_rln_proof_verification_duration_seconds")),
            reasons.join(" ")
        );
    }
    let l = ledger
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Honest messages old enough to have arrived everywhere.
    let settled: Vec<(&String, usize)> = l
        .published
        .iter()
        .filter(|(_, (_, at))| at.elapsed() > Duration::from_secs(2))
        .map(|(p, (o, _))| (p, *o))
        .collect();
    let expected = settled.len() * (rests.len() - 1);
    let mut expected = expected;
    let all = expected;
    let delivered: usize = settled
        .iter()
        .map(|(p, origin)| {
            let at = l.published.get(*p).map(|(_, at)| *at);
            (0..rests.len())
                .filter(|j| j != origin)
                .filter(|j| {
                    let excused = at.is_some_and(|at| l.excused(*j, *origin, at));
                    if excused && !l.received[*j].contains(*p) {
                        expected -= 1;
                        return false;
                    }
                    l.received[*j].contains(*p)
                })
                .count()
        })
        .sum();
    let mut excess_delivered = 0;
    for set in &l.received {
        let mut per_epoch: BTreeMap<u64, usize> = BTreeMap::new();
        for p in set.iter().filter(|p| p.starts_with("spam ")) {
            if let Some(e) = l.spam_sent.get(p) {
                *per_epoch.entry(*e).or_default() += 1;
            }
        }
        excess_delivered += per_epoch
            .values()
            .map(|c| c.saturating_sub(1))
            .sum::<usize>();
    }
    let _ = writeln!(
        out,
        "\nhonest messages: {} published, {delivered}/{expected} deliveries to the other nodes{}",
        l.published.len(),
        if all > expected {
            format!(
                " ({} more excused: the receiver was down, or the message was proved on a \
                 fork that was replaced)",
                all - expected
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(out, "spammer: {} messages sent with message id 0, {total_spam_rejects} rejected as spam, {excess_delivered} excess delivered, secret recovered: {}", l.spam_sent.len(), if caught { "yes" } else { "no" });
    let errors: usize = l.errors.iter().sum();
    if errors > 0 {
        let _ = writeln!(out, "publish errors (REST): {errors}");
    }
    if settled.is_empty() {
        failures.push("no honest message was published".into());
    } else if delivered < expected {
        failures.push(format!(
            "only {delivered} of {expected} honest deliveries happened"
        ));
    }
    if !caught {
        failures.push("no node recovered the spammer's secret".into());
    }
    if excess_delivered > 0 {
        failures.push(format!(
            "{excess_delivered} spam messages beyond the limit were delivered"
        ));
    }
    Summary {
        text: out,
        failures,
    }
}

fn chrono_like_now() -> String {
    let s = now_secs();
    format!(
        "{:02}:{:02}:{:02} UTC",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60
    )
}
