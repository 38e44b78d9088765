//! Attacks and operator mistakes from the hardening review, each one played out against real
//! nodes (anvil, loopback libp2p, RocksDB on disk).

use std::time::{Duration, Instant};

use rln_core::Fr;
use rln_db::MessageIdLedger;
use rln_node::config::SlashConfig;
use rln_node::Node;
use rln_relay::{MessageIdChoice, Refusal};
use rln_testkit::proxy::RpcProxy;

use crate::relay::{
    drain, fresh_epoch, invalid, rln_outcomes, score_of, start_net, text, wait_mesh, wait_slashed,
    wait_until, with_proof, Net, TOPIC,
};

/// A shard the nodes are not configured with; they join it at run time, as `POST
/// /relay/v1/subscriptions` does.
const JOINED_LATER: &str = "/waku/2/rs/1/7";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_messages_on_a_topic_joined_at_run_time_cost_the_sender_its_score() {
    let net = start_net(&[20, 20], 600, |_, _, _| {}).await;
    let (honest, sender) = (&net.nodes[0], &net.nodes[1]);
    for node in &net.nodes {
        node.handle().subscribe_topic(JOINED_LATER).await.unwrap();
    }
    let sender_id = sender.handle().peer_id().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let peers = honest.handle().peers().await;
        if peers
            .iter()
            .any(|p| p.peer_id == sender_id && p.topics.iter().any(|t| t == JOINED_LATER))
        {
            break;
        }
        assert!(Instant::now() < deadline, "the sender joins the topic");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let publisher = sender.handle().publisher().unwrap().clone();
    for k in 0..3 {
        let m = publisher
            .prove(text(&format!("forged {k}")), MessageIdChoice::Next)
            .unwrap();
        let forged = with_proof(&m, |p| p.share_y += Fr::from(1u64));
        sender
            .handle()
            .send_raw(JOINED_LATER, forged.encode())
            .await
            .unwrap();
    }
    // The first two may already graylist the sender, so the third need not arrive.
    assert!(
        wait_until(Duration::from_secs(10), || invalid(honest, "invalid_proof")
            >= 1)
        .await,
        "the forged proofs are rejected:\n{}",
        rln_outcomes(honest)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let score = loop {
        let score = score_of(honest, &sender_id).await.unwrap_or(0.0);
        if score < 0.0 || Instant::now() > deadline {
            break score;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        score < 0.0,
        "forged proofs on a topic joined at run time cost the sender its score ({score})"
    );
    for node in net.nodes {
        node.shutdown().await.unwrap();
    }
}

/// Stops node `i` and starts it again on the same configuration, after `between` ran.
async fn restart(net: &mut Net, i: usize, between: impl FnOnce(&Net)) {
    let node = net.nodes.remove(i);
    node.shutdown().await.unwrap();
    between(net);
    let node = Node::start(net.configs[i].clone()).await.unwrap();
    assert!(node.handle().wait_synced(Duration::from_secs(30)).await);
    net.nodes.insert(i, node);
    wait_mesh(&net.nodes, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wiping_the_database_or_losing_the_ledger_mid_epoch_never_reuses_a_message_id() {
    const EPOCH: u64 = 3_600;
    let mut net = start_net(&[1, 5], EPOCH, |_, _, _| {}).await;
    wait_mesh(&net.nodes, 1).await;
    fresh_epoch(EPOCH, 300).await;
    let mut rx = net.nodes[0].handle().messages();
    let publish = |net: &Net, k: &str| {
        let handle = net.nodes[1].handle().clone();
        let k = k.to_string();
        async move { handle.publish(TOPIC, text(&k)).await }
    };
    for k in ["before 0", "before 1"] {
        publish(&net, k).await.unwrap();
    }
    assert_eq!(drain(&mut rx, Duration::from_secs(5)).await.len(), 2);

    // `rln-node run --reset`: the database goes, and with it (before the ledger) the counter.
    restart(&mut net, 1, |net| {
        std::fs::remove_dir_all(net.configs[1].data_dir.join("db")).unwrap()
    })
    .await;
    for k in ["after reset 0", "after reset 1"] {
        publish(&net, k).await.unwrap();
    }
    assert_eq!(
        drain(&mut rx, Duration::from_secs(8)).await.len(),
        2,
        "both arrive"
    );
    assert!(
        net.nodes[0].handle().spam_evidence().unwrap().is_empty(),
        "no id was used twice: ids 2 and 3 followed 0 and 1"
    );
    assert_eq!(invalid(&net.nodes[0], "spam"), 0);

    // The ledger itself is lost (or the keystore is taken to another machine without it):
    // the node cannot know which ids this epoch used, and waits for the next one.
    let ledger = MessageIdLedger::path_for(&net.members[1].keystore);
    restart(&mut net, 1, |_| std::fs::remove_file(&ledger).unwrap()).await;
    let err = publish(&net, "without a ledger").await.unwrap_err();
    assert!(
        matches!(err, Refusal::Unrecorded { .. }),
        "refused with the reason: {err}"
    );
    assert!(err.to_string().contains("next epoch"), "{err}");
    // The refusal is on disk: a restart does not lift it.
    restart(&mut net, 1, |_| {}).await;
    assert!(matches!(
        publish(&net, "after a restart").await.unwrap_err(),
        Refusal::Unrecorded { .. }
    ));
    assert!(drain(&mut rx, Duration::from_secs(2)).await.is_empty());
    assert!(net.nodes[0].handle().spam_evidence().unwrap().is_empty());
    for node in net.nodes {
        node.shutdown().await.unwrap();
    }
}

/// Waits until node `i` holds evidence against `member` whose status satisfies `f`.
async fn wait_evidence(net: &Net, i: usize, member: &Fr, f: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = net.nodes[i]
            .handle()
            .spam_evidence()
            .unwrap()
            .into_iter()
            .find(|e| e.id_commitment == *member)
            .map(|e| e.slash_status);
        if let Some(s) = status.as_deref().filter(|s| f(s)) {
            return s.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "node {i}: evidence against the spammer is {status:?}; its validation outcomes:\n{}",
            rln_outcomes(&net.nodes[i])
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Spammer `i` (limit 1) sends two messages under message id 0.
async fn spam_twice(net: &Net, i: usize) {
    let spammer = net.nodes[i].handle();
    let publisher = spammer.publisher().unwrap().clone();
    for k in 0..2 {
        let m = publisher
            .prove(text(&format!("spam {i}.{k}")), MessageIdChoice::Forced(0))
            .unwrap();
        spammer.send_raw(TOPIC, m.encode()).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn evidence_caught_during_an_rpc_outage_is_slashed_when_the_chain_is_back_even_after_a_restart(
) {
    let proxy = RpcProxy::start("127.0.0.1:9").await;
    let proxy_url = proxy.url();
    let mut net = start_net(&[3, 1, 1], 3_600, |i, chain, c| {
        if i == 0 {
            // The slashing node reaches the chain only through the proxy.
            proxy.set_target(&chain.rpc());
            c.chain.rpc = vec![proxy_url.clone()];
            c.slash = Some(SlashConfig {
                confirmations: 0,
                ..SlashConfig::new(hex::encode(chain.anvil.keys()[6].to_bytes()))
            });
        }
    })
    .await;
    wait_mesh(&net.nodes, 2).await;
    fresh_epoch(3_600, 120).await;
    let (first, second) = (
        net.members[1].identity.commitment(),
        net.members[2].identity.commitment(),
    );

    // An outage: the evidence is kept, the attempt fails and is retried once the chain is back.
    proxy.cut();
    spam_twice(&net, 1).await;
    let status = wait_evidence(&net, 0, &first, |s| s.contains("failed")).await;
    assert!(status.contains("retrying"), "{status}");
    proxy.restore();
    wait_slashed(&net, &first).await;
    wait_evidence(&net, 0, &first, |s| s.starts_with("slashed in block")).await;

    // An outage and a restart: the stored evidence is the slasher's queue. The slash erased a
    // member and so revoked the roots; every node takes in that block before the outage, or
    // the second spammer would prove against a root the cut-off node never learns.
    let root = crate::chain::contract_root(&net.chain).await;
    assert!(
        wait_until(Duration::from_secs(30), || net.nodes.iter().all(|n| n
            .handle()
            .db()
            .root()
            .ok()
            == Some(root)))
        .await,
        "every node syncs the slash"
    );
    proxy.cut();
    spam_twice(&net, 2).await;
    wait_evidence(&net, 0, &second, |s| s.contains("failed")).await;
    let node = net.nodes.remove(0);
    node.shutdown().await.unwrap();
    proxy.restore();
    let node = Node::start(net.configs[0].clone()).await.unwrap();
    net.nodes.insert(0, node);
    wait_slashed(&net, &second).await;
    wait_evidence(&net, 0, &second, |s| s.starts_with("slashed in block")).await;
    for node in net.nodes {
        node.shutdown().await.unwrap();
    }
}

/// Mines `n` empty blocks on the test chain.
async fn mine(net: &Net, n: u64) {
    use alloy::providers::Provider;
    for _ in 0..n {
        let _: String = net
            .chain
            .provider
            .raw_request("evm_mine".into(), ())
            .await
            .unwrap();
    }
}

/// The block a status `landed in block N …` names.
fn landed_block(status: &str) -> u64 {
    status
        .strip_prefix(rln_db::evidence::LANDED)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a landed slash: {status}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slash_undone_by_a_reorganisation_is_sent_again_and_settles_only_when_buried() {
    use alloy::primitives::U256;
    use alloy::providers::Provider;
    const DEPTH: u64 = 3;
    let net = start_net(&[3, 1], 3_600, |i, chain, c| {
        if i == 0 {
            c.slash = Some(SlashConfig {
                confirmations: DEPTH,
                ..SlashConfig::new(hex::encode(chain.anvil.keys()[6].to_bytes()))
            });
        }
    })
    .await;
    wait_mesh(&net.nodes, 1).await;
    fresh_epoch(3_600, 120).await;
    let spammer = net.members[1].identity.commitment();
    let undone = || {
        net.nodes[0]
            .handle()
            .metrics()
            .slashes
            .get_or_create(&rln_relay::metrics::ResultLabel {
                result: "undone".into(),
            })
            .get()
    };

    // The chain as it was before the slash, to go back to.
    let snapshot: U256 = net
        .chain
        .provider
        .raw_request("evm_snapshot".into(), ())
        .await
        .unwrap();
    spam_twice(&net, 1).await;
    let status = wait_evidence(&net, 0, &spammer, |s| s.starts_with("landed in block")).await;
    let first = landed_block(&status);
    wait_slashed(&net, &spammer).await;
    // Landed but not buried: no block comes, and the evidence stays pending.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = wait_evidence(&net, 0, &spammer, |_| true).await;
    assert!(status.starts_with("landed in block"), "{status}");

    // A reorganisation drops the commit and the reveal; the new branch grows past the old
    // slash's block, with the member active and its deposit back.
    let reverted: bool = net
        .chain
        .provider
        .raw_request("evm_revert".into(), (snapshot,))
        .await
        .unwrap();
    assert!(reverted);
    let head = net.chain.provider.get_block_number().await.unwrap();
    mine(&net, first + 1 - head).await;
    assert!(
        wait_until(Duration::from_secs(60), || undone() >= 1).await,
        "the slasher notices the undone slash"
    );
    let status = wait_evidence(&net, 0, &spammer, |s| {
        s.starts_with("landed in block") && landed_block(s) > first
    })
    .await;
    let second = landed_block(&status);
    wait_slashed(&net, &spammer).await;

    // Buried under DEPTH blocks, the slash is settled.
    mine(&net, DEPTH).await;
    let status = wait_evidence(&net, 0, &spammer, |s| s.starts_with("slashed in block")).await;
    assert!(
        status.starts_with(&format!("slashed in block {second} (reward to ")),
        "{status}"
    );
    assert_eq!(undone(), 1, "one undone slash");
    for node in net.nodes {
        node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_that_syncs_later_never_penalises_an_honest_publisher_for_a_new_root() {
    let mut net = start_net(&[20, 20], 3_600, |i, _, c| {
        if i == 1 {
            // The follower: deeper confirmations and a slower poll than the publisher.
            c.chain.confirmations = 2;
            c.chain.poll_interval_ms = 2_500;
        }
    })
    .await;
    wait_mesh(&net.nodes, 1).await;
    let publisher_id = net.nodes[0].handle().peer_id().to_string();
    let mut lowest = f64::MAX;
    for round in 0..3 {
        // A registration lands; the publisher syncs it first and proves against the new root.
        let before = net.nodes[0]
            .handle()
            .db()
            .root_window()
            .latest()
            .unwrap()
            .root;
        net.chain
            .register(&rln_core::Identity::random(&mut rand::rngs::OsRng), 5)
            .await;
        assert!(
            wait_until(Duration::from_secs(10), || net.nodes[0]
                .handle()
                .db()
                .root_window()
                .latest()
                .unwrap()
                .root
                != before)
            .await
        );
        net.nodes[0]
            .handle()
            .publish(TOPIC, text(&format!("round {round}")))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(4);
        while Instant::now() < deadline {
            if let Some(score) = score_of(&net.nodes[1], &publisher_id).await {
                lowest = lowest.min(score);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let unknown = crate::relay::ignored(&net.nodes[1], "unknown_root");
    assert!(
        unknown >= 1,
        "the follower saw roots it had not synced yet:\n{}",
        rln_outcomes(&net.nodes[1])
    );
    assert_eq!(invalid(&net.nodes[1], "unknown_root"), 0);
    assert!(
        lowest >= 0.0,
        "the honest publisher's score at the follower fell to {lowest}"
    );
    for node in net.nodes.drain(..) {
        node.shutdown().await.unwrap();
    }
}

/// `bytes` (a protobuf message) with an unknown varint field 30 = `k` appended: the same
/// message to any decoder, other bytes (and so another gossip message id) for each `k`.
fn reencoded(bytes: &[u8], k: u64) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out.extend_from_slice(&[0xf0, 0x01]);
    let mut v = k;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_re_encoded_copies_is_cheap_costs_its_sender_and_drops_no_honest_message() {
    let net = start_net(&[20, 20, 1], 3_600, |i, _, c| {
        if i == 2 {
            // The victim: one worker and a short queue, which copies would fill.
            c.validation.workers = 1;
            c.validation.queue = 16;
            c.validation.max_batch = 4;
        }
    })
    .await;
    wait_mesh(&net.nodes, 2).await;
    let (attacker, honest, victim) = (&net.nodes[0], &net.nodes[1], &net.nodes[2]);
    let attacker_id = attacker.handle().peer_id().to_string();
    let mut rx = victim.handle().messages();
    // One valid message, then 400 copies of it in other bytes.
    let valid = attacker
        .handle()
        .publisher()
        .unwrap()
        .prove(text("the original"), MessageIdChoice::Next)
        .unwrap()
        .encode();
    attacker
        .handle()
        .send_raw(TOPIC, valid.clone())
        .await
        .unwrap();
    assert_eq!(drain(&mut rx, Duration::from_secs(3)).await.len(), 1);
    let flood = {
        let handle = attacker.handle().clone();
        tokio::spawn(async move {
            for k in 0..400u64 {
                handle.send_raw(TOPIC, reencoded(&valid, k)).await.unwrap();
                if k % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    // Honest traffic during the flood.
    let mut sent = Vec::new();
    for k in 0..6 {
        let hash = honest
            .handle()
            .publish(TOPIC, text(&format!("honest {k}")))
            .await
            .unwrap()
            .hash;
        sent.push(hash);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    flood.await.unwrap();
    let got = drain(&mut rx, Duration::from_secs(5)).await;
    for hash in &sent {
        assert!(
            got.iter().any(|d| d.hash == *hash),
            "every honest message is delivered during the flood:\n{}",
            rln_outcomes(victim)
        );
    }
    assert_eq!(got.len(), sent.len(), "no copy is delivered");
    let copies = crate::relay::ignored(victim, "reencoded");
    assert!(
        copies >= 20,
        "copies are recognised before validation:\n{}",
        rln_outcomes(victim)
    );
    assert_eq!(
        crate::relay::ignored(victim, "queue_full"),
        0,
        "no copy took a place in the validation queue"
    );
    let score = score_of(victim, &attacker_id).await.unwrap_or(0.0);
    assert!(
        score < 0.0,
        "{copies} copies cost the sender its score ({score})"
    );
    for node in net.nodes {
        node.shutdown().await.unwrap();
    }
}
