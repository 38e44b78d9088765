//! The `rln-node` binary's membership commands against a real anvil chain.

use std::path::PathBuf;
use std::process::Command;

use alloy::providers::Provider;
use rln_chain::ContractParams;
use rln_testkit::node::NodeProcess;
use rln_testkit::TestChain;

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rln-node"))
}

async fn chain() -> TestChain {
    TestChain::start().await
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
    assert!(
        ok && out.contains("erased") && out.contains("frozen"),
        "{out}"
    );
    let withdraw = ["withdraw", "--keystore", ks, "--keystore-password", "pw"];
    // The deposit stays slashable for the contract's withdrawal delay (a day).
    let (ok, out) = rln_node(&withdraw, &env);
    assert!(!ok && out.contains("frozen until unix time"), "{out}");
    // anvil's clock moves a day on; the next block carries the new time.
    let delay = rln_chain::contract::DEFAULT_WITHDRAWAL_DELAY_SECS;
    let _: serde_json::Value = chain
        .provider
        .raw_request("evm_increaseTime".into(), (delay,))
        .await
        .unwrap();
    let _: serde_json::Value = chain
        .provider
        .raw_request("evm_mine".into(), ())
        .await
        .unwrap();
    let (ok, out) = rln_node(&withdraw, &env);
    assert!(ok && out.contains("withdrew 3000 wei"), "{out}");
    let (ok, out) = rln_node(&withdraw, &env);
    assert!(!ok && out.contains("nothing to withdraw"), "{out}");
}

/// Registers a membership with `rln-node register` into `dir/keystore.json` (password `pw`)
/// and returns the keystore's path.
fn register_with_cli(chain: &TestChain, dir: &std::path::Path, limit: &str) -> String {
    let contract = chain.contract.to_string();
    let rpc = chain.anvil.endpoint();
    let key = format!("0x{}", alloy::hex::encode(chain.anvil.keys()[0].to_bytes()));
    let keystore = dir.join("keystore.json");
    let ks = keystore.to_str().unwrap();
    let envs = [
        ("RLN_ETH_RPC", rpc.as_str()),
        ("RLN_ETH_CONTRACT", contract.as_str()),
        ("RLN_ETH_PRIVATE_KEY", key.as_str()),
    ];
    let (ok, out) = rln_node(
        &[
            "register",
            "--keystore",
            ks,
            "--keystore-password",
            "pw",
            "--rln-limit",
            limit,
        ],
        &envs,
    );
    assert!(ok, "{out}");
    ks.to_string()
}

