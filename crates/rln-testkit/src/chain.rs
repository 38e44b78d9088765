//! A real anvil chain on loopback with the membership contract deployed.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::network::EthereumWallet;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use rln_chain::contract::{ContractParams, RlnMembership};
use rln_chain::{MembershipSync, RetryPolicy, RpcPool, SyncConfig};
use rln_core::{fr_to_le_bytes, Fr, Identity};
use rln_db::{DbConfig, RlnDb};

/// The contract terms most tests use: 1000 wei per message, limits 1 to 100.
pub const STANDARD: ContractParams = ContractParams {
    deposit_per_message: U256::from_limbs([1_000, 0, 0, 0]),
    min_limit: 1,
    max_limit: 100,
    withdrawal_delay_secs: rln_chain::contract::DEFAULT_WITHDRAWAL_DELAY_SECS,
};

/// Terms for load tests: 1 wei per message and limits up to 60,000, so one account can pay
/// for thousands of memberships or one large limit.
pub const CHEAP: ContractParams = ContractParams {
    deposit_per_message: U256::from_limbs([1, 0, 0, 0]),
    min_limit: 1,
    max_limit: 60_000,
    withdrawal_delay_secs: rln_chain::contract::DEFAULT_WITHDRAWAL_DELAY_SECS,
};

/// anvil (from `make tools`) on an ephemeral loopback port.
pub fn spawn_anvil() -> AnvilInstance {
    Anvil::at(crate::paths::anvil()).spawn()
}

/// anvil on a fixed port that saves its chain to `state` when stopped and loads it on start
/// (for tests that restart the chain).
pub fn spawn_persistent_anvil(port: u16, state: &Path) -> Child {
    let child = Command::new(crate::paths::anvil())
        .args(["--port", &port.to_string(), "--state"])
        .arg(state)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("anvil starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "anvil did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// A provider that signs with anvil's account `n`. Nonces are read from the chain for every
/// transaction, so a reverted snapshot does not leave a stale nonce behind.
pub fn account(anvil: &AnvilInstance, n: usize) -> DynProvider {
    let key = anvil.keys()[n].clone();
    let wallet = EthereumWallet::from(alloy::signers::local::PrivateKeySigner::from(key));
    rln_chain::http::install_provider();
    ProviderBuilder::new()
        .with_simple_nonce_management()
        .wallet(wallet)
        .connect_http(anvil.endpoint_url())
        .erased()
}

/// The private key of anvil's account `n`, as `0x…` hex (what `--eth-private-key` takes).
pub fn private_key(anvil: &AnvilInstance, n: usize) -> String {
    format!("0x{}", alloy::hex::encode(anvil.keys()[n].to_bytes()))
}

/// A free TCP port on loopback (for processes that cannot report the port they bound).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A contract call argument from a field element (the contract reads commitments as
/// integers).
pub fn to_u256(value: Fr) -> U256 {
    U256::from_le_bytes(fr_to_le_bytes(&value))
}

/// anvil with the membership contract deployed by account 0.
pub struct TestChain {
    /// The chain.
    pub anvil: AnvilInstance,
    /// Account 0, which deployed the contract and pays for registrations.
    pub provider: DynProvider,
    /// The membership contract.
    pub contract: Address,
    /// Its terms.
    pub params: ContractParams,
}

impl TestChain {
    /// anvil with the contract deployed on [`STANDARD`] terms.
    pub async fn start() -> Self {
        Self::with_params(STANDARD).await
    }

    /// anvil with the contract deployed on the given terms.
    pub async fn with_params(params: ContractParams) -> Self {
        let anvil = spawn_anvil();
        let provider = account(&anvil, 0);
        let contract = rln_chain::deploy(&provider, params)
            .await
            .expect("the membership contract deploys");
        Self {
            anvil,
            provider,
            contract,
            params,
        }
    }

    /// The RPC endpoint.
    pub fn rpc(&self) -> String {
        self.anvil.endpoint()
    }

    /// The contract bound to account 0.
    pub fn membership(&self) -> RlnMembership::RlnMembershipInstance<DynProvider> {
        RlnMembership::new(self.contract, self.provider.clone())
    }

    /// Registers `identity` with `limit` messages per epoch, paying the deposit; returns its
    /// leaf index.
    pub async fn register(&self, identity: &Identity, limit: u32) -> u64 {
        let receipt = self
            .membership()
            .register(to_u256(identity.commitment()), limit)
            .value(self.params.deposit_per_message * U256::from(limit))
            .send()
            .await
            .expect("the registration is sent")
            .get_receipt()
            .await
            .expect("the registration is mined");
        let log = receipt
            .decoded_log::<RlnMembership::MembershipRegistered>()
            .expect("a registration event");
        u64::from(log.data.index)
    }

    /// A state configuration bound to this chain and contract (writes not synced to disk:
    /// tests do not survive power loss anyway).
    pub fn db_config(&self) -> DbConfig {
        DbConfig {
            chain_id: self.anvil.chain_id(),
            contract: self.contract.0 .0,
            sync_writes: false,
            ..DbConfig::default()
        }
    }

    /// A membership sync of this contract into `db`.
    pub fn sync(&self, db: Arc<RlnDb>, max_block_range: u64) -> MembershipSync {
        let rpc = RpcPool::new(&[self.rpc()], RetryPolicy::default()).expect("the endpoint parses");
        MembershipSync::new(
            rpc,
            db,
            SyncConfig {
                max_block_range,
                ..SyncConfig::new(self.contract, self.anvil.chain_id())
            },
        )
    }

    /// A state for this chain in `dir`, and a sync writing into it.
    pub fn follower(&self, dir: &Path, max_block_range: u64) -> (Arc<RlnDb>, MembershipSync) {
        let db = Arc::new(RlnDb::open(dir, self.db_config()).expect("the state opens"));
        let sync = self.sync(Arc::clone(&db), max_block_range);
        (db, sync)
    }
}
