//! `rln-node`: the RLN relay node (`run`), its REST clients (`publish`, `subscribe`) and the
//! membership tools. Every subcommand documents itself with `--help`.

mod client;
mod run;

use std::path::PathBuf;

use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use rln_chain::keystore::{Keystore, KeystoreMembership, PBKDF2_ROUNDS};
use rln_core::{fr_from_le_slice, fr_to_le_bytes, Fr, Identity};

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
    /// Generate a new RLN identity and write it to a file (keep it secret).
    Keygen(KeygenArgs),
    /// Register an identity on the membership contract and store the credential in a keystore.
    Register(RegisterArgs),
    /// Membership commands.
    #[command(subcommand)]
    Membership(MembershipCommand),
    /// Erase a membership held in the keystore; its deposit becomes withdrawable.
    Erase(EraseArgs),
    /// Withdraw the deposits of erased memberships to the signing account.
    Withdraw(WithdrawArgs),
}

#[derive(Debug, Subcommand)]
enum MembershipCommand {
    /// Show the memberships in a keystore (decrypted with the password).
    Show(ShowArgs),
}

/// Where the chain and the contract are, and who signs.
#[derive(Debug, Clone, Args)]
struct ChainArgs {
    /// Ethereum JSON-RPC endpoint.
    #[arg(
        long = "eth-rpc",
        env = "RLN_ETH_RPC",
        default_value = "http://127.0.0.1:8545"
    )]
    rpc: String,
    /// Address of the RLN membership contract.
    #[arg(long = "eth-contract", env = "RLN_ETH_CONTRACT")]
    contract: Address,
    /// Private key (hex) of the account that pays deposits and gas.
    #[arg(
        long = "eth-private-key",
        env = "RLN_ETH_PRIVATE_KEY",
        hide_env_values = true
    )]
    private_key: String,
}

/// The keystore file and its password.
#[derive(Debug, Clone, Args)]
struct KeystoreArgs {
    /// Keystore file (Waku RLN keystore v0.2 format).
    #[arg(long, env = "RLN_KEYSTORE", default_value = "rln_keystore.json")]
    keystore: PathBuf,
    /// Keystore password; asked for on the terminal when absent.
    #[arg(
        long = "keystore-password",
        env = "RLN_KEYSTORE_PASSWORD",
        hide_env_values = true
    )]
    password: Option<String>,
}

#[derive(Debug, Args)]
struct KeygenArgs {
    /// File to write the identity to (created with owner-only permissions).
    #[arg(long, default_value = "rln_identity.json")]
    out: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct RegisterArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    keystore: KeystoreArgs,
    /// Identity file from `rln-node keygen`; a fresh identity is generated when absent.
    #[arg(long)]
    identity: Option<PathBuf>,
    /// Messages per epoch this membership may send (the deposit is proportional).
    #[arg(long = "rln-limit", default_value_t = 1)]
    limit: u32,
}

#[derive(Debug, Args)]
struct ShowArgs {
    #[command(flatten)]
    keystore: KeystoreArgs,
}

#[derive(Debug, Args)]
struct EraseArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    keystore: KeystoreArgs,
    /// Membership hash in the keystore (the only one when omitted).
    #[arg(long)]
    membership: Option<String>,
}

#[derive(Debug, Args)]
struct WithdrawArgs {
    #[command(flatten)]
    chain: ChainArgs,
}

/// An identity file: the secret and how it was derived (trapdoor and nullifier, as Waku's
/// tools derive identities), 32-byte little-endian hex.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct IdentityFile {
    trapdoor: String,
    nullifier: String,
    secret: String,
    commitment: String,
}

