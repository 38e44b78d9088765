//! `rln-node run`: a relay node from a TOML file and flags (flags win over the file, the file
//! over the defaults). Defaults come from `rln_node::config::defaults`, the same constants
//! the TOML reader uses, so `--help` shows what a node really runs with.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use rln_node::config::{defaults, MembershipConfig, SlashConfig};
use rln_node::{banner, Node, NodeConfig};

/// Files and directories.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Node")]
pub(crate) struct NodeArgs {
    /// TOML configuration file (see `rln-node.example.toml`); flags override it.
    #[arg(long, short = 'c', env = "RLN_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Directory of the node's state (RocksDB) and libp2p key.
    #[arg(long, env = "RLN_DATA_DIR", default_value = defaults::DATA_DIR)]
    pub(crate) data_dir: PathBuf,
    /// Wipe the state in the data directory before starting (it re-syncs from the chain).
    #[arg(long)]
    pub(crate) reset: bool,
    /// Print the merged configuration as TOML and exit.
    #[arg(long)]
    pub(crate) print_config: bool,
}

/// The chain.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Chain")]
pub(crate) struct ChainFlags {
    /// Ethereum JSON-RPC endpoint; repeat (or separate with commas) for failover.
    #[arg(long = "eth-rpc", env = "RLN_ETH_RPC", value_delimiter = ',', default_value = defaults::RPC)]
    pub(crate) rpc: Vec<String>,
    /// Address of the membership contract.
    #[arg(long = "eth-contract", env = "RLN_ETH_CONTRACT")]
    pub(crate) contract: Option<String>,
    /// Expected chain id (asked from the RPC when absent; set it to start while the RPC is down).
    #[arg(long = "eth-chain-id")]
    pub(crate) chain_id: Option<u64>,
    /// Blocks behind the head to stay (0 follows the head and rolls back on reorgs).
    #[arg(long, default_value_t = defaults::CONFIRMATIONS)]
    pub(crate) confirmations: u64,
    /// Poll interval for new blocks, in milliseconds.
    #[arg(long, default_value_t = defaults::POLL_INTERVAL_MS)]
    pub(crate) poll_interval_ms: u64,
    /// PEM file of extra CA certificates for https:// endpoints behind a private CA (the
    /// system's trust store is always used).
    #[arg(long = "eth-ca-file", env = "RLN_ETH_CA_FILE")]
    pub(crate) ca_file: Option<PathBuf>,
}

