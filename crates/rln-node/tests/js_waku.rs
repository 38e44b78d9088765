//! Real Waku light clients against rln-node: the pinned js-waku SDK (`tools/package.json`),
//! run under Node.js by `tests/scripts/edge-clients.mjs`, against two `rln-node run`
//! processes and anvil on loopback.
//!
//! Client A light-pushes messages without proofs to node 1 over WebSocket + mplex; node 1
//! proves them with its membership and relays them to node 2; client B, filter-subscribed
//! through node 2, receives each once. Encrypted messages cross in both directions between
//! the SDK and rln-node's payload encryption. Client A's pushes past the membership's limit
//! are refused, and no node ever sees spam.
//!
//! Then the store: a relay spammer (an in-process node with its own membership) sends node 2
//! two messages under one message id, and the second is rejected as spam. Client C, started
//! only now, reads node 2's history of the content topic with js-waku's store client, in
//! pages of three: every stored message exactly once, in order, with the payloads sent, and
//! neither the ephemeral message (which filter did deliver) nor the spam. Node 2 is killed
//! and restarted, and the same query gives the same answer.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use rln_relay::wire::payload;
use rln_relay::{MessageIdChoice, WakuMessage};
use rln_testkit::node::{loopback_config, NodeProcess};
use rln_testkit::{paths, TestChain};
use serde_json::Value;

const TOPIC: &str = "/waku/2/rs/1/0";
const CONTENT_TOPIC: &str = "/rln-test/1/edge/proto";
/// Node 1's membership: every message of the run fits, and the extras do not.
const LIMIT: u32 = 7;
/// Plain pushes of client A.
const PLAIN: usize = 2;
/// Pushes after the limit is used.
const EXTRA: usize = 2;

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rln-node"))
}

