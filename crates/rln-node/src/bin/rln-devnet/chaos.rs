//! `rln-devnet --chaos`: faults injected while the traffic runs, one every few seconds, in turn
//! a node killed with SIGKILL and restarted, anvil stopped and restarted from its state file,
//! and a reorganisation that drops a registration. Each fault records the stretch in which a
//! node may miss messages; the verdict then checks every node against the contract.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use alloy::node_bindings::AnvilInstance;
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider};
use anyhow::{Context, Result};
use rln_chain::RlnMembership;
use rln_core::{fr_from_le_bytes, fr_to_hex, Fr, Identity, MerkleTree, TREE_DEPTH};

use crate::{collect_one, spawn_node, Ledger, NetSpec, NodeSpec, Process};

/// How long after a restarted node is back (it has a peer again) it may still miss messages:
/// the mesh takes a few gossipsub heartbeats to graft it.
const REJOIN_GRACE: Duration = Duration::from_secs(6);
/// How long after a reorganisation messages proved against the dropped roots may be missing:
/// the nodes roll back at their next poll.
const REORG_GRACE: Duration = Duration::from_secs(6);

/// The fault injector and what it did.
pub(crate) struct Chaos {
    anvil_bin: PathBuf,
    anvil_port: u16,
    anvil_state: PathBuf,
    /// The anvil started by a restart (the first one is the devnet's `AnvilInstance`).
    restarted_anvil: Option<Child>,
    every: Duration,
    last: Instant,
    step: usize,
    kills: Vec<usize>,
    anvil_restarts: usize,
    reorgs: usize,
    problems: Vec<String>,
}

impl Chaos {
    pub(crate) fn new(
        anvil_bin: &Path,
        anvil_port: u16,
        anvil_state: &Path,
        every: Duration,
    ) -> Self {
        Self {
            anvil_bin: anvil_bin.to_path_buf(),
            anvil_port,
            anvil_state: anvil_state.to_path_buf(),
            restarted_anvil: None,
            every,
            last: Instant::now(),
            step: 0,
            kills: Vec::new(),
            anvil_restarts: 0,
            reorgs: 0,
            problems: Vec::new(),
        }
    }

    /// Injects the next fault if `every` has passed since the last one started.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn maybe_strike(
        &mut self,
        net: &NetSpec,
        specs: &[NodeSpec],
        nodes: &mut [Process],
        anvil: &mut AnvilInstance,
        client: &reqwest::Client,
        rests: &[String],
        ledger: &Mutex<Ledger>,
    ) -> Result<()> {
        if self.last.elapsed() < self.every {
            return Ok(());
        }
        // Faults are spaced start to start: a slow restart on a loaded machine does not push
        // the next fault out of a short run.
        let started = Instant::now();
        match self.step % 3 {
            0 => {
                let j = rand::random::<u32>() as usize % nodes.len();
                self.kill_and_restart(net, &specs[j], &mut nodes[j], client, &rests[j], ledger)
                    .await;
            }
            1 => self.restart_anvil(anvil).await?,
            _ => self.reorg(anvil, net, ledger).await?,
        }
        self.step += 1;
        self.last = started;
        Ok(())
    }

    async fn kill_and_restart(
        &mut self,
        net: &NetSpec,
        spec: &NodeSpec,
        node: &mut Process,
        client: &reqwest::Client,
        rest: &str,
        ledger: &Mutex<Ledger>,
    ) {
        let j = spec.index;
        eprintln!("chaos: kill -9 node {j}");
        // What it delivered so far is read first: its message cache dies with it.
        collect_one(client, j, rest, ledger).await;
        let from = Instant::now() - Duration::from_secs(1);
        let _ = node.child.kill();
        let _ = node.child.wait();
        let down = Duration::from_millis(1_000 + u64::from(rand::random::<u16>() % 3_000));
        tokio::time::sleep(down).await;
        let restarted = tokio::task::block_in_place(|| spawn_node(net, spec));
        match restarted {
            Ok(process) => {
                *node = process;
                self.kills.push(j);
                eprintln!("chaos: node {j} is back after {} ms down", down.as_millis());
            }
            Err(e) => {
                self.problems
                    .push(format!("node {j} did not restart on its state: {e:#}"));
                return;
            }
        }
        // Back means connected again.
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let peers: Vec<serde_json::Value> =
                match client.get(format!("{rest}/admin/v1/peers")).send().await {
                    Ok(r) => r.json().await.unwrap_or_default(),
                    Err(_) => Vec::new(),
                };
            if !peers.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        lock(ledger)
            .outages
            .push((Some(j), from, Instant::now() + REJOIN_GRACE));
    }

    /// Stops anvil with SIGTERM (it writes its state file) and starts it again on the same
    /// port from that file, a few seconds later.
    async fn restart_anvil(&mut self, anvil: &mut AnvilInstance) -> Result<()> {
        eprintln!("chaos: stopping anvil");
        match self.restarted_anvil.as_mut() {
            Some(child) => terminate(child),
            None => terminate(anvil.child_mut()),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let child = Command::new(&self.anvil_bin)
            .args(["--port", &self.anvil_port.to_string(), "--state"])
            .arg(&self.anvil_state)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("restarting {}", self.anvil_bin.display()))?;
        self.restarted_anvil = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", self.anvil_port)).is_err() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "anvil did not come back on port {}",
                self.anvil_port
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.anvil_restarts += 1;
        eprintln!("chaos: anvil is back");
        Ok(())
    }

    /// A fork with a registration on it, followed by the nodes, then replaced by a longer
    /// chain without it (`evm_snapshot`, register, mine, `evm_revert`, mine).
    async fn reorg(
        &mut self,
        anvil: &AnvilInstance,
        net: &NetSpec,
        ledger: &Mutex<Ledger>,
    ) -> Result<()> {
        eprintln!("chaos: reorganisation dropping a registration");
        // A fresh provider each time: nonces must come from the chain as it is after a revert.
        let key = format!("0x{}", alloy::hex::encode(anvil.keys()[9].to_bytes()));
        let (provider, _) = rln_chain::wallet_provider(&net.rpc, &key, None)?;
        let from = Instant::now();
        let snapshot: U256 = provider.raw_request("evm_snapshot".into(), ()).await?;
        let contract: Address = net.contract.parse()?;
        let dropped = Identity::random(&mut rand::rngs::OsRng);
        rln_chain::register(&provider, contract, &dropped, 1).await?;
        mine(&provider, 2).await?;
        // Long enough for the nodes to apply the fork's blocks.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let reverted: bool = provider
            .raw_request("evm_revert".into(), (snapshot,))
            .await?;
        anyhow::ensure!(reverted, "anvil refused to revert to its snapshot");
        mine(&provider, 4).await?;
        lock(ledger)
            .outages
            .push((None, from, Instant::now() + REORG_GRACE));
        self.reorgs += 1;
        Ok(())
    }

    /// One line of what was injected.
    pub(crate) fn report(&self) -> String {
        format!(
            "chaos: {} node kills (nodes {:?}), {} anvil restarts, {} reorganisations\n",
            self.kills.len(),
            self.kills,
            self.anvil_restarts,
            self.reorgs
        )
    }

    /// Faults that did not play out as they should.
    pub(crate) fn failures(&self) -> Vec<String> {
        let mut out = self.problems.clone();
        if self.kills.is_empty() && self.anvil_restarts == 0 && self.reorgs == 0 {
            out.push("the run was too short for any fault".into());
        }
        out
    }
}

