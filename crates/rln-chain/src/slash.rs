//! Slashing a spammer whose secret a double signal revealed: commit to
//! `keccak256(secret ‖ receiver)`, wait for the commit to be mined, then reveal. The contract
//! erases the member (if its holder has not already) and pays its deposit to the receiver; the
//! commit-reveal order keeps a watcher of the mempool from stealing the reward, and the
//! contract's withdrawal delay keeps the spammer from erasing and withdrawing first.

use alloy::network::EthereumWallet;
use alloy::primitives::{keccak256, Address, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use rln_core::{fr_to_le_bytes, Fr};

use crate::contract::RlnMembership;
use crate::error::ChainError;
use crate::membership::{confirmed, explain};

/// `keccak256(abi.encodePacked(uint256 secret, address receiver))`, what `commitSlash` takes.
pub fn slash_commitment(secret: &Fr, receiver: Address) -> B256 {
    let mut packed = [0u8; 52];
    packed[..32].copy_from_slice(&U256::from_le_bytes(fr_to_le_bytes(secret)).to_be_bytes::<32>());
    packed[32..].copy_from_slice(receiver.as_slice());
    keccak256(packed)
}

/// A provider that signs with `private_key` (hex, with or without `0x`), and its address.
/// Transactions from it are sent one at a time: each reads the account's pending nonce.
/// `ca_file` adds trusted certificates for an `https://` endpoint behind a private CA.
pub fn wallet_provider(
    rpc_url: &str,
    private_key: &str,
    ca_file: Option<&std::path::Path>,
) -> Result<(DynProvider, Address), ChainError> {
    let key: PrivateKeySigner = private_key
        .trim()
        .trim_start_matches("0x")
        .parse()
        .map_err(|_| ChainError::Config("the private key is not a hex secp256k1 key".into()))?;
    let address = key.address();
    let url = crate::http::parse_url(rpc_url)?;
    // The nonce is read from the chain for every transaction (alloy's default caches it):
    // a reorganisation can drop sent transactions, and the slasher's providers (one per
    // endpoint) share one account, so a cached count goes stale either way.
    let provider = ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::from(key))
        .connect_reqwest(crate::http::client(ca_file)?, url)
        .erased();
    Ok((provider, address))
}

/// What a completed slash did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlashOutcome {
    /// Block of the commit transaction.
    pub commit_block: u64,
    /// Block of the reveal transaction, which erased the member.
    pub reveal_block: u64,
    /// Who received the deposit.
    pub receiver: Address,
}

/// Submits slashes from one account.
#[derive(Debug, Clone)]
pub struct Slasher {
    provider: DynProvider,
    contract: Address,
    receiver: Address,
}

impl Slasher {
    /// A slasher that signs with `private_key` and pays rewards to `receiver` (by default its
    /// own account). `ca_file` as for [`wallet_provider`].
    pub fn new(
        rpc_url: &str,
        private_key: &str,
        contract: Address,
        receiver: Option<Address>,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Self, ChainError> {
        let (provider, account) = wallet_provider(rpc_url, private_key, ca_file)?;
        Ok(Self {
            provider,
            contract,
            receiver: receiver.unwrap_or(account),
        })
    }

    /// Commits, waits for the commit's receipt, then reveals. The reveal lands in a later
    /// block than the commit because it is only sent once the commit is mined.
    pub async fn slash(&self, secret: &Fr) -> Result<SlashOutcome, ChainError> {
        let membership = RlnMembership::new(self.contract, self.provider.clone());
        let commitment = slash_commitment(secret, self.receiver);
        let commit = confirmed(
            "commitSlash",
            membership.commitSlash(commitment).send().await,
        )
        .await?;
        let secret_u256 = U256::from_le_bytes(fr_to_le_bytes(secret));
        let reveal = confirmed(
            "revealSlash",
            membership
                .revealSlash(secret_u256, self.receiver)
                .send()
                .await,
        )
        .await?;
        Ok(SlashOutcome {
            commit_block: commit.block_number.unwrap_or_default(),
            reveal_block: reveal.block_number.unwrap_or_default(),
            receiver: self.receiver,
        })
    }

    /// The number of the endpoint's latest block.
    pub async fn head_block(&self) -> Result<u64, ChainError> {
        self.provider.get_block_number().await.map_err(|e| {
            explain(
                "reading the latest block",
                alloy::contract::Error::TransportError(e),
            )
        })
    }

    /// Whether a slash of this member can still take a deposit: it is active, or erased by
    /// its holder with the deposit still frozen.
    pub async fn is_slashable(&self, id_commitment: &Fr) -> Result<bool, ChainError> {
        let membership = RlnMembership::new(self.contract, self.provider.clone());
        membership
            .slashable(U256::from_le_bytes(fr_to_le_bytes(id_commitment)))
            .call()
            .await
            .map_err(|e| explain("reading a membership", e))
    }
}
