//! The relay node on loopback: real anvil, real libp2p sockets, real proofs.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy::primitives::U256;
use rln_core::{fr_to_le_bytes, Fr};
use rln_node::config::SlashConfig;
use rln_node::{Node, NodeConfig};
use rln_relay::metrics::Metrics;
use rln_relay::network::GRAYLIST_THRESHOLD;
use rln_relay::wire::{decode_proof, encode_proof};
use rln_relay::{MessageIdChoice, WakuMessage};
use rln_testkit::node::loopback_config;
use rln_testkit::TestMember;
use rln_zk::{RateLimitProof, Verifier};
use tempfile::TempDir;
use tokio::sync::broadcast;

use crate::chain::{chain, Chain};

pub(crate) const TOPIC: &str = "/waku/2/rs/1/0";

/// The reference implementation's verifying key file (Waku's key).
fn waku_vk_file() -> std::path::PathBuf {
    rln_testkit::paths::interop_dir().join("verification_key.json")
}

pub(crate) struct Net {
    pub(crate) chain: Chain,
    _dirs: Vec<TempDir>,
    pub(crate) members: Vec<TestMember>,
    pub(crate) nodes: Vec<Node>,
    pub(crate) configs: Vec<NodeConfig>,
}

/// Starts `limits.len()` nodes, each with its own membership; node i dials every earlier node.
pub(crate) async fn start_net(
    limits: &[u32],
    epoch_secs: u64,
    tweak: impl Fn(usize, &Chain, &mut NodeConfig),
) -> Net {
    let chain = chain().await;
    let mut dirs = Vec::new();
    let mut members = Vec::new();
    for &limit in limits {
        let dir = TempDir::new().unwrap();
        members.push(chain.register_member(dir.path(), limit).await);
        dirs.push(dir);
    }
    let mut nodes: Vec<Node> = Vec::new();
    let mut configs = Vec::new();
    for i in 0..limits.len() {
        let peers = nodes
            .iter()
            .flat_map(|n| n.handle().listen_addrs())
            .map(|a| a.to_string())
            .collect();
        let mut c = loopback_config(&chain, dirs[i].path(), Some(&members[i]), epoch_secs);
        c.network.static_peers = peers;
        tweak(i, &chain, &mut c);
        let node = Node::start(c.clone()).await.unwrap();
        wait_until(Duration::from_secs(10), || {
            !node.handle().listen_addrs().is_empty()
        })
        .await;
        assert!(
            node.handle().wait_synced(Duration::from_secs(30)).await,
            "node {i} syncs"
        );
        nodes.push(node);
        configs.push(c);
    }
    Net {
        chain,
        _dirs: dirs,
        members,
        nodes,
        configs,
    }
}

pub(crate) async fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    f()
}