async fn get_json(url: &str) -> Value {
    rln_chain::http::install_provider();
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// Waits until `node` has a relay peer on the topic (light push answers 505 before).
async fn wait_for_relay_peer(rest: &str) {
    for _ in 0..120 {
        let peers = get_json(&format!("{rest}/admin/v1/peers")).await;
        let on_topic = peers.as_array().is_some_and(|list| {
            list.iter().any(|p| {
                p["topics"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == TOPIC))
            })
        });
        if on_topic {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("node at {rest} never got a relay peer on {TOPIC}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_waku_light_clients_push_through_one_node_and_filter_through_another() {
    let chain = TestChain::start().await;
    let dir = tempfile::tempdir().unwrap();
    let member = chain.register_member(dir.path(), LIMIT).await;
    // The relay spammer's membership, registered before any node starts so that every node
    // knows its root.
    let spam_dir = dir.path().join("spammer");
    std::fs::create_dir_all(&spam_dir).unwrap();
    let spam_member = chain.register_member(&spam_dir, 1).await;
    let rpc = chain.rpc();
    let contract = chain.contract.to_string();
    let (data1, data2) = (dir.path().join("n1"), dir.path().join("n2"));
    let (log1, log2) = (dir.path().join("n1.log"), dir.path().join("n2.log"));
    let keystore = member.keystore.to_str().unwrap().to_string();
    // A day-long epoch: the run never crosses into a fresh quota.
    let common = [
        "--eth-rpc",
        rpc.as_str(),
        "--eth-contract",
        contract.as_str(),
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--listen",
        "/ip4/127.0.0.1/tcp/0/ws",
        "--rest-address",
        "127.0.0.1:0",
        "--epoch-secs",
        "86400",
    ];
    let mut args1 = common.to_vec();
    args1.extend([
        "--data-dir",
        data1.to_str().unwrap(),
        "--keystore",
        &keystore,
        "--keystore-password",
        rln_testkit::member::PASSWORD,
    ]);
    let node1 = NodeProcess::start_logged(&binary(), &args1, Some(log1.clone()));
    let mut args2 = common.to_vec();
    args2.extend([
        "--data-dir",
        data2.to_str().unwrap(),
        "--static-peer",
        node1.p2p.as_str(),
    ]);
    let mut node2 = NodeProcess::start_logged(&binary(), &args2, Some(log2.clone()));
    let ws1 = node1
        .ws_addr()
        .expect("node 1 listens on WebSocket")
        .to_string();
    let ws2 = node2
        .ws_addr()
        .expect("node 2 listens on WebSocket")
        .to_string();
    let rest1 = node1.rest.clone().unwrap();
    let rest2 = node2.rest.clone().unwrap();
    wait_for_relay_peer(&rest1).await;

    // The keys of the encrypted messages.
    let sym_key = [7u8; 32];
    let b_secret = k256::SecretKey::from_slice(&[0x42; 32]).unwrap();
    let rust_secret = k256::SecretKey::from_slice(&[0x24; 32]).unwrap();
    let rust_public = payload::public_key_hex(&rust_secret);

    let mut script = Command::new("node")
        .arg(paths::repo().join("tests/scripts/edge-clients.mjs"))
        .current_dir(paths::repo())
        .env("NODE1_WS", &ws1)
        .env("NODE2_WS", &ws2)
        .env("CONTENT_TOPIC", CONTENT_TOPIC)
        .env("PUSH_COUNT", PLAIN.to_string())
        .env("EXTRA_PUSHES", EXTRA.to_string())
        .env("SYM_KEY", hex::encode(sym_key))
        .env("B_PRIVATE_KEY", hex::encode(b_secret.to_bytes()))
        .env("RUST_PUBLIC_KEY", rust_public.trim_start_matches("0x"))
        .env("TIMEOUT_MS", "150000")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("js.log")).unwrap(),
        ))
        .spawn()
        .expect("node (Node.js) runs; `make tools` installs the SDK");
    let mut stdin = script.stdin.take().unwrap();
    let stdout = BufReader::new(script.stdout.take().unwrap());
    let (lines_tx, mut lines) = tokio::sync::mpsc::channel::<Value>(256);
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let value = serde_json::from_str(&line)
                .unwrap_or_else(|_| panic!("the script's stdout is JSON lines: {line}"));
            if lines_tx.blocking_send(value).is_err() {
                return;
            }
        }
    });

    let mut pushes = Vec::new();
    let mut report = None;
    let mut rust_sent = 0;
    let mut rust_hashes = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    while report.is_none() {
        let event = tokio::time::timeout_at(deadline, lines.recv())
            .await
            .expect("the script reports within 180 s")
            .expect("the script reports before it exits");
        match event["event"].as_str() {
            Some("subscribed") => {
                // From `rln-node publish` to client B: one message under each of B's keys,
                // signed with rln-node's key.
                let to_b = hex::encode(
                    k256::PublicKey::from_secret_scalar(&b_secret.to_nonzero_scalar())
                        .to_sec1_bytes(),
                );
                let sign = hex::encode(rust_secret.to_bytes());
                for (text, key_flag, key) in [
                    ("from-rust-sym", "--symmetric-key", hex::encode(sym_key)),
                    ("from-rust-ecies", "--public-key", to_b),
                ] {
                    rust_hashes.push(publish_with_cli(
                        &rest1,
                        &[key_flag, &key, "--sign-key", &sign, text],
                    ));
                    rust_sent += 1;
                }
            }
            Some("pushes-done") => {
                let ok = pushes.iter().filter(|p: &&Value| p["ok"] == true).count();
                // Client B reads every pushed message but the one encrypted to rln-node's
                // key (the ephemeral one included), and rln-node's two.
                let expect = ok - 1 + rust_sent;
                writeln!(stdin, "{{\"expect\":{expect}}}").unwrap();
            }
            Some("pushed") => pushes.push(event),
            Some("report") | Some("error") => report = Some(event),
            _ => {}
        }
    }
    let report = report.unwrap();
    let status = script.wait().unwrap();
    let logs = || {
        format!(
            "node 1:\n{}\nnode 2:\n{}\njs:\n{}",
            std::fs::read_to_string(&log1).unwrap_or_default(),
            std::fs::read_to_string(&log2).unwrap_or_default(),
            std::fs::read_to_string(dir.path().join("js.log")).unwrap_or_default()
        )
    };
    assert!(
        status.success() && report["event"] == "report",
        "{report}\n{}",
        logs()
    );

    // Every push within the limit succeeded, through node 1's proofs; the extras did not.
    let by_kind =
        |kind: &str| -> Vec<&Value> { pushes.iter().filter(|p| p["kind"] == kind).collect() };
    for p in by_kind("plain")
        .into_iter()
        .chain(by_kind("symmetric"))
        .chain(by_kind("ecies"))
        .chain(by_kind("ephemeral"))
    {
        assert_eq!(p["ok"], true, "{p}\n{}", logs());
        assert_eq!(p["status_code"], 200, "{p}");
        assert!(p["relay_peer_count"].as_u64() >= Some(1), "{p}");
    }
    let extras = by_kind("extra");
    assert_eq!(extras.len(), EXTRA);
    // rln-node's own two, two plain, two encrypted and the ephemeral one: the limit of seven
    // leaves nothing.
    for p in &extras {
        assert_eq!(p["ok"], false, "{p}");
        assert_eq!(p["status_code"], 504, "{p}");
        assert!(
            p["status_desc"]
                .as_str()
                .is_some_and(|d| d.contains("next epoch starts in")),
            "{p}"
        );
    }

    // Client B got each message it can read exactly once, with the payloads sent.
    let received: Vec<(String, String)> = report["received"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["decoder"].as_str().unwrap().to_string(),
                m["payload"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut expected: Vec<(String, String)> = (0..PLAIN)
        .map(|i| ("plain".to_string(), format!("edge-{i}")))
        .chain([
            ("plain".into(), "ephemeral-0".into()),
            ("symmetric".into(), "from-js-sym".into()),
            ("symmetric".into(), "from-rust-sym".into()),
            ("ecies".into(), "from-rust-ecies".into()),
        ])
        .collect();
    let mut got = received.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "{report}");

    // The message client A encrypted to rln-node's key reached node 2, and `rln-node
    // subscribe` opens it with that key (and skips the symmetric one it has no key for).
    let (ok, out) = rln_node(&[
        "subscribe",
        "--node",
        &rest2,
        "--private-key",
        &hex::encode(rust_secret.to_bytes()),
        "--timeout",
        "2",
    ]);
    assert!(ok, "{out}");
    assert!(
        out.lines()
            .any(|l| l.ends_with(&format!("{CONTENT_TOPIC} from-js-ecies"))),
        "{out}"
    );
    assert!(
        out.contains("edge-0") && !out.contains("from-js-sym"),
        "{out}"
    );

    // No node saw spam: the limit held for light clients too.
    for rest in [&rest1, &rest2] {
        let spam = get_json(&format!("{rest}/rln/v1/spam")).await;
        assert_eq!(spam.as_array().map(Vec::len), Some(0), "{spam}");
    }
    rln_chain::http::install_provider();
    let metrics = reqwest::get(format!("{rest1}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("rln_node_lightpush_proofs_total 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rln_node_light_requests_total{protocol=\"lightpush_v3\",code=\"504\"} 2")
    );

    // Logs written to a file carry no ANSI colour codes.
    for log in [&log1, &log2] {
        let text = std::fs::read_to_string(log).unwrap();
        assert!(text.contains("node started"), "{text}");
        assert!(
            !text.contains('\u{1b}'),
            "colour codes in {}",
            log.display()
        );
    }

    // --- Store. A relay spammer connected to node 2 sends two messages under message id 0:
    // the first is valid, the second is a double signal node 2 rejects.
    let mut spam_config = loopback_config(&chain, &spam_dir, Some(&spam_member), 86_400);
    spam_config.network.static_peers = vec![node2.p2p.clone()];
    spam_config.store.enabled = false;
    let spammer = rln_node::Node::start(spam_config).await.unwrap();
    assert!(spammer.handle().wait_synced(Duration::from_secs(30)).await);
    let text = |t: &str| WakuMessage {
        payload: t.as_bytes().to_vec(),
        content_topic: CONTENT_TOPIC.into(),
        ..Default::default()
    };
    let mut spam_ok = None;
    for _ in 0..80 {
        match spammer
            .handle()
            .publish_with(TOPIC, text("spam-ok"), MessageIdChoice::Forced(0))
            .await
        {
            Ok(sent) => {
                spam_ok = Some(hex::encode(sent.hash));
                break;
            }
            // No relay peer yet: nothing was proved.
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    let spam_ok = spam_ok.expect("the spammer reaches node 2's mesh");
    spammer
        .handle()
        .publish_with(TOPIC, text("spam-dup"), MessageIdChoice::Forced(0))
        .await
        .unwrap();
    let mut caught = false;
    for _ in 0..80 {
        let spam = get_json(&format!("{rest2}/rln/v1/spam")).await;
        if spam.as_array().map(Vec::len) == Some(1) {
            caught = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(caught, "node 2 rejects the double signal\n{}", logs());

    // What node 2 must hold: every accepted push but the ephemeral one, rln-node's two, and
    // the spammer's first message.
    let mut expected_hashes: Vec<String> = pushes
        .iter()
        .filter(|p| p["ok"] == true && p["kind"] != "ephemeral")
        .map(|p| {
            p["hash"]
                .as_str()
                .unwrap()
                .trim_start_matches("0x")
                .to_lowercase()
        })
        .chain(
            rust_hashes
                .iter()
                .map(|h| h.trim_start_matches("0x").to_lowercase()),
        )
        .chain([spam_ok.clone()])
        .collect();
    expected_hashes.sort();
    let stored_hashes = |r: &Value| -> Vec<String> {
        let mut h: Vec<String> = r["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["hash"].as_str().unwrap().to_string())
            .collect();
        h.sort();
        h
    };
    // The archive is written off the validation path: wait until it has everything.
    let mut before = Value::Null;
    for _ in 0..20 {
        before = store_query(node2.ws_addr().unwrap()).await;
        if stored_hashes(&before) == expected_hashes {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    check_history(&before, &expected_hashes, &stored_hashes(&before));
    spammer.shutdown().await.unwrap();

    // After kill -9 and a restart, node 2 answers the same.
    node2.kill();
    let node2 = NodeProcess::start_logged(&binary(), &args2, Some(dir.path().join("n2b.log")));
    let after = store_query(node2.ws_addr().unwrap()).await;
    assert_eq!(after["entries"], before["entries"], "{after}\n{before}");

    // `rln-node history` pages through the same history (two per page), oldest first.
    let (ok, out) = rln_node(&[
        "history",
        "--node",
        node2.rest.as_deref().unwrap(),
        "--content-topic",
        CONTENT_TOPIC,
        "--page-size",
        "2",
        "--since",
        "1h",
    ]);
    assert!(ok, "{out}");
    let plain: Vec<String> = before["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["version"] == 0)
        .map(|e| e["payload"].as_str().unwrap().to_string())
        .collect();
    for p in &plain {
        assert!(
            out.lines()
                .any(|l| l.ends_with(&format!("{CONTENT_TOPIC} {p}"))),
            "{p} missing from history:\n{out}"
        );
    }
    // Encrypted payloads are shown as they are (no key given): every message is listed, and
    // the walk stops on the page that says nothing follows.
    let total = expected_hashes.len();
    assert!(
        out.contains(&format!(
            "{total} messages in {} page(s)",
            total.div_ceil(2)
        )),
        "{out}"
    );
}

/// Reads node 2's history of the content topic with js-waku (client C), in pages of 3.
async fn store_query(ws: &str) -> Value {
    let ws = ws.to_string();
    tokio::task::spawn_blocking(move || {
        let out = Command::new("node")
            .arg(paths::repo().join("tests/scripts/edge-clients.mjs"))
            .current_dir(paths::repo())
            .env("MODE", "store")
            .env("NODE2_WS", &ws)
            .env("CONTENT_TOPIC", CONTENT_TOPIC)
            .env("PAGE_SIZE", "3")
            .env("TIMEOUT_MS", "60000")
            .output()
            .expect("node (Node.js) runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().last().unwrap_or_default().to_string();
        let report: Value = serde_json::from_str(&last).unwrap_or(Value::Null);
        assert!(
            out.status.success() && report["event"] == "store-report",
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        report
    })
    .await
    .unwrap()
}

/// The history js-waku read: exactly the expected messages, once each, in (timestamp,
/// hash) order, whole (the hash recomputed from the message matches), over several pages
/// ending with an empty one; no ephemeral message and no spam.
fn check_history(report: &Value, expected: &[String], stored: &[String]) {
    assert_eq!(stored, expected, "{report}");
    let entries = report["entries"].as_array().unwrap();
    let mut last: Option<(i128, String)> = None;
    for e in entries {
        assert_eq!(e["hash"], e["recomputed_hash"], "a torn message: {e}");
        assert_eq!(e["content_topic"], CONTENT_TOPIC);
        assert_eq!(e["pubsub_topic"], TOPIC);
        let key = (
            e["timestamp"].as_str().unwrap().parse::<i128>().unwrap(),
            e["hash"].as_str().unwrap().to_string(),
        );
        assert!(last.as_ref() < Some(&key), "out of order: {report}");
        last = Some(key);
    }
    let payloads: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["payload"].as_str())
        .collect();
    for present in ["edge-0", "edge-1", "spam-ok"] {
        assert!(payloads.contains(&present), "{present} missing: {report}");
    }
    for absent in ["ephemeral-0", "spam-dup"] {
        assert!(!payloads.contains(&absent), "{absent} stored: {report}");
    }
    let pages: Vec<u64> = report["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["messages"].as_u64().unwrap())
        .collect();
    assert!(pages.len() >= 3, "several pages: {pages:?}");
    assert_eq!(pages.last(), Some(&0), "js-waku stops on an empty page");
    assert!(pages.iter().all(|&n| n <= 3), "{pages:?}");
    assert!(
        report["pages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["status_code"] == 200),
        "{report}"
    );
}

/// Runs the `rln-node` binary; returns whether it succeeded and its output.
fn rln_node(args: &[&str]) -> (bool, String) {
    rln_testkit::node::run(Command::new(binary()).args(args))
}

/// `rln-node publish` through a node, retried while the mesh forms (503); returns the
/// message hash it printed.
fn publish_with_cli(rest: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "publish",
        "--node",
        rest,
        "--pubsub-topic",
        TOPIC,
        "--content-topic",
        CONTENT_TOPIC,
    ];
    args.extend_from_slice(extra);
    for _ in 0..40 {
        let (ok, out) = rln_node(&args);
        if ok {
            assert!(out.starts_with("published 0x"), "{out}");
            return out["published ".len()..].trim().to_string();
        }
        assert!(out.contains("503"), "{out}");
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("rln-node publish never succeeded");
}