/// Starts `rln-node run` and returns it with the first libp2p address it prints.
fn start_node(args: &[&str]) -> (NodeProcess, String) {
    let node = NodeProcess::start(&binary(), args);
    let addr = node.p2p.clone();
    (node, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_publish_and_subscribe_between_two_nodes() {
    let chain = chain().await;
    let dir = tempfile::tempdir().unwrap();
    let contract = chain.contract.to_string();
    let rpc = chain.anvil.endpoint();
    let keystore = register_with_cli(&chain, dir.path(), "5");
    let ks = keystore.as_str();

    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let common = [
        "--eth-rpc",
        rpc.as_str(),
        "--eth-contract",
        contract.as_str(),
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
    ];
    let mut args_a = common.to_vec();
    args_a.extend([
        "--data-dir",
        data_a.to_str().unwrap(),
        "--rest-address",
        "127.0.0.1:0",
    ]);
    args_a.extend(["--keystore", ks, "--keystore-password", "pw"]);
    let (a, addr_a) = start_node(&args_a);
    let mut args_b = common.to_vec();
    args_b.extend([
        "--data-dir",
        data_b.to_str().unwrap(),
        "--rest-address",
        "127.0.0.1:0",
        "--static-peer",
        &addr_a,
    ]);
    let (b, _) = start_node(&args_b);
    let url_a = a.rest.clone().expect("node A serves REST");

    // Subscribe on B in the background, then publish on A until the mesh carries it.
    let url_b = b.rest.clone().expect("node B serves REST");
    let subscribe_to = url_b.clone();
    let subscriber = std::thread::spawn(move || {
        rln_node(
            &[
                "subscribe",
                "--node",
                &subscribe_to,
                "--count",
                "1",
                "--timeout",
                "60",
            ],
            &[],
        )
    });
    let mut published = false;
    for _ in 0..40 {
        let (ok, out) = rln_node(&["publish", "--node", &url_a, "hello from the CLI"], &[]);
        if ok {
            assert!(out.starts_with("published 0x"), "{out}");
            published = true;
            break;
        }
        // Before the mesh forms the node says it has no peers; anything else is a failure.
        assert!(out.contains("503"), "{out}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(
        published,
        "publishing succeeds once the nodes are connected"
    );
    let (ok, out) = subscriber.join().unwrap();
    assert!(ok, "{out}");
    assert!(out.contains("hello from the CLI"), "{out}");

    // Every metric the Grafana dashboard charts is exported (by B, which has received a
    // message, so libp2p's per-topic families have samples).
    rln_chain::http::install_provider();
    let metrics = reqwest::get(format!("{url_b}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../grafana/rln-node.json"),
        )
        .unwrap(),
    )
    .unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for name in expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| {
                    w.starts_with("waku_rln_")
                        || w.starts_with("rln_node_")
                        || w.starts_with("libp2p_")
                })
            {
                // Counter families without samples yet still print their `# TYPE` line.
                let family = name.trim_end_matches("_bucket").trim_end_matches("_total");
                assert!(
                    metrics
                        .lines()
                        .any(|l| l.starts_with(family)
                            || l.starts_with(&format!("# TYPE {family} "))),
                    "the dashboard uses {name}, which /metrics does not export"
                );
            }
        }
    }

    // A node without a membership cannot publish, and says why.
    let (ok, out) = rln_node(&["publish", "--node", &url_b, "x"], &[]);
    assert!(!ok);
    assert!(out.contains("no RLN membership"), "{out}");
    // A node that is not running: one clear sentence.
    let (ok, out) = rln_node(&["publish", "--node", "http://127.0.0.1:9", "x"], &[]);
    assert!(!ok);
    assert!(out.contains("cannot reach the node's REST API"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_explains_every_setup_error_in_one_sentence() {
    let chain = chain().await;
    let dir = tempfile::tempdir().unwrap();
    let contract = chain.contract.to_string();
    let rpc = chain.anvil.endpoint();
    let keystore = register_with_cli(&chain, dir.path(), "1");
    let ks = keystore.as_str();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let base = |extra: &[&str]| -> (bool, String) {
        let mut args = vec![
            "run",
            "--data-dir",
            data,
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--rest-address",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        rln_node(&args, &[])
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--eth-rpc", &rpc], "set it with --eth-contract"),
        (
            vec![
                "--eth-rpc",
                &rpc,
                "--eth-contract",
                &contract,
                "--keystore",
                ks,
                "--keystore-password",
                "wrong",
            ],
            "password",
        ),
        (
            vec![
                "--eth-rpc",
                &rpc,
                "--eth-contract",
                &contract,
                "--keystore",
                "/nonexistent/keystore.json",
                "--keystore-password",
                "pw",
            ],
            "does not exist; register a membership into it first",
        ),
        (
            vec![
                "--eth-rpc",
                "http://127.0.0.1:9",
                "--eth-contract",
                &contract,
            ],
            "set it with --eth-chain-id",
        ),
        (
            vec![
                "--eth-rpc",
                "ws://rpc.example/v2/SECRETKEY",
                "--eth-contract",
                &contract,
            ],
            "ws://rpc.example/… is not an http:// or https:// URL",
        ),
        (
            vec!["--eth-rpc", &rpc, "--eth-contract", "0x1234"],
            "is not a 0x-prefixed 20-byte hex address",
        ),
        (
            vec!["--eth-rpc", &rpc, "--eth-contract", &contract, "--slash"],
            "--slash needs --eth-private-key",
        ),
    ];
    for (args, expected) in &cases {
        let (ok, out) = base(args);
        assert!(!ok, "{args:?} must fail");
        assert!(
            out.contains(expected),
            "{args:?}: expected `{expected}` in:\n{out}"
        );
        assert_eq!(
            out.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{out}"
        );
        assert!(!out.contains("panicked"), "{out}");
    }
    // A chain id the endpoint does not serve.
    let (ok, out) = base(&[
        "--eth-rpc",
        &rpc,
        "--eth-contract",
        &contract,
        "--eth-chain-id",
        "5",
    ]);
    assert!(!ok);
    assert!(out.contains("serves chain id 31337"), "{out}");
    // A data directory made for another contract.
    {
        let args = [
            "--data-dir",
            data,
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--rest-address",
            "127.0.0.1:0",
            "--eth-rpc",
            &rpc,
            "--eth-contract",
            &contract,
        ];
        let (_node, _) = start_node(&args);
    }
    let second = rln_chain::deploy(&chain.provider, ContractParams::default())
        .await
        .unwrap()
        .to_string();
    let (ok, out) = base(&["--eth-rpc", &rpc, "--eth-contract", &second]);
    assert!(!ok);
    assert!(
        out.contains("was made for") && out.contains("--reset"),
        "{out}"
    );
    // A REST port in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = format!("127.0.0.1:{}", taken.local_addr().unwrap().port());
    let other = dir.path().join("other");
    let (ok, out) = rln_node(
        &[
            "run",
            "--data-dir",
            other.to_str().unwrap(),
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--eth-rpc",
            &rpc,
            "--eth-contract",
            &contract,
            "--rest-address",
            &port,
        ],
        &[],
    );
    assert!(!ok);
    assert!(out.contains("is the port in use?"), "{out}");
}

/// Key refusals need no chain: the chain id is given and the RPC endpoint is down, so the
/// node gets as far as its keys. Each case gets its own data directory.
#[test]
fn run_refuses_keys_that_are_forgeable_or_do_not_belong_together() {
    let dir = tempfile::tempdir().unwrap();
    let zkeys = rln_testkit::paths::repo().join("zkeys");
    let path = |p: PathBuf| p.to_str().unwrap().to_string();
    let waku_zkey = path(zkeys.join("waku/rln_final.arkzkey"));
    let waku_graph = path(zkeys.join("waku/graph.bin"));
    let waku_vk = path(zkeys.join("waku/verification_key.json"));
    let dev_zkey = path(zkeys.join("rln_dev_insecure.zkey"));
    let full = std::fs::read(&waku_zkey).unwrap();
    // Damaged copies of the Waku proving key.
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        path(p)
    };
    let truncated = write("truncated.arkzkey", &full[..full.len() / 3]);
    let mut bytes = full.clone();
    bytes[100_000] ^= 0x5a; // inside the a_query points
    let corrupted = write("corrupted.arkzkey", &bytes);
    // One coefficient of matrix A changed: the first entry of its first row, right after
    // the proving key, the six counts, the row count and the row's length. It is −1; clearing
    // one of its bits keeps it a canonical field element.
    let pk_end = proving_key_len(&full);
    let mut bytes = full.clone();
    let coefficient = pk_end + 6 * 8 + 8 + 8;
    assert_eq!(bytes[coefficient + 3], 0xf0, "the coefficient is -1");
    bytes[coefficient + 3] ^= 0x10;
    let other_matrices = write("other-matrices.arkzkey", &bytes);

    let mut case = 0;
    let mut run = |extra: &[&str]| -> String {
        case += 1;
        let data = path(dir.path().join(format!("data{case}")));
        let mut args = vec![
            "run",
            "--data-dir",
            &data,
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-rest",
            "--eth-rpc",
            "http://127.0.0.1:9",
            "--eth-contract",
            "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        ];
        args.extend_from_slice(extra);
        let (ok, out) = rln_node(&args, &[]);
        assert!(!ok, "{extra:?} must fail:\n{out}");
        assert_eq!(
            out.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{extra:?}:\n{out}"
        );
        assert!(!out.contains("panicked"), "{out}");
        out
    };
    let expect = |out: String, wanted: &[&str]| {
        for w in wanted {
            assert!(out.contains(w), "expected `{w}` in:\n{out}");
        }
    };
    expect(
        run(&["--eth-chain-id", "11155111", "--keys", "dev"]),
        &[
            "INSECURE development key on chain 11155111",
            "--insecure-dev-keys",
        ],
    );
    expect(
        run(&[
            "--eth-chain-id",
            "31337",
            "--zkey",
            &dev_zkey,
            "--verifying-key",
            &waku_vk,
        ]),
        &["come from different setups"],
    );
    expect(
        run(&[
            "--eth-chain-id",
            "31337",
            "--zkey",
            &truncated,
            "--witness-graph",
            &waku_graph,
        ]),
        &["truncated"],
    );
    expect(
        run(&[
            "--eth-chain-id",
            "31337",
            "--zkey",
            &corrupted,
            "--witness-graph",
            &waku_graph,
        ]),
        &["invalid value in a_query"],
    );
    expect(
        run(&[
            "--eth-chain-id",
            "31337",
            "--zkey",
            &other_matrices,
            "--witness-graph",
            &waku_graph,
        ]),
        &["does not verify", "constraint matrices do not match"],
    );
    expect(
        run(&["--eth-chain-id", "31337", "--zkey", &waku_zkey]),
        &["5844 wires", "--witness-graph"],
    );
    // On a local development chain the dev key is accepted, with a warning in the log.
    let log = dir.path().join("dev-keys.log");
    let data = path(dir.path().join("data-dev"));
    let mut node = NodeProcess::start_logged(
        &binary(),
        &[
            "--data-dir",
            &data,
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-rest",
            "--eth-rpc",
            "http://127.0.0.1:9",
            "--eth-contract",
            "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            "--eth-chain-id",
            "31337",
            "--keys",
            "dev",
        ],
        Some(log.clone()),
    );
    let text = std::fs::read_to_string(&log).unwrap();
    node.kill();
    assert!(
        text.contains("INSECURE: proving and verifying with the development key"),
        "{text}"
    );
}

/// Where an arkzkey's proving key ends (arkworks uncompressed: G1 64 bytes, G2 128, vectors
/// a u64 length first).
fn proving_key_len(file: &[u8]) -> usize {
    let u64_at = |at: usize| u64::from_le_bytes(file[at..at + 8].try_into().unwrap()) as usize;
    let mut at = 64 + 3 * 128; // alpha_g1, beta_g2, gamma_g2, delta_g2
    at += 8 + 64 * u64_at(at); // gamma_abc_g1
    at += 2 * 64; // beta_g1, delta_g1
    for point in [64, 64, 128, 64, 64] {
        at += 8 + point * u64_at(at); // a, b_g1, b_g2, h, l queries
    }
    at
}