/// Waits until every node has `peers` peers subscribed to the topic, and a few heartbeats
/// more so the meshes form.
pub(crate) async fn wait_mesh(nodes: &[Node], peers: usize) {
    let start = Instant::now();
    loop {
        let mut ok = true;
        for n in nodes {
            let subscribed = n
                .handle()
                .peers()
                .await
                .iter()
                .filter(|p| p.topics.iter().any(|t| t == TOPIC))
                .count();
            ok &= subscribed >= peers;
        }
        if ok {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the mesh did not form"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// `node`'s gossipsub score of the peer `peer_id`, if it knows the peer.
pub(crate) async fn score_of(node: &Node, peer_id: &str) -> Option<f64> {
    node.handle()
        .peers()
        .await
        .into_iter()
        .find(|p| p.peer_id == peer_id)
        .and_then(|p| p.score)
}

/// Waits until the member with this id commitment is slashed on chain: erased, with no deposit
/// left (an erasure alone leaves the deposit frozen).
pub(crate) async fn wait_slashed(net: &Net, member: &Fr) {
    let commitment = U256::from_le_bytes(fr_to_le_bytes(member));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = net
            .chain
            .membership()
            .members(commitment)
            .call()
            .await
            .unwrap();
        if m.state == 2 && m.deposit.is_zero() {
            return;
        }
        assert!(Instant::now() < deadline, "the spammer is slashed on chain");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Sleeps into a new epoch if less than `margin` is left of the current one.
pub(crate) async fn fresh_epoch(epoch_secs: u64, margin: u64) {
    let left = epoch_secs - now_secs() % epoch_secs;
    if left < margin {
        tokio::time::sleep(Duration::from_secs(left + 1)).await;
    }
}

pub(crate) fn text(s: &str) -> WakuMessage {
    WakuMessage {
        payload: s.as_bytes().to_vec(),
        content_topic: "/test/1/chat/proto".into(),
        ..Default::default()
    }
}

/// Everything `rx` delivers within `window`.
pub(crate) async fn drain(
    rx: &mut broadcast::Receiver<rln_relay::hub::Delivered>,
    window: Duration,
) -> Vec<rln_relay::hub::Delivered> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Ok(d)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        out.push(d);
    }
    out
}

pub(crate) fn invalid(node: &Node, label: &str) -> u64 {
    Metrics::reason(&node.handle().metrics().invalid, label).get()
}

/// The node's RLN outcome counters, for failure messages.
pub(crate) fn rln_outcomes(node: &Node) -> String {
    let text = node.handle().encode_metrics().unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("waku_rln_invalid")
                || l.starts_with("rln_node_ignored")
                || l.starts_with("waku_rln_valid")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn ignored(node: &Node, label: &str) -> u64 {
    Metrics::reason(&node.handle().metrics().ignored, label).get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_nodes_relay_honest_messages_once_and_catch_and_slash_a_spammer() {
    const EPOCH: u64 = 3_600;
    let net = start_net(&[3, 3, 3, 1], EPOCH, |i, chain, c| {
        if i < 3 {
            // anvil accounts 5..: account 0 registered every member, and a holder may not
            // slash its own membership.
            let key = hex::encode(chain.anvil.keys()[5 + i].to_bytes());
            c.slash = Some(SlashConfig {
                confirmations: 0,
                ..SlashConfig::new(key)
            });
        }
        c.rln.max_clock_gap_secs = 5;
        c.rln.chain_lag_secs = Some(5);
        if i == 1 {
            // Waku's verifying key as a file, as an operator would configure it: the other
            // nodes prove with the compiled-in Waku key set.
            c.rln.verifying_key = Some(waku_vk_file());
        }
    })
    .await;
    wait_mesh(&net.nodes, 3).await;
    fresh_epoch(EPOCH, 120).await;
    let verifier = Verifier::from_path(&waku_vk_file()).unwrap();

    // Honest traffic: nodes 0..3 publish two messages each.
    let mut receivers: Vec<_> = net.nodes.iter().map(|n| n.handle().messages()).collect();
    let mut sent = Vec::new();
    for i in 0..3 {
        for k in 0..2 {
            let hash = net.nodes[i]
                .handle()
                .publish(TOPIC, text(&format!("hello {i}.{k}")))
                .await
                .unwrap()
                .hash;
            sent.push((i, hash));
        }
    }
    // Every node delivers every message once, its own included (a node's publications reach
    // its own subscribers, caches and archive through the outbox).
    for (j, rx) in receivers.iter_mut().enumerate() {
        let expected: Vec<[u8; 32]> = sent.iter().map(|(_, h)| *h).collect();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while got.len() < expected.len() && Instant::now() < deadline {
            got.extend(drain(rx, Duration::from_millis(500)).await);
        }
        got.extend(drain(rx, Duration::from_secs(1)).await);
        for h in &expected {
            assert_eq!(
                got.iter().filter(|d| d.hash == *h).count(),
                1,
                "node {j}: every message exactly once"
            );
        }
        assert_eq!(got.len(), expected.len(), "node {j}: nothing else arrives");
        for d in &got {
            let proof = decode_proof(d.message.rate_limit_proof.as_ref().unwrap()).unwrap();
            assert!(
                verifier.verify(&proof).is_valid(),
                "delivered proofs verify"
            );
        }
    }

    // Spam: node 3 (limit 1) proves six messages with message id 0.
    let spammer = &net.nodes[3];
    let spammer_peer = spammer.handle().peer_id().to_string();
    let old_path = spammer.handle().db().proof(net.members[3].index).unwrap();
    let mut spam_hashes = Vec::new();
    // All are proved first and four sent back to back: the slash that follows the first
    // detection is fast enough to stop a slower spammer after two. The last two are sent
    // once every node holds the evidence (below).
    let publisher = spammer.handle().publisher().unwrap().clone();
    let mut spam = Vec::new();
    for k in 0..6 {
        let m = publisher
            .prove(text(&format!("spam {k}")), MessageIdChoice::Forced(0))
            .unwrap();
        spam_hashes.push(m.hash(TOPIC));
        spam.push(m.encode());
    }
    let late_spam = spam.split_off(4);
    for bytes in spam {
        spammer.handle().send_raw(TOPIC, bytes).await.unwrap();
    }
    for (j, node) in net.nodes.iter().enumerate().take(3) {
        assert!(
            wait_until(Duration::from_secs(20), || !node
                .handle()
                .spam_evidence()
                .unwrap()
                .is_empty())
            .await,
            "node {j} records spam evidence"
        );
        let evidence = node.handle().spam_evidence().unwrap();
        assert_eq!(
            evidence[0].secret,
            net.members[3].identity.secret(),
            "node {j} recovers the secret"
        );
        assert_eq!(
            evidence[0].id_commitment,
            net.members[3].identity.commitment()
        );
        assert!(invalid(node, "spam") >= 1);
    }
    // Graylisting takes two rejected messages from the spammer itself. Of the first four,
    // a node may get the conflicting ones first from honest nodes that accepted another one
    // (each accepts whichever it validated first), and then the spammer's copies are only
    // duplicates. Nobody forwards a message once the nullifier is known, so the two late
    // ones reach every node from the spammer alone, and are rejected there.
    for bytes in late_spam {
        spammer.handle().send_raw(TOPIC, bytes).await.unwrap();
    }
    for (j, node) in net.nodes.iter().enumerate().take(3) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let score = loop {
            let score = score_of(node, &spammer_peer)
                .await
                .expect("the spammer is scored");
            if score < GRAYLIST_THRESHOLD || Instant::now() > deadline {
                break score;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(
            score < GRAYLIST_THRESHOLD,
            "node {j}: spammer score {score} should be below the graylist threshold \
             ({} spam messages rejected)",
            invalid(node, "spam")
        );
    }
    for (j, rx) in receivers.iter_mut().enumerate().take(3) {
        // Validation runs on parallel workers, so which of the four is first is not fixed;
        // what is fixed is that exactly one (the limit) is delivered.
        let got = drain(rx, Duration::from_secs(2)).await;
        let delivered = got.iter().filter(|d| spam_hashes.contains(&d.hash)).count();
        assert_eq!(
            delivered, 1,
            "node {j}: one message within the limit, no excess"
        );
    }

    // Slash: the member is erased on chain and every node drops its leaf and old roots.
    wait_slashed(&net, &net.members[3].identity.commitment()).await;
    let slashed = net.nodes[..3].iter().filter(|n| {
        n.handle()
            .spam_evidence()
            .unwrap()
            .iter()
            .any(|e| e.slash_status.starts_with("slashed in block"))
    });
    assert!(slashed.count() >= 1, "a node records the slash");
    for node in &net.nodes {
        let index = net.members[3].index;
        assert!(
            wait_until(Duration::from_secs(20), || node
                .handle()
                .db()
                .leaf(index)
                .unwrap()
                == Fr::from(0u64))
            .await,
            "every node erases the leaf"
        );
    }
    // The spammer's own node refuses to publish; a message proved against the old root and
    // stamped after the revocation's grace (the clock gap, 5 s here) is refused by every
    // other node at the root check.
    assert!(spammer
        .handle()
        .publish(TOPIC, text("after slash"))
        .await
        .is_err());
    tokio::time::sleep(Duration::from_secs(6)).await;
    // The message is injected by a fresh relay-only node, so that no honest node's score
    // suffers and every one of them validates it.
    let injector_dir = TempDir::new().unwrap();
    let peers = net.nodes[..3]
        .iter()
        .flat_map(|n| n.handle().listen_addrs())
        .map(|a| a.to_string())
        .collect();
    let mut ic = loopback_config(&net.chain, injector_dir.path(), None, EPOCH);
    ic.network.static_peers = peers;
    ic.rln.max_clock_gap_secs = 5;
    let injector = Node::start(ic).await.unwrap();
    assert!(injector.handle().wait_synced(Duration::from_secs(30)).await);
    wait_mesh(std::slice::from_ref(&injector), 3).await;
    let before: Vec<u64> = net.nodes[..3]
        .iter()
        .map(|n| invalid(n, "revoked_root"))
        .collect();
    let bytes = crafted(&net, &old_path, "after the slash");
    injector.handle().send_raw(TOPIC, bytes).await.unwrap();
    for (w, b) in before.into_iter().enumerate() {
        let node = &net.nodes[w];
        assert!(
            wait_until(Duration::from_secs(10), || invalid(node, "revoked_root")
                > b)
            .await,
            "node {w} rejects the slashed member's message at the root check:\n{}",
            rln_outcomes(node)
        );
    }
    injector.shutdown().await.unwrap();
    for node in net.nodes {
        node.shutdown().await.unwrap();
    }
}

/// A message from the (now slashed) spammer, proved against its path in the old tree.
fn crafted(net: &Net, path: &rln_core::MerkleProof, payload: &str) -> Vec<u8> {
    let mut m = text(payload);
    m.timestamp = Some(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64,
    );
    let epoch = rln_core::epoch_at(now_secs(), net.configs[3].rln.epoch_secs);
    let signal = m.signal(rln_relay::wire::SignalMode::Timestamped);
    let request = rln_zk::ProofRequest::for_signal(
        &net.members[3].identity,
        1,
        0,
        path,
        &signal,
        rln_core::epoch_to_fr(epoch),
        rln_core::RlnIdentifier::waku(),
    );
    let proof = crate::common::waku_prover()
        .prove(&request, &mut rand::rngs::OsRng)
        .unwrap();
    m.rate_limit_proof = Some(encode_proof(&proof));
    m.encode()
}

/// Re-encodes `message` with its proof changed by `f`.
pub(crate) fn with_proof(
    message: &WakuMessage,
    f: impl FnOnce(&mut RateLimitProof),
) -> WakuMessage {
    let mut proof = decode_proof(message.rate_limit_proof.as_ref().unwrap()).unwrap();
    f(&mut proof);
    let mut m = message.clone();
    m.rate_limit_proof = Some(encode_proof(&proof));
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_bad_input_gets_its_verdict_and_the_node_keeps_running() {
    const EPOCH: u64 = 10;
    let net = start_net(&[20, 1], EPOCH, |_, _, c| {
        // Mild scoring: the sender must not be graylisted halfway through the list.
        c.network.invalid_message_weight = -0.01;
        c.network.seen_ttl_secs = 2;
    })
    .await;
    wait_mesh(&net.nodes, 1).await;
    let (a, b) = (&net.nodes[0], &net.nodes[1]);
    let publisher = a.handle().publisher().unwrap().clone();
    fresh_epoch(EPOCH, 8).await;
    let prove = |m: WakuMessage| publisher.prove(m, MessageIdChoice::Next).unwrap();

    let base = prove(text("base"));
    let proof_of = |m: &WakuMessage| decode_proof(m.rate_limit_proof.as_ref().unwrap()).unwrap();
    let mut non_canonical = base.encode();
    {
        // Replace the merkle root's 32 bytes by the field modulus (not canonical).
        let root = fr_to_le_bytes(&proof_of(&base).merkle_root);
        let pos = non_canonical.windows(32).position(|w| w == root).unwrap();
        let modulus =
            hex::decode("010000f093f5e1439170b97948e833285d588181b64550b829a031e1724e6430")
                .unwrap();
        non_canonical[pos..pos + 32].copy_from_slice(&modulus);
    }
    let mut stale = text("stale");
    stale.timestamp = Some((now_secs() as i64 - 60) * 1_000_000_000);
    let stale = publisher.prove(stale, MessageIdChoice::Forced(1)).unwrap();
    let mut wrong_epoch = prove(text("wrong epoch"));
    wrong_epoch.timestamp = Some(wrong_epoch.timestamp.unwrap() + EPOCH as i64 * 1_000_000_000);
    let mut wrong_signal = prove(text("signal"));
    wrong_signal.payload = b"changed".to_vec();
    let unknown_root = with_proof(&prove(text("root")), |p| {
        p.merkle_root = Fr::from(12_345u64)
    });
    let invalid_proof = with_proof(&prove(text("proof")), |p| p.share_y += Fr::from(1u64));
    let mut missing = text("missing");
    missing.timestamp = base.timestamp;
    let mut malformed_proof = base.clone();
    malformed_proof.rate_limit_proof = Some(vec![1, 2, 3]);
    let oversize = WakuMessage {
        payload: vec![7; 150 * 1024 + 1],
        ..base.clone()
    };

    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("malformed", vec![0x0a, 0xff, 0x01], true),
        ("oversize", oversize.encode(), true),
        ("missing_proof", missing.encode(), true),
        ("malformed_proof", malformed_proof.encode(), true),
        ("non_canonical_field", non_canonical, true),
        ("wrong_epoch", wrong_epoch.encode(), true),
        ("stale_timestamp", stale.encode(), true),
        ("wrong_signal", wrong_signal.encode(), true),
        ("invalid_proof", invalid_proof.encode(), true),
    ];
    let mut rx = b.handle().messages();
    for (label, bytes, rejected) in &cases {
        let before = invalid(b, label);
        a.handle().send_raw(TOPIC, bytes.clone()).await.unwrap();
        assert!(
            wait_until(Duration::from_secs(10), || invalid(b, label) == before + 1).await,
            "`{label}` is rejected with its label (rejected: {rejected})"
        );
    }
    // A root the node does not know may be one it has yet to sync: ignored, the sender not
    // blamed (honest nodes poll at different moments).
    let before = ignored(b, "unknown_root");
    a.handle()
        .send_raw(TOPIC, unknown_root.encode())
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || ignored(b, "unknown_root")
            == before + 1)
        .await,
        "an unknown root is ignored"
    );
    assert_eq!(invalid(b, "unknown_root"), 0);
    // A valid message, then the same share in other bytes: an exact duplicate, ignored.
    let good = prove(text("good"));
    let mut duplicate = good.clone();
    duplicate.ephemeral = Some(true);
    a.handle().send_raw(TOPIC, good.encode()).await.unwrap();
    let got = drain(&mut rx, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 1, "only the valid message is delivered");
    assert_eq!(got[0].message, good);
    let dup_before = ignored(b, "duplicate");
    a.handle()
        .send_raw(TOPIC, duplicate.encode())
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || ignored(b, "duplicate")
            == dup_before + 1)
        .await
    );
    // The same bytes after gossip's seen-cache (2 s here) expired: the nullifier log
    // still knows the share.
    tokio::time::sleep(Duration::from_secs(4)).await;
    a.handle().send_raw(TOPIC, good.encode()).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || ignored(b, "duplicate")
            == dup_before + 2)
        .await,
        "a replay after the seen-cache expiry is a duplicate"
    );
    assert!(drain(&mut rx, Duration::from_secs(1)).await.is_empty());
    // The node is still up and relays a fresh valid message.
    let h = a
        .handle()
        .publish(TOPIC, text("still alive"))
        .await
        .unwrap()
        .hash;
    let got = drain(&mut rx, Duration::from_secs(10)).await;
    assert!(got.iter().any(|d| d.hash == h), "the node keeps relaying");
    assert!(b.handle().health().synced);
    for node in net.nodes {
        node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_mid_epoch_continues_message_ids_and_keeps_state() {
    const EPOCH: u64 = 3_600;
    let mut net = start_net(&[1, 5], EPOCH, |_, _, _| {}).await;
    wait_mesh(&net.nodes, 1).await;
    fresh_epoch(EPOCH, 120).await;
    let mut rx = net.nodes[0].handle().messages();
    // Node 0 records node 1's first message in its nullifier log; node 1 uses ids 0 and 1.
    for k in 0..2 {
        net.nodes[1]
            .handle()
            .publish(TOPIC, text(&format!("before {k}")))
            .await
            .unwrap();
    }
    let got = drain(&mut rx, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 2);
    let logged = net.nodes[0].handle().db().nullifier_count().unwrap();
    assert!(logged >= 2);
    let window: Vec<_> = net.nodes[1]
        .handle()
        .db()
        .root_window()
        .entries()
        .copied()
        .collect();
    let commitment = net.members[1].identity.commitment();
    let epoch = rln_core::epoch_at(now_secs(), EPOCH);
    assert_eq!(
        net.nodes[1]
            .handle()
            .publisher()
            .unwrap()
            .ledger()
            .used(&commitment),
        Some((epoch, 2))
    );

    // Restart node 1 in the same data directory.
    let node = net.nodes.pop().unwrap();
    node.shutdown().await.unwrap();
    let node = Node::start(net.configs[1].clone()).await.unwrap();
    assert_eq!(
        node.handle()
            .publisher()
            .unwrap()
            .ledger()
            .used(&commitment),
        Some((epoch, 2)),
        "ids survive"
    );
    assert_eq!(
        node.handle()
            .db()
            .root_window()
            .entries()
            .copied()
            .collect::<Vec<_>>(),
        window,
        "the window survives"
    );
    assert!(node.handle().wait_synced(Duration::from_secs(30)).await);
    net.nodes.push(node);
    wait_mesh(&net.nodes, 1).await;
    // Three more: ids 2, 3, 4. Had an id been reused, node 0 would see a double signal.
    for k in 0..3 {
        net.nodes[1]
            .handle()
            .publish(TOPIC, text(&format!("after {k}")))
            .await
            .unwrap();
    }
    let got = drain(&mut rx, Duration::from_secs(8)).await;
    assert_eq!(got.len(), 3, "all three arrive");
    assert!(
        net.nodes[0].handle().spam_evidence().unwrap().is_empty(),
        "no id was reused"
    );
    assert_eq!(invalid(&net.nodes[0], "spam"), 0);
    let err = net.nodes[1]
        .handle()
        .publish(TOPIC, text("one too many"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("limit of 5 per epoch is used up"),
        "{err}"
    );
    assert!(net.nodes[0].handle().db().nullifier_count().unwrap() >= logged + 3);
    for node in net.nodes {
        node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_known_only_through_a_bootstrap_node_find_each_other() {
    let chain = chain().await;
    let dirs: Vec<TempDir> = (0..3).map(|_| TempDir::new().unwrap()).collect();
    let mut nodes: Vec<Node> = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let mut c = loopback_config(&chain, dir.path(), None, 600);
        if i > 0 {
            c.network.bootstrap = nodes[0]
                .handle()
                .listen_addrs()
                .iter()
                .map(|a| a.to_string())
                .collect();
        }
        let node = Node::start(c).await.unwrap();
        wait_until(Duration::from_secs(10), || {
            !node.handle().listen_addrs().is_empty()
        })
        .await;
        nodes.push(node);
    }
    let target = nodes[2].handle().peer_id().to_string();
    let start = Instant::now();
    loop {
        if nodes[1]
            .handle()
            .peers()
            .await
            .iter()
            .any(|p| p.peer_id == target)
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "node 1 discovers node 2 through node 0's Kademlia table"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for node in nodes {
        node.shutdown().await.unwrap();
    }
}
