//! The membership tools: identities, registration, keystores, erasure and withdrawal.

use std::path::PathBuf;

use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider};
use anyhow::{bail, Context, Result};
use clap::Args;
use rln_chain::keystore::{Keystore, KeystoreMembership, PBKDF2_ROUNDS};
use rln_chain::IdentityFile;
use rln_core::{fr_to_hex, Fr, Identity};
use rln_db::MessageIdLedger;
use rln_node::keys::choose;

/// Where the chain and the contract are, and who signs.
#[derive(Debug, Clone, Args)]
pub(crate) struct ChainArgs {
    /// Ethereum JSON-RPC endpoint.
    #[arg(
        long = "eth-rpc",
        env = "RLN_ETH_RPC",
        default_value = rln_node::config::defaults::RPC
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
    /// PEM file of extra CA certificates for an https:// endpoint behind a private CA.
    #[arg(long = "eth-ca-file", env = "RLN_ETH_CA_FILE")]
    ca_file: Option<PathBuf>,
}

/// The keystore file and its password.
#[derive(Debug, Clone, Args)]
pub(crate) struct KeystoreArgs {
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
pub(crate) struct KeygenArgs {
    /// File to write the identity to (created with owner-only permissions).
    #[arg(long, default_value = "rln_identity.json")]
    out: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RegisterArgs {
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
pub(crate) struct ShowArgs {
    #[command(flatten)]
    keystore: KeystoreArgs,
}

#[derive(Debug, Args)]
pub(crate) struct EraseArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    keystore: KeystoreArgs,
    /// Membership hash in the keystore (the only one when omitted).
    #[arg(long)]
    membership: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct WithdrawArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    keystore: KeystoreArgs,
    /// Membership hash in the keystore (the only one when omitted).
    #[arg(long)]
    membership: Option<String>,
}

fn new_identity() -> (Identity, Fr, Fr) {
    Identity::random_derived(&mut rand::rngs::OsRng)
}

fn write_private(path: &std::path::Path, text: &str, force: bool) -> Result<()> {
    if path.exists() && !force {
        bail!(
            "{} already exists; pass --force to overwrite it",
            path.display()
        );
    }
    rln_db::secret_file::write_private(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn read_identity(path: &PathBuf) -> Result<(Identity, Option<(Fr, Fr)>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the identity file {}", path.display()))?;
    let stored =
        IdentityFile::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((stored.identity, Some((stored.trapdoor, stored.nullifier))))
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
    let (provider, address) =
        rln_chain::wallet_provider(&chain.rpc, &chain.private_key, chain.ca_file.as_deref())
            .map_err(|e| anyhow::anyhow!("{e}; check --eth-private-key and --eth-rpc"))?;
    let chain_id = provider.get_chain_id().await.map_err(|e| {
        anyhow::anyhow!(
            "the RPC endpoint {} is unreachable ({}); check --eth-rpc and that the node is running",
            rln_chain::redact_url(&chain.rpc),
            rln_chain::redact::redact_in(&e.to_string(), std::slice::from_ref(&chain.rpc))
        )
    })?;
    if provider.get_code_at(chain.contract).await?.is_empty() {
        bail!(
            "no contract is deployed at {} on chain {chain_id}; check --eth-contract",
            chain.contract
        );
    }
    Ok((provider, address))
}

/// `rln-node keygen`: a new identity in a file.
pub(crate) async fn keygen(args: KeygenArgs) -> Result<()> {
    let (identity, trapdoor, nullifier) = new_identity();
    let file = IdentityFile::new(&identity, trapdoor, nullifier);
    write_private(&args.out, &file.to_json(), args.force)?;
    println!(
        "identity written to {} (keep it secret)",
        args.out.display()
    );
    println!("id commitment: {}", file.commitment);
    Ok(())
}

/// `rln-node register`: registers an identity and stores the credential.
pub(crate) async fn register(args: RegisterArgs) -> Result<()> {
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
    // The contract refuses a commitment it ever held (even erased), so this identity never had
    // a membership here and never proved anything valid: it may publish at once.
    MessageIdLedger::open(&MessageIdLedger::path_for(&args.keystore.keystore))?
        .record_new(&identity.commitment())?;
    println!(
        "registered at index {} in block {} (deposit {} wei)",
        registration.index, registration.block, registration.deposit
    );
    println!(
        "credential {id} stored in {}",
        args.keystore.keystore.display()
    );
    Ok(())
}

/// `rln-node membership show`: the memberships of a keystore.
pub(crate) async fn show(args: ShowArgs) -> Result<()> {
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
        println!("  id commitment {}", fr_to_hex(&identity.commitment()));
    }
    Ok(())
}

/// The membership `chosen` (the only one when `None`) of the keystore, decrypted: its hash
/// in the keystore, the credential and the identity.
fn unlock(
    args: &KeystoreArgs,
    chosen: Option<&str>,
) -> Result<(String, KeystoreMembership, Identity)> {
    let keystore = Keystore::load(&args.keystore)?;
    let id = choose(&keystore, chosen, &args.keystore)?;
    let password = password(args, false)?;
    let membership = keystore.get(&id, password.as_bytes())?;
    let identity = membership
        .identity()
        .map_err(|e| anyhow::anyhow!("credential {id}: {e}"))?;
    Ok((id, membership, identity))
}

/// `rln-node erase`: erases a membership; its deposit stays frozen for the contract's
/// withdrawal delay, then `rln-node withdraw` pays it out.
pub(crate) async fn erase(args: EraseArgs) -> Result<()> {
    let (id, membership, identity) = unlock(&args.keystore, args.membership.as_deref())?;
    let (provider, _) = signer(&args.chain).await?;
    let unlock_at = rln_chain::erase(&provider, args.chain.contract, &identity).await?;
    println!(
        "membership {id} (index {}) erased; its deposit stays frozen, and slashable, until \
         unix time {unlock_at}; then run `rln-node withdraw`",
        membership.tree_index
    );
    Ok(())
}

/// `rln-node withdraw`: withdraws the deposit of an erased membership once the contract's
/// withdrawal delay has passed.
pub(crate) async fn withdraw(args: WithdrawArgs) -> Result<()> {
    let (_, _, identity) = unlock(&args.keystore, args.membership.as_deref())?;
    let (provider, account) = signer(&args.chain).await?;
    let amount = rln_chain::withdraw(&provider, args.chain.contract, &identity).await?;
    println!("withdrew {amount} wei to {account}");
    Ok(())
}