/// libp2p.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Network")]
pub(crate) struct NetworkFlags {
    /// Multiaddress to listen on; repeatable. `/tcp/N` serves relay peers, `/tcp/N/ws`
    /// light clients (js-waku dials WebSocket only).
    #[arg(long, default_values = [defaults::LISTEN, defaults::LISTEN_WS])]
    pub(crate) listen: Vec<String>,
    /// The Waku cluster, announced with the shards of the pubsub topics (metadata protocol).
    #[arg(long, default_value_t = defaults::CLUSTER_ID)]
    pub(crate) cluster_id: u32,
    /// Do not serve light push to light clients.
    #[arg(long)]
    pub(crate) no_lightpush: bool,
    /// Messages each light-push client may have proved per epoch (default: an equal share of
    /// the membership's limit among the active clients).
    #[arg(long)]
    pub(crate) lightpush_client_share: Option<u64>,
    /// Do not serve filter to light clients.
    #[arg(long)]
    pub(crate) no_filter: bool,
    /// Keep no message history and do not serve store.
    #[arg(long)]
    pub(crate) no_store: bool,
    /// History to keep: `time:<s>`, `capacity:<n>`, `size:<N>MB|GB`, or several joined by `|`
    /// [default: time:172800, two days].
    #[arg(long, value_name = "POLICY")]
    pub(crate) store_retention: Option<String>,
    /// At start, fill the history missed while the node was down from a peer's store (the
    /// messages are checked as relay traffic is).
    #[arg(long)]
    pub(crate) store_resume: bool,
    /// The store node to resume from (multiaddress with /p2p/<id>) [default: the first
    /// static peer].
    #[arg(long, value_name = "MULTIADDR")]
    pub(crate) store_resume_peer: Option<String>,
    /// Keep the history in this PostgreSQL database instead of the node's RocksDB
    /// (postgres://user:password@host:port/dbname); store nodes given one database share
    /// one history.
    #[arg(
        long,
        env = "RLN_STORE_DB_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub(crate) store_db_url: Option<String>,
    /// Peer to keep connected (multiaddress with /p2p/<id>); repeatable, added to the file's.
    #[arg(long = "static-peer")]
    pub(crate) static_peers: Vec<String>,
    /// Peer to start discovery from (multiaddress with /p2p/<id>); repeatable, added to the file's.
    #[arg(long)]
    pub(crate) bootstrap: Vec<String>,
    /// Do not discover peers (Kademlia): keep to the static and bootstrap peers and to those
    /// that dial in, for a planned topology.
    #[arg(long)]
    pub(crate) no_discovery: bool,
    /// GossipSub mesh degree D (peers each message is pushed to in full; kept between
    /// D − D/3 and D + D/3).
    #[arg(long, default_value_t = defaults::MESH_DEGREE)]
    pub(crate) mesh_degree: usize,
    /// Pubsub topic to relay; repeatable.
    #[arg(long = "pubsub-topic", default_value = defaults::PUBSUB_TOPIC)]
    pub(crate) pubsub_topics: Vec<String>,
}

/// RLN.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "RLN")]
pub(crate) struct RlnFlags {
    /// Epoch length in seconds.
    #[arg(long, default_value_t = defaults::EPOCH_SECS)]
    pub(crate) epoch_secs: u64,
    /// Recent roots a proof may be made against.
    #[arg(long, default_value_t = defaults::ROOT_WINDOW)]
    pub(crate) root_window: usize,
    /// Key set: `waku` (the circuit and key Waku's nodes use) or `dev` (the INSECURE
    /// development key, refused off a local development chain without --insecure-dev-keys).
    #[arg(long, default_value_t = defaults::KEYS)]
    pub(crate) keys: rln_zk::KeySet,
    /// Proving key file (.zkey or .arkzkey) instead of the key set's.
    #[arg(long)]
    pub(crate) zkey: Option<PathBuf>,
    /// Witness graph of the --zkey circuit (when it is not this repository's circuit).
    #[arg(long)]
    pub(crate) witness_graph: Option<PathBuf>,
    /// Verifying key file (snarkjs JSON or arkworks bytes); the proving key's when absent.
    #[arg(long)]
    pub(crate) verifying_key: Option<PathBuf>,
    /// Accept the INSECURE development key on a chain that is not a local development chain.
    #[arg(long)]
    pub(crate) insecure_dev_keys: bool,
    /// Validation worker threads (0: one per core).
    #[arg(long, default_value_t = defaults::VALIDATION_WORKERS)]
    pub(crate) validation_workers: usize,
}

/// Publishing and slashing.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Membership and slashing")]
pub(crate) struct MemberFlags {
    /// Keystore with this node's membership (needed to publish).
    #[arg(long, env = "RLN_KEYSTORE")]
    pub(crate) keystore: Option<PathBuf>,
    /// Keystore password.
    #[arg(
        long = "keystore-password",
        env = "RLN_KEYSTORE_PASSWORD",
        hide_env_values = true
    )]
    pub(crate) password: Option<String>,
    /// Which membership of the keystore (the only one when absent).
    #[arg(long)]
    pub(crate) membership: Option<String>,
    /// Slash detected spammers on chain (commit, then reveal); needs --eth-private-key.
    #[arg(long)]
    pub(crate) slash: bool,
    /// Private key (hex) that pays for slash transactions.
    #[arg(
        long = "eth-private-key",
        env = "RLN_ETH_PRIVATE_KEY",
        hide_env_values = true
    )]
    pub(crate) private_key: Option<String>,
    /// Who receives slashed deposits (the slashing account when absent).
    #[arg(long)]
    pub(crate) slash_receiver: Option<String>,
}