fn hex32(value: &Fr) -> String {
    fr_to_le_bytes(value)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn unhex32(text: &str, what: &str) -> Result<Fr> {
    let bytes: Vec<u8> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<_, _>>()
        .with_context(|| format!("{what} is not hex"))?;
    fr_from_le_slice(&bytes).with_context(|| format!("{what} is not a field element"))
}

fn new_identity() -> (Identity, Fr, Fr) {
    Identity::random_derived(&mut rand::rngs::OsRng)
}

fn write_private(path: &PathBuf, text: &str, force: bool) -> Result<()> {
    if path.exists() && !force {
        bail!(
            "{} already exists; pass --force to overwrite it",
            path.display()
        );
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

fn read_identity(path: &PathBuf) -> Result<(Identity, Option<(Fr, Fr)>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the identity file {}", path.display()))?;
    let file: IdentityFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an rln-node identity file", path.display()))?;
    let identity = Identity::from_secret(unhex32(&file.secret, "secret")?);
    if hex32(&identity.commitment()) != file.commitment {
        bail!(
            "{}: the commitment does not match the secret",
            path.display()
        );
    }
    let derivation = (
        unhex32(&file.trapdoor, "trapdoor")?,
        unhex32(&file.nullifier, "nullifier")?,
    );
    Ok((identity, Some(derivation)))
}

fn password(args: &KeystoreArgs, confirm: bool) -> Result<String> {
    if let Some(p) = &args.password {
        return Ok(p.clone());
    }
    let first = rpassword::prompt_password(format!("Password for {}: ", args.keystore.display()))
        .context("cannot read a password from the terminal; pass --keystore-password or set RLN_KEYSTORE_PASSWORD")?;
    if confirm {
        let again = rpassword::prompt_password("Repeat the password: ")?;
        if again != first {
            bail!("the passwords do not match");
        }
    }
    Ok(first)
}

async fn signer(chain: &ChainArgs) -> Result<(DynProvider, Address)> {
    let (provider, address) = rln_chain::wallet_provider(&chain.rpc, &chain.private_key)
        .map_err(|e| anyhow::anyhow!("{e}; check --eth-private-key and --eth-rpc"))?;
    let chain_id = provider.get_chain_id().await.map_err(|e| {
        anyhow::anyhow!("the RPC endpoint {} is unreachable ({e}); check --eth-rpc and that the node is running", chain.rpc)
    })?;
    if provider.get_code_at(chain.contract).await?.is_empty() {
        bail!(
            "no contract is deployed at {} on chain {chain_id}; check --eth-contract",
            chain.contract
        );
    }
    Ok((provider, address))
}

fn pick(keystore: &Keystore, wanted: Option<&str>, path: &std::path::Path) -> Result<String> {
    let ids: Vec<&str> = keystore.memberships().collect();
    match (wanted, ids.as_slice()) {
        (Some(id), _) => Ok(id.to_string()),
        (None, [one]) => Ok(one.to_string()),
        (None, []) => bail!("{} holds no membership; register one first", path.display()),
        (None, many) => bail!(
            "{} holds {} memberships; choose one with --membership ({})",
            path.display(),
            many.len(),
            many.join(", ")
        ),
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(args) => run::run(*args).await?,
        Command::Publish(args) => client::publish(args).await?,
        Command::Subscribe(args) => client::subscribe(args).await?,
        Command::Keygen(args) => {
            let (identity, trapdoor, nullifier) = new_identity();
            let file = IdentityFile {
                trapdoor: hex32(&trapdoor),
                nullifier: hex32(&nullifier),
                secret: hex32(&identity.secret()),
                commitment: hex32(&identity.commitment()),
            };
            write_private(&args.out, &serde_json::to_string_pretty(&file)?, args.force)?;
            println!(
                "identity written to {} (keep it secret)",
                args.out.display()
            );
            println!("id commitment: {}", file.commitment);
        }
        Command::Register(args) => {
            let (identity, derivation) = match &args.identity {
                Some(path) => read_identity(path)?,
                None => {
                    let (identity, t, n) = new_identity();
                    (identity, Some((t, n)))
                }
            };
            let mut keystore = Keystore::load_or_new(&args.keystore.keystore)?;
            let password = password(&args.keystore, keystore.memberships().next().is_none())?;
            let (provider, _) = signer(&args.chain).await?;
            let chain_id = provider.get_chain_id().await?;
            eprintln!(
                "registering with a limit of {} messages per epoch...",
                args.limit
            );
            let registration =
                rln_chain::register(&provider, args.chain.contract, &identity, args.limit).await?;
            let membership = KeystoreMembership::new(
                &identity,
                derivation,
                chain_id,
                &args.chain.contract.to_checksum(None),
                registration.index,
                u64::from(args.limit),
            );
            let id = keystore.add(
                &membership,
                password.as_bytes(),
                PBKDF2_ROUNDS,
                &mut rand::rngs::OsRng,
            )?;
            keystore.save(&args.keystore.keystore)?;
            println!(
                "registered at index {} in block {} (deposit {} wei)",
                registration.index, registration.block, registration.deposit
            );
            println!(
                "credential {id} stored in {}",
                args.keystore.keystore.display()
            );
        }
        Command::Membership(MembershipCommand::Show(args)) => {
            let keystore = Keystore::load(&args.keystore.keystore)?;
            let password = password(&args.keystore, false)?;
            for id in keystore.memberships() {
                let m = keystore.get(id, password.as_bytes())?;
                let identity = m
                    .identity()
                    .map_err(|e| anyhow::anyhow!("credential {id}: {e}"))?;
                println!("membership {id}");
                println!("  chain id      {}", m.membership_contract.chain_id);
                println!("  contract      {}", m.membership_contract.address);
                println!("  index         {}", m.tree_index);
                println!(
                    "  limit         {}",
                    m.user_message_limit
                        .map_or("unknown".into(), |l| l.to_string())
                );
                println!("  id commitment {}", hex32(&identity.commitment()));
            }
        }
        Command::Erase(args) => {
            let keystore = Keystore::load(&args.keystore.keystore)?;
            let id = pick(
                &keystore,
                args.membership.as_deref(),
                &args.keystore.keystore,
            )?;
            let password = password(&args.keystore, false)?;
            let membership = keystore.get(&id, password.as_bytes())?;
            let identity = membership
                .identity()
                .map_err(|e| anyhow::anyhow!("credential {id}: {e}"))?;
            let (provider, _) = signer(&args.chain).await?;
            rln_chain::erase(&provider, args.chain.contract, &identity).await?;
            println!(
                "membership {id} (index {}) erased; its deposit can now be withdrawn",
                membership.tree_index
            );
        }
        Command::Withdraw(args) => {
            let (provider, account) = signer(&args.chain).await?;
            let amount = rln_chain::withdraw(&provider, args.chain.contract, account).await?;
            println!("withdrew {amount} wei to {account}");
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    // A node logs what it does; the one-shot tools only warn.
    let default_filter = match cli.command {
        Command::Run(_) => "warn,rln_relay=info,rln_chain=info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(err) = run(cli).await {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
