//! `rln-node`: the RLN relay node (`run`), its REST clients (`publish`, `subscribe`,
//! `history`) and the
//! membership tools. Every subcommand documents itself with `--help`. The node itself is the
//! `rln_node` library; this binary parses flags, prints, and turns errors into advice that
//! names flags.

mod client;
mod membership;
mod run;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use membership::{EraseArgs, KeygenArgs, RegisterArgs, ShowArgs, WithdrawArgs};
use rln_node::NodeError;

#[derive(Debug, Parser)]
#[command(
    name = "rln-node",
    version,
    about = "RLN relay node and membership tools",
    long_about = "A relay node for rate-limited (RLN) Waku-style messaging. Messages carry \
        zero-knowledge proofs that their sender is a registered member within its message \
        limit; nodes relay only valid ones, and recover (and optionally slash) the secret of \
        a member who exceeds its limit.\n\nStart with `rln-node run --help`."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a relay node: sync the membership tree, relay and validate RLN messages, serve REST.
    Run(Box<run::RunArgs>),
    /// Publish a message through a running node's REST API (the node proves it).
    Publish(client::PublishArgs),
    /// Print the messages a running node relays on a pubsub topic.
    Subscribe(client::SubscribeArgs),
    /// Print the stored history of content topics, oldest first, from a node's archive (or,
    /// with --peer, another store node's).
    History(client::HistoryArgs),
    /// Generate a new RLN identity and write it to a file (keep it secret).
    Keygen(KeygenArgs),
    /// Register an identity on the membership contract and store the credential in a keystore.
    Register(RegisterArgs),
    /// Membership commands.
    #[command(subcommand)]
    Membership(MembershipCommand),
    /// Erase a membership held in the keystore; its deposit stays frozen (slashable) for the
    /// contract's withdrawal delay.
    Erase(EraseArgs),
    /// Withdraw an erased membership's deposit to the signing account, once the contract's
    /// withdrawal delay has passed.
    Withdraw(WithdrawArgs),
}

#[derive(Debug, Subcommand)]
enum MembershipCommand {
    /// Show the memberships in a keystore (decrypted with the password).
    Show(ShowArgs),
}

async fn dispatch(cli: Cli, matches: &clap::ArgMatches) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => {
            let run_matches = matches.subcommand_matches("run").unwrap_or(matches);
            run::run(*args, &run::Given(run_matches)).await
        }
        Command::Publish(args) => client::publish(args).await,
        Command::Subscribe(args) => client::subscribe(args).await,
        Command::History(args) => client::history(args).await,
        Command::Keygen(args) => membership::keygen(args).await,
        Command::Register(args) => membership::register(args).await,
        Command::Membership(MembershipCommand::Show(args)) => membership::show(args).await,
        Command::Erase(args) => membership::erase(args).await,
        Command::Withdraw(args) => membership::withdraw(args).await,
    }
}

/// The flag an operator changes for a setting the library names by its TOML key.
fn flag_of(key: &str) -> Option<&'static str> {
    Some(match key {
        "data_dir" => "--data-dir",
        "chain.rpc" => "--eth-rpc",
        "chain.contract" => "--eth-contract",
        "chain.chain_id" => "--eth-chain-id",
        "chain.confirmations" => "--confirmations",
        "chain.poll_interval_ms" => "--poll-interval-ms",
        "chain.ca_file" => "--eth-ca-file",
        "network.listen" => "--listen",
        "network.cluster_id" => "--cluster-id",
        "network.static_peers" => "--static-peer",
        "network.bootstrap" => "--bootstrap",
        "network.pubsub_topics" => "--pubsub-topic",
        "rln.epoch_secs" => "--epoch-secs",
        "rln.root_window" => "--root-window",
        "rln.keys" => "--keys",
        "rln.zkey" => "--zkey",
        "rln.witness_graph" => "--witness-graph",
        "rln.verifying_key" => "--verifying-key",
        "validation.workers" => "--validation-workers",
        "membership.id" => "--membership",
        "slash.receiver" => "--slash-receiver",
        "slash.private_key" => "--eth-private-key",
        "rest.listen" => "--rest-address",
        "rest.token" => "--rest-token",
        "store.retention" => "--store-retention",
        "store.resume_peer" => "--store-resume-peer",
        "store.resume" => "--store-resume",
        _ => return None,
    })
}

/// Advice naming this binary's flags, for errors the libraries report in their own terms.
fn hint(err: &anyhow::Error) -> Option<String> {
    // `NodeError` wraps the others transparently, so they are matched inside it too: a
    // transparent error's source chain skips the wrapped error itself.
    for cause in err.chain() {
        let found = match cause.downcast_ref::<NodeError>() {
            Some(NodeError::Config {
                key: "rln.keys", ..
            }) => Some(
                "choose the key set with --keys or `rln.keys`; --insecure-dev-keys overrides \
                 this check on a test network"
                    .into(),
            ),
            Some(NodeError::Config { key, .. }) => flag_of(key)
                .map(|flag| format!("set it with {flag} or `{key}` in the configuration file")),
            Some(NodeError::Zk(rln_zk::ZkError::KeyMismatch(why)))
                if why.contains("witness graph of its circuit") =>
            {
                Some("give it with --witness-graph or `rln.witness_graph`".into())
            }
            Some(NodeError::Membership(_)) => Some(
                "create a membership with `rln-node register`, or pick one with --membership"
                    .into(),
            ),
            Some(NodeError::Db(db)) => db_hint(db),
            Some(NodeError::Chain(chain)) => chain_hint(chain),
            Some(_) => None,
            None => cause
                .downcast_ref::<rln_db::DbError>()
                .and_then(db_hint)
                .or_else(|| {
                    cause
                        .downcast_ref::<rln_chain::ChainError>()
                        .and_then(chain_hint)
                }),
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

fn db_hint(db: &rln_db::DbError) -> Option<String> {
    use rln_db::DbError::*;
    matches!(
        db,
        Mismatch { .. } | SchemaVersion { .. } | MissingColumnFamily { .. } | ReorgTooDeep { .. }
    )
    .then(|| {
        "pass --reset to wipe the state (it re-syncs from the chain), or use another --data-dir"
            .into()
    })
}

fn chain_hint(chain: &rln_chain::ChainError) -> Option<String> {
    use rln_chain::ChainError::*;
    let hint = match chain {
        Unreachable { .. } => "check --eth-rpc and that the execution node is running",
        WrongChain { .. } => "check --eth-rpc and --eth-chain-id",
        NoContract(_) => "check --eth-contract",
        ReorgTooDeep { .. } => "pass --reset to wipe the state and re-sync",
        Db(db) => return db_hint(db),
        _ => return None,
    };
    Some(hint.into())
}

#[tokio::main]
async fn main() {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // A node logs what it does; the one-shot tools only warn.
    let default_filter = match cli.command {
        Command::Run(_) => "warn,rln_node=info,rln_relay=info,rln_chain=info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(err) = dispatch(cli, &matches).await {
        eprintln!("error: {err:#}");
        if let Some(hint) = hint(&err) {
            eprintln!("hint: {hint}");
        }
        std::process::exit(1);
    }
}