/// REST.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "REST API")]
pub(crate) struct RestFlags {
    /// Address of the REST API and /metrics.
    #[arg(long, default_value_t = defaults::REST_LISTEN)]
    pub(crate) rest_address: SocketAddr,
    /// Disable the REST API and /metrics.
    #[arg(long)]
    pub(crate) no_rest: bool,
    /// Require `Authorization: Bearer <token>` on every request but GET /health.
    #[arg(long, env = "RLN_REST_TOKEN", hide_env_values = true)]
    pub(crate) rest_token: Option<String>,
    /// Host name requests may address (DNS-rebinding protection); repeatable [default: the
    /// loopback names when the API listens on loopback, any name otherwise].
    #[arg(long = "rest-allowed-host", value_name = "HOST")]
    pub(crate) rest_allowed_hosts: Vec<String>,
}

/// `rln-node run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) node: NodeArgs,
    #[command(flatten)]
    pub(crate) chain: ChainFlags,
    #[command(flatten)]
    pub(crate) network: NetworkFlags,
    #[command(flatten)]
    pub(crate) rln: RlnFlags,
    #[command(flatten)]
    pub(crate) member: MemberFlags,
    #[command(flatten)]
    pub(crate) rest: RestFlags,
}

/// Which flags the user gave (on the command line or through their environment variable),
/// as opposed to clap filling in a default: only those override the configuration file.
pub(crate) struct Given<'a>(pub(crate) &'a ArgMatches);

impl Given<'_> {
    fn has(&self, id: &str) -> bool {
        matches!(
            self.0.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    }
}

