//! `rln-node run`: a relay node from a TOML file and flags (flags win).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use rln_relay::config::{MembershipConfig, SlashConfig};
use rln_relay::{Node, NodeConfig};

/// Files and directories.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Node")]
pub(crate) struct NodeArgs {
    /// TOML configuration file (see `rln-node.example.toml`); flags override it.
    #[arg(long, short = 'c', env = "RLN_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Directory of the node's state (RocksDB) and libp2p key [default: rln-node-data].
    #[arg(long, env = "RLN_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
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
    /// Ethereum JSON-RPC endpoint; repeat for failover [default: http://127.0.0.1:8545].
    #[arg(long = "eth-rpc", env = "RLN_ETH_RPC", value_delimiter = ',')]
    pub(crate) rpc: Vec<String>,
    /// Address of the membership contract.
    #[arg(long = "eth-contract", env = "RLN_ETH_CONTRACT")]
    pub(crate) contract: Option<String>,
    /// Expected chain id (asked from the RPC when absent).
    #[arg(long = "eth-chain-id")]
    pub(crate) chain_id: Option<u64>,
    /// Blocks behind the head to stay [default: 0, follow the head and roll back on reorgs].
    #[arg(long)]
    pub(crate) confirmations: Option<u64>,
    /// Poll interval for new blocks, in milliseconds [default: 1000].
    #[arg(long)]
    pub(crate) poll_interval_ms: Option<u64>,
}

/// libp2p.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Network")]
pub(crate) struct NetworkFlags {
    /// Multiaddress to listen on; repeatable [default: /ip4/0.0.0.0/tcp/60000].
    #[arg(long)]
    pub(crate) listen: Vec<String>,
    /// Peer to keep connected (multiaddress with /p2p/<id>); repeatable.
    #[arg(long = "static-peer")]
    pub(crate) static_peers: Vec<String>,
    /// Peer to start discovery from (multiaddress with /p2p/<id>); repeatable.
    #[arg(long)]
    pub(crate) bootstrap: Vec<String>,
    /// Pubsub topic to relay; repeatable [default: /waku/2/rs/1/0].
    #[arg(long = "pubsub-topic")]
    pub(crate) pubsub_topics: Vec<String>,
}

/// RLN.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "RLN")]
pub(crate) struct RlnFlags {
    /// Epoch length in seconds [default: 600].
    #[arg(long)]
    pub(crate) epoch_secs: Option<u64>,
    /// Acceptable root window [default: 50].
    #[arg(long)]
    pub(crate) root_window: Option<usize>,
    /// Ceremony proving key (.zkey); the INSECURE development key when absent.
    #[arg(long)]
    pub(crate) zkey: Option<PathBuf>,
    /// Validation worker threads [default: one per core].
    #[arg(long)]
    pub(crate) validation_workers: Option<usize>,
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
    /// Who receives slashed deposits [default: the slashing account].
    #[arg(long)]
    pub(crate) slash_receiver: Option<String>,
}

/// REST.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "REST API")]
pub(crate) struct RestFlags {
    /// Address of the REST API and /metrics [default: 127.0.0.1:8645].
    #[arg(long)]
    pub(crate) rest_address: Option<SocketAddr>,
    /// Disable the REST API and /metrics.
    #[arg(long)]
    pub(crate) no_rest: bool,
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

/// The configuration file merged with the flags.
pub(crate) fn merged_config(args: &RunArgs) -> Result<NodeConfig> {
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
    if let Some(d) = &args.node.data_dir {
        c.data_dir = d.clone();
    }
    let ch = &args.chain;
    if !ch.rpc.is_empty() {
        c.chain.rpc = ch.rpc.clone();
    }
    if let Some(v) = &ch.contract {
        c.chain.contract = v.clone();
    }
    c.chain.chain_id = ch.chain_id.or(c.chain.chain_id);
    if let Some(v) = ch.confirmations {
        c.chain.confirmations = v;
    }
    if let Some(v) = ch.poll_interval_ms {
        c.chain.poll_interval_ms = v;
    }
    let n = &args.network;
    if !n.listen.is_empty() {
        c.network.listen = n.listen.clone();
    }
    c.network
        .static_peers
        .extend(n.static_peers.iter().cloned());
    c.network.bootstrap.extend(n.bootstrap.iter().cloned());
    if !n.pubsub_topics.is_empty() {
        c.network.pubsub_topics = n.pubsub_topics.clone();
    }
    let r = &args.rln;
    if let Some(v) = r.epoch_secs {
        c.rln.epoch_secs = v;
    }
    if let Some(v) = r.root_window {
        c.rln.root_window = v;
    }
    if let Some(v) = &r.zkey {
        c.rln.zkey = Some(v.clone());
    }
    if let Some(v) = r.validation_workers {
        c.validation.workers = v;
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
        c.slash = Some(SlashConfig {
            private_key: key,
            receiver: m.slash_receiver.clone(),
        });
    }
    if let Some(a) = args.rest.rest_address {
        c.rest.listen = Some(a);
    }
    if args.rest.no_rest {
        c.rest.listen = None;
    }
    if c.chain.contract.is_empty() {
        bail!("no membership contract given; pass --eth-contract or set chain.contract in the configuration file");
    }
    Ok(c)
}

/// Runs the node until Ctrl-C or SIGTERM.
pub(crate) async fn run(args: RunArgs) -> Result<()> {
    let config = merged_config(&args)?;
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
    for _ in 0..50 {
        if !node.listen_addrs().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("peer id   {}", node.peer_id());
    for addr in node.listen_addrs() {
        println!("listening {addr}");
    }
    if let Some(rest) = node.rest_addr() {
        println!("REST API  http://{rest}  (health: /health, metrics: /metrics)");
    }
    match &node.publisher {
        Some(p) => println!(
            "publishing as member {} (limit {} per {} s epoch)",
            p.member().index,
            p.member().limit,
            node.config.rln.epoch_secs
        ),
        None => println!("relay only (no keystore given)"),
    }
    wait_for_signal().await;
    eprintln!("stopping...");
    node.shutdown().await;
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

    #[test]
    fn the_example_configuration_parses_and_shows_the_defaults() {
        let text = include_str!("../../../rln-node.example.toml");
        let parsed: NodeConfig = toml::from_str(text).unwrap();
        let defaults = NodeConfig::default();
        assert_eq!(
            toml::to_string(&NodeConfig {
                chain: rln_relay::config::ChainConfig {
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