impl Drop for Chaos {
    fn drop(&mut self) {
        if let Some(child) = self.restarted_anvil.as_mut() {
            terminate(child);
        }
    }
}

fn lock(ledger: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    ledger
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// SIGTERM, then a wait of up to 10 s before SIGKILL.
fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

async fn mine(provider: &DynProvider, blocks: usize) -> Result<()> {
    for _ in 0..blocks {
        let _: serde_json::Value = provider.raw_request("evm_mine".into(), ()).await?;
    }
    Ok(())
}

/// The verdict on the roots: every node's equals the one computed from the contract's leaves.
pub(crate) struct Roots {
    pub(crate) text: String,
    pub(crate) failures: Vec<String>,
}

/// The root of the contract's leaves, computed here.
async fn contract_root(provider: &DynProvider, contract: Address) -> Result<Fr> {
    let membership = RlnMembership::new(contract, provider.clone());
    let count = membership.memberCount().call().await?;
    let mut leaves = Vec::with_capacity(count as usize);
    let mut start = 0u32;
    while start < count {
        let end = count.min(start + 4096);
        for (k, v) in membership
            .leaves(start, end)
            .call()
            .await?
            .iter()
            .enumerate()
        {
            let leaf = fr_from_le_bytes(&v.to_le_bytes::<32>())
                .map_err(|e| anyhow::anyhow!("leaf {}: {e}", start as usize + k))?;
            leaves.push((u64::from(start) + k as u64, leaf));
        }
        start = end;
    }
    let mut tree = MerkleTree::in_memory(TREE_DEPTH)?;
    tree.set_leaves(&leaves)?;
    Ok(tree.root()?)
}

/// Waits (up to 30 s) for every node to report the contract's root.
pub(crate) async fn check_roots(
    provider: &DynProvider,
    contract: Address,
    client: &reqwest::Client,
    rests: &[String],
) -> Roots {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let expected = match contract_root(provider, contract).await {
            Ok(root) => fr_to_hex(&root),
            Err(e) => format!("(unreadable: {e})"),
        };
        let mut differing = Vec::new();
        for (j, rest) in rests.iter().enumerate() {
            let health: serde_json::Value = match client.get(format!("{rest}/health")).send().await
            {
                Ok(r) => r.json().await.unwrap_or_default(),
                Err(_) => serde_json::Value::Null,
            };
            let root = health["root"].as_str().unwrap_or("unreachable").to_string();
            if root != expected {
                differing.push(format!("node {j} has root {root}"));
            }
        }
        if differing.is_empty() {
            return Roots {
                text: format!("roots: every node has the contract's root {expected}\n"),
                failures: Vec::new(),
            };
        }
        if Instant::now() > deadline {
            return Roots {
                text: format!("roots: the contract's is {expected}\n"),
                failures: differing,
            };
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