/// The configuration file merged with the flags.
pub(crate) fn merged_config(args: &RunArgs, given: &Given<'_>) -> Result<NodeConfig> {
    let mut c = match &args.node.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!("cannot read the configuration file {}", path.display())
            })?;
            toml::from_str::<NodeConfig>(&text).with_context(|| {
                format!("{} is not a valid rln-node configuration", path.display())
            })?
        }
        None => NodeConfig::default(),
    };
    if given.has("data_dir") {
        c.data_dir = args.node.data_dir.clone();
    }
    let ch = &args.chain;
    if given.has("rpc") {
        c.chain.rpc = ch.rpc.clone();
    }
    if let Some(v) = &ch.contract {
        c.chain.contract = v.clone();
    }
    c.chain.chain_id = ch.chain_id.or(c.chain.chain_id);
    if given.has("confirmations") {
        c.chain.confirmations = ch.confirmations;
    }
    if given.has("poll_interval_ms") {
        c.chain.poll_interval_ms = ch.poll_interval_ms;
    }
    if let Some(path) = &ch.ca_file {
        c.chain.ca_file = Some(path.clone());
    }
    let n = &args.network;
    if given.has("listen") {
        c.network.listen = n.listen.clone();
    }
    if given.has("cluster_id") {
        c.network.cluster_id = n.cluster_id;
    }
    if n.no_lightpush {
        c.lightpush.enabled = false;
    }
    if let Some(share) = n.lightpush_client_share {
        c.lightpush.client_share = Some(share);
    }
    if n.no_filter {
        c.filter.enabled = false;
    }
    if n.no_store {
        c.store.enabled = false;
    }
    if let Some(policy) = &n.store_retention {
        c.store.retention = policy.clone();
    }
    if n.store_resume {
        c.store.resume = true;
    }
    if let Some(peer) = &n.store_resume_peer {
        c.store.resume_peer = Some(peer.clone());
    }
    if let Some(url) = &n.store_db_url {
        c.store.db_url = Some(url.clone());
    }
    c.network
        .static_peers
        .extend(n.static_peers.iter().cloned());
    c.network.bootstrap.extend(n.bootstrap.iter().cloned());
    if n.no_discovery {
        c.network.discovery = false;
    }
    if given.has("mesh_degree") {
        c.network.mesh_degree = n.mesh_degree;
    }
    if given.has("pubsub_topics") {
        c.network.pubsub_topics = n.pubsub_topics.clone();
    }
    let r = &args.rln;
    if given.has("epoch_secs") {
        c.rln.epoch_secs = r.epoch_secs;
    }
    if given.has("root_window") {
        c.rln.root_window = r.root_window;
    }
    if given.has("keys") {
        c.rln.keys = r.keys;
    }
    if let Some(v) = &r.zkey {
        c.rln.zkey = Some(v.clone());
    }
    if let Some(v) = &r.witness_graph {
        c.rln.witness_graph = Some(v.clone());
    }
    if let Some(v) = &r.verifying_key {
        c.rln.verifying_key = Some(v.clone());
    }
    if r.insecure_dev_keys {
        c.rln.insecure_dev_keys = true;
    }
    if given.has("validation_workers") {
        c.validation.workers = r.validation_workers;
    }
    let m = &args.member;
    if let Some(keystore) = &m.keystore {
        c.membership = Some(MembershipConfig {
            keystore: keystore.clone(),
            password: String::new(),
            id: None,
        });
    }
    if let Some(member) = c.membership.as_mut() {
        if let Some(p) = &m.password {
            member.password = p.clone();
        }
        if let Some(id) = &m.membership {
            member.id = Some(id.clone());
        }
    }
    if m.slash {
        let Some(key) = m
            .private_key
            .clone()
            .or_else(|| c.slash.as_ref().map(|s| s.private_key.clone()))
        else {
            bail!("--slash needs --eth-private-key (or RLN_ETH_PRIVATE_KEY) to pay for the slash transactions");
        };
        // The command line names the key (and maybe the receiver); the rest of `[slash]`
        // in the file stays.
        let mut slash = c.slash.take().unwrap_or_else(|| SlashConfig::new(""));
        slash.private_key = key;
        if let Some(receiver) = &m.slash_receiver {
            slash.receiver = Some(receiver.clone());
        }
        c.slash = Some(slash);
    }
    if given.has("rest_address") {
        c.rest.listen = Some(args.rest.rest_address);
    }
    if args.rest.no_rest {
        c.rest.listen = None;
    }
    if let Some(token) = &args.rest.rest_token {
        c.rest.token = Some(token.clone());
    }
    if !args.rest.rest_allowed_hosts.is_empty() {
        c.rest.allowed_hosts = args.rest.rest_allowed_hosts.clone();
    }
    Ok(c)
}

/// Runs the node until Ctrl-C or SIGTERM.
pub(crate) async fn run(args: RunArgs, given: &Given<'_>) -> Result<()> {
    let config = merged_config(&args, given)?;
    if args.node.print_config {
        let mut shown = config.clone();
        if let Some(s) = shown.slash.as_mut() {
            s.private_key = "<hidden>".into();
        }
        if let Some(m) = shown.membership.as_mut() {
            m.password = "<hidden>".into();
        }
        print!("{}", toml::to_string_pretty(&shown)?);
        return Ok(());
    }
    // Before asking for a password or loading keys: a typo fails in milliseconds.
    config.validate()?;
    if let Some(member) = &config.membership {
        if member.password.is_empty() {
            let mut member = member.clone();
            member.password = rpassword::prompt_password(format!("Password for {}: ", member.keystore.display()))
                .context("cannot read the keystore password; pass --keystore-password or set RLN_KEYSTORE_PASSWORD")?;
            return start(
                NodeConfig {
                    membership: Some(member),
                    ..config
                },
                args.node.reset,
            )
            .await;
        }
    }
    start(config, args.node.reset).await
}

