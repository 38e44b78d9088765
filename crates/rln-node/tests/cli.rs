//! The `rln-node` binary's membership commands against a real anvil chain.

use std::path::PathBuf;
use std::process::Command;

use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, U256};
use alloy::providers::{Provider, ProviderBuilder};
use rln_chain::ContractParams;

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rln-node"))
}

struct Chain {
    anvil: AnvilInstance,
    contract: Address,
}

/// anvil from `make tools`, with the membership contract deployed (1000 wei per message).
async fn chain() -> Chain {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    assert!(
        path.exists(),
        "{} is missing: run `make tools`",
        path.display()
    );
    let anvil = Anvil::at(path).spawn();
    let provider = ProviderBuilder::new()
        .wallet(anvil.wallet().unwrap())
        .connect_http(anvil.endpoint_url())
        .erased();
    let params = ContractParams {
        deposit_per_message: U256::from(1000u64),
        min_limit: 1,
        max_limit: 100,
    };
    let contract = rln_chain::deploy(&provider, params).await.unwrap();
    Chain { anvil, contract }
}

fn rln_node(args: &[&str], envs: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(binary())
        .args(args)
        .envs(envs.iter().copied())
        .env_remove("RLN_KEYSTORE_PASSWORD")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keygen_register_show_erase_withdraw() {
    let chain = chain().await;
    let dir = tempfile::tempdir().unwrap();
    let identity = dir.path().join("id.json");
    let keystore = dir.path().join("keystore.json");
    let (id, ks) = (identity.to_str().unwrap(), keystore.to_str().unwrap());
    let key = format!("0x{}", alloy::hex::encode(chain.anvil.keys()[2].to_bytes()));
    let rpc = chain.anvil.endpoint();
    let contract = chain.contract.to_string();
    let env = [
        ("RLN_ETH_RPC", rpc.as_str()),
        ("RLN_ETH_CONTRACT", contract.as_str()),
        ("RLN_ETH_PRIVATE_KEY", key.as_str()),
    ];

    let (ok, out) = rln_node(&["keygen", "--out", id], &[]);
    assert!(ok, "{out}");
    let (ok, out) = rln_node(&["keygen", "--out", id], &[]);
    assert!(!ok && out.contains("--force"), "{out}");

    let (ok, out) = rln_node(
        &[
            "register",
            "--identity",
            id,
            "--keystore",
            ks,
            "--keystore-password",
            "pw",
            "--rln-limit",
            "3",
        ],
        &env,
    );
    assert!(ok && out.contains("registered at index 0"), "{out}");

    let (ok, out) = rln_node(
        &[
            "membership",
            "show",
            "--keystore",
            ks,
            "--keystore-password",
            "pw",
        ],
        &[],
    );
    assert!(
        ok && out.contains("index         0") && out.contains("limit         3"),
        "{out}"
    );
    let (ok, out) = rln_node(
        &[
            "membership",
            "show",
            "--keystore",
            ks,
            "--keystore-password",
            "nope",
        ],
        &[],
    );
    assert!(!ok && out.contains("wrong password"), "{out}");

    // The same identity again: refused by the contract, said plainly.
    let other = dir.path().join("other.json");
    let (ok, out) = rln_node(
        &[
            "register",
            "--identity",
            id,
            "--keystore",
            other.to_str().unwrap(),
            "--keystore-password",
            "pw",
        ],
        &env,
    );
    assert!(!ok && out.contains("already registered"), "{out}");

    // An account without funds cannot pay the deposit.
    let poor = "0x1111111111111111111111111111111111111111111111111111111111111111";
    let poor_env = [env[0], env[1], ("RLN_ETH_PRIVATE_KEY", poor)];
    let (ok, out) = rln_node(
        &[
            "register",
            "--keystore",
            other.to_str().unwrap(),
            "--keystore-password",
            "pw",
        ],
        &poor_env,
    );
    assert!(!ok && out.contains("insufficient funds"), "{out}");

    // Nothing listens here.
    let dead_env = [("RLN_ETH_RPC", "http://127.0.0.1:9"), env[1], env[2]];
    let (ok, out) = rln_node(
        &[
            "register",
            "--keystore",
            other.to_str().unwrap(),
            "--keystore-password",
            "pw",
        ],
        &dead_env,
    );
    assert!(!ok && out.contains("unreachable"), "{out}");

    let (ok, out) = rln_node(
        &["erase", "--keystore", ks, "--keystore-password", "pw"],
        &env,
    );
    assert!(ok && out.contains("erased"), "{out}");
    let (ok, out) = rln_node(&["withdraw"], &env);
    assert!(ok && out.contains("withdrew 3000 wei"), "{out}");
    let (ok, out) = rln_node(&["withdraw"], &env);
    assert!(!ok && out.contains("nothing to withdraw"), "{out}");
}
