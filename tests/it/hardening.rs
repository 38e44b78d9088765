//! Attacks and operator mistakes from the hardening review, each one played out against real
//! nodes (anvil, loopback libp2p, RocksDB on disk).

use std::time::{Duration, Instant};

use rln_core::Fr;
use rln_relay::MessageIdChoice;

use crate::relay::{invalid, rln_outcomes, start_net, text, wait_until, with_proof};

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
    assert!(
        wait_until(Duration::from_secs(10), || invalid(honest, "invalid_proof")
            >= 3)
        .await,
        "the forged proofs are rejected:\n{}",
        rln_outcomes(honest)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let score = loop {
        let score = honest
            .handle()
            .peers()
            .await
            .into_iter()
            .find(|p| p.peer_id == sender_id)
            .and_then(|p| p.score)
            .unwrap_or(0.0);
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