async fn start(config: NodeConfig, reset: bool) -> Result<()> {
    let db_dir = config.data_dir.join("db");
    if reset && db_dir.exists() {
        std::fs::remove_dir_all(&db_dir)
            .with_context(|| format!("cannot wipe {}", db_dir.display()))?;
        eprintln!("wiped {}", db_dir.display());
    }
    eprintln!(
        "starting rln-node (loading keys, opening {})...",
        config.data_dir.display()
    );
    let node = Node::start(config).await?;
    let handle = node.handle();
    println!("peer id   {}", handle.peer_id());
    for addr in handle.listen_addrs() {
        println!("{}{addr}", banner::LISTENING);
    }
    if let Some(rest) = node.rest_addr() {
        println!(
            "{}http://{rest}  (health: /health, metrics: /metrics)",
            banner::REST_API
        );
    }
    match handle.publisher() {
        Some(p) => println!(
            "publishing as member {} (limit {} per {} s epoch)",
            p.member().index,
            p.member().limit,
            handle.config().rln.epoch_secs
        ),
        None => println!("relay only (no keystore given)"),
    }
    tokio::select! {
        _ = wait_for_signal() => eprintln!("stopping..."),
        _ = node.stopping() => eprintln!("a background task failed; stopping..."),
    }
    node.shutdown().await?;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{FromArgMatches, Parser};

    /// `rln-node run` alone, as the binary parses it.
    #[derive(Debug, Parser)]
    struct Run {
        #[command(flatten)]
        args: RunArgs,
    }

    fn merged(args: &[&str]) -> NodeConfig {
        use clap::CommandFactory;
        let matches = Run::command()
            .try_get_matches_from(std::iter::once("run").chain(args.iter().copied()))
            .unwrap();
        let run = Run::from_arg_matches(&matches).unwrap();
        merged_config(&run.args, &Given(&matches)).unwrap()
    }

    #[test]
    fn flags_override_the_file_only_when_given() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        std::fs::write(
            &file,
            "[chain]\ncontract = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\npoll_interval_ms = 300\n\n[rln]\nepoch_secs = 30\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let c = merged(&["--config", path]);
        assert_eq!((c.rln.epoch_secs, c.chain.poll_interval_ms), (30, 300));
        assert_eq!(c.rln.root_window, defaults::ROOT_WINDOW);
        // A flag given with the default's value still wins over the file.
        let c = merged(&["--config", path, "--epoch-secs", "600"]);
        assert_eq!((c.rln.epoch_secs, c.chain.poll_interval_ms), (600, 300));
        let c = merged(&["--config", path, "--no-rest"]);
        assert_eq!(c.rest.listen, None);
    }

    #[test]
    fn help_prints_the_defaults_the_node_runs_with() {
        use clap::CommandFactory;
        let help = Run::command().render_long_help().to_string();
        for default in [
            format!("[default: {}]", defaults::EPOCH_SECS),
            format!("[default: {}]", defaults::POLL_INTERVAL_MS),
            format!("[default: {}]", defaults::REST_LISTEN),
            format!("[default: {} {}]", defaults::LISTEN, defaults::LISTEN_WS),
            format!("[default: {}]", defaults::CLUSTER_ID),
        ] {
            assert!(help.contains(&default), "--help lacks {default}:\n{help}");
        }
    }

    #[test]
    fn the_example_configuration_parses_and_shows_the_defaults() {
        let text = include_str!("../../../../../rln-node.example.toml");
        let parsed: NodeConfig = toml::from_str(text).unwrap();
        let defaults = NodeConfig::default();
        assert_eq!(
            toml::to_string(&NodeConfig {
                chain: rln_node::config::ChainConfig {
                    contract: String::new(),
                    ..parsed.chain.clone()
                },
                ..parsed
            })
            .unwrap(),
            toml::to_string(&defaults).unwrap(),
            "rln-node.example.toml documents the defaults"
        );
    }
}
