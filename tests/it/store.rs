//! Store v3 served by in-process nodes over real loopback sockets: pages and cursors, hash and
//! presence lookups, every bad request's code, the rate limit, the REST form (local and
//! through another node), and retention enforced by a running node; on the embedded archive
//! and on PostgreSQL, where two nodes can also share one history.

use std::time::Duration;

use rln_node::Node;
use rln_relay::protocols::client::LightClient;
use rln_relay::protocols::store;
use rln_relay::wire::store::{StoreRequest, StoreResponse};
use rln_relay::WakuMessage;
use serde_json::Value;

use rln_testkit::postgres::{off_runtime, PgServer};

use crate::relay::{start_net, wait_mesh, wait_until};

const TOPIC: &str = "/waku/2/rs/1/0";
const EPOCH: u64 = 86_400;
const A: &str = "/store/1/a/proto";
const B: &str = "/store/1/b/proto";
/// Node 1's store rate limit.
const PER_MINUTE: u32 = 40;

fn text(payload: &str, content_topic: &str) -> WakuMessage {
    WakuMessage {
        payload: payload.as_bytes().to_vec(),
        content_topic: content_topic.into(),
        ..Default::default()
    }
}

fn query(content: &[&str], forward: bool, limit: u64) -> StoreRequest {
    StoreRequest {
        request_id: "q".into(),
        include_data: true,
        pubsub_topic: Some(TOPIC.into()),
        content_topics: content.iter().map(|c| c.to_string()).collect(),
        pagination_forward: forward,
        pagination_limit: Some(limit),
        ..Default::default()
    }
}

fn payloads(r: &StoreResponse) -> Vec<String> {
    r.messages
        .iter()
        .map(|e| String::from_utf8(e.message.as_ref().unwrap().1.payload.clone()).unwrap())
        .collect()
}

fn addr(node: &Node) -> String {
    node.handle().listen_addrs()[0].to_string()
}

/// Messages in `node`'s archive (whichever backend; read off the async runtime, as the
/// PostgreSQL client needs).
fn archived(node: &Node) -> u64 {
    let archive = node.handle().archive().clone();
    off_runtime(move || archive.stats().unwrap().count)
}

/// The messages among `hashes` in `node`'s archive.
fn archived_among(node: &Node, hashes: &[[u8; 32]]) -> Vec<rln_db::ArchivedMessage> {
    let archive = node.handle().archive().clone();
    off_runtime(move || archive.lookup(hashes).unwrap())
}

/// Waits up to `secs` for `node`'s metrics to contain `line`.
async fn wait_metric(node: &Node, line: &str, secs: u64) -> bool {
    wait_until(Duration::from_secs(secs), || {
        node.handle().encode_metrics().unwrap().contains(line)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_answers_pages_lookups_and_every_bad_request_with_its_code() {
    store_suite(None).await;
}

/// The same suite with each node's history in a database of a real PostgreSQL server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_answers_the_same_from_a_postgres_archive() {
    let server = PgServer::start();
    store_suite(Some(&server)).await;
}

async fn store_suite(postgres: Option<&PgServer>) {
    let net = start_net(&[6, 1], EPOCH, |i, _, c| {
        c.store.db_url = postgres.map(PgServer::create_database);
        if i == 0 {
            // The publisher keeps only its two newest messages, without their proofs.
            c.store.retention = "capacity:2".into();
            c.store.prune_interval_secs = 1;
            c.store.keep_proofs = false;
        } else {
            c.store.requests_per_minute = PER_MINUTE;
            c.store.keep_proofs = true;
        }
    })
    .await;
    wait_mesh(&net.nodes, 1).await;
    let (publisher, archive) = (&net.nodes[0], &net.nodes[1]);

    // Three on A, one on B, and one ephemeral on A; each published a few ms apart so that
    // their timestamps order them.
    let mut hashes = Vec::new();
    for (payload, topic) in [("a0", A), ("a1", A), ("b0", B), ("a2", A)] {
        let hash = publisher
            .handle()
            .publish(TOPIC, text(payload, topic))
            .await
            .unwrap()
            .hash;
        // Each publication proves first: their timestamps are apart.
        hashes.push(hash);
    }
    let ephemeral = WakuMessage {
        ephemeral: Some(true),
        ..text("gone", A)
    };
    publisher.handle().publish(TOPIC, ephemeral).await.unwrap();
    assert!(wait_until(Duration::from_secs(10), || { archived(archive) == 4 }).await);
    assert_eq!(archived(archive), 4, "four stored, the ephemeral one not");

    let client = LightClient::connect(&addr(archive).parse().unwrap())
        .await
        .unwrap();
    let used = std::cell::Cell::new(0u32);
    let ask = async |r: &StoreRequest| {
        used.set(used.get() + 1);
        client.store(r).await.unwrap()
    };

    // Forward pages of 2 over A: a0 a1, then a2 (nothing follows), then past the end: 200
    // and no messages.
    let first = ask(&query(&[A], true, 2)).await;
    assert_eq!(first.status_code, 200);
    assert_eq!(payloads(&first), ["a0", "a1"]);
    assert_eq!(first.cursor, Some(hashes[1]));
    let second = ask(&StoreRequest {
        pagination_cursor: Some(hashes[1].to_vec()),
        ..query(&[A], true, 2)
    })
    .await;
    assert_eq!(payloads(&second), ["a2"]);
    assert_eq!(second.cursor, None);
    let past = ask(&StoreRequest {
        pagination_cursor: Some(hashes[3].to_vec()),
        ..query(&[A], true, 2)
    })
    .await;
    assert_eq!((past.status_code, past.messages.len()), (200, 0));
    // Backward (the default direction): the newest first page, still in ascending order.
    let newest = ask(&query(&[A, B], false, 2)).await;
    assert_eq!(payloads(&newest), ["b0", "a2"]);
    assert_eq!(newest.cursor, Some(hashes[2]));
    let older = ask(&StoreRequest {
        pagination_cursor: Some(hashes[2].to_vec()),
        ..query(&[A, B], false, 2)
    })
    .await;
    assert_eq!(payloads(&older), ["a0", "a1"]);
    // Hashes only, by default.
    let bare = ask(&StoreRequest {
        include_data: false,
        ..query(&[B], true, 5)
    })
    .await;
    assert_eq!(bare.messages.len(), 1);
    assert_eq!(bare.messages[0].hash, hashes[2]);
    assert!(bare.messages[0].message.is_none());

    // Hash lookups (with the pubsub topic, as js-waku sends them) and presence checks.
    let lookup = StoreRequest {
        request_id: "h".into(),
        include_data: true,
        pubsub_topic: Some(TOPIC.into()),
        message_hashes: vec![hashes[3].to_vec(), [9u8; 32].to_vec(), hashes[0].to_vec()],
        ..Default::default()
    };
    let found = ask(&lookup).await;
    assert_eq!(found.status_code, 200);
    assert_eq!(payloads(&found), ["a0", "a2"]);
    let presence = ask(&StoreRequest {
        include_data: false,
        ..lookup.clone()
    })
    .await;
    let present: Vec<[u8; 32]> = presence.messages.iter().map(|e| e.hash).collect();
    assert_eq!(present, vec![hashes[0], hashes[3]]);
    assert!(presence.messages.iter().all(|e| e.message.is_none()));

    // Every bad request: 400 with a reason.
    let bad = [
        (
            StoreRequest {
                pagination_cursor: Some([7u8; 32].to_vec()),
                ..query(&[A], true, 2)
            },
            "names no stored message",
        ),
        (
            StoreRequest {
                pagination_cursor: Some(vec![1, 2, 3]),
                ..query(&[A], true, 2)
            },
            "not a 32-byte",
        ),
        (query(&[], true, 2), "needs at least one content topic"),
        (
            StoreRequest {
                time_start: Some(10),
                time_end: Some(5),
                ..query(&[A], true, 2)
            },
            "inverted",
        ),
        (
            StoreRequest {
                content_topics: (0..11).map(|i| format!("/s/1/{i}/p")).collect(),
                ..query(&[A], true, 2)
            },
            "at most 10",
        ),
    ];
    for (request, reason) in bad {
        let answer = ask(&request).await;
        assert_eq!(answer.status_code, 400, "{request:?}");
        assert!(
            answer.status_desc.as_deref().unwrap_or("").contains(reason),
            "{answer:?} should say {reason}"
        );
    }
    let garbage = client
        .request(store::PROTOCOL, &[0x0a, 0x7f, 1])
        .await
        .unwrap();
    let garbage = StoreResponse::decode(&garbage, 1 << 20).unwrap();
    assert_eq!(garbage.status_code, 400);
    assert!(garbage.status_desc.unwrap().contains("malformed"));

    // The rate limit: the requests left this minute pass, the next is 429. (The malformed
    // request never reached the limiter.)
    while used.get() < PER_MINUTE {
        assert_eq!(ask(&query(&[A], true, 1)).await.status_code, 200);
    }
    let limited = client.store(&query(&[A], true, 1)).await.unwrap();
    assert_eq!(limited.status_code, 429, "{limited:?}");

    // REST: the node's own archive, and another node's through it with peerAddr.
    let rest = |node: &Node| format!("http://{}", node.rest_addr().unwrap());
    let url = format!(
        "{}/store/v3/messages?includeData=true&pubsubTopic=%2Fwaku%2F2%2Frs%2F1%2F0&contentTopics={}&pageSize=2",
        rest(archive),
        A.replace('/', "%2F")
    );
    rln_chain::http::install_provider();
    let page: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(page["statusCode"], 200, "{page}");
    assert_eq!(page["messages"].as_array().unwrap().len(), 2);
    assert_eq!(
        page["paginationCursor"],
        format!("0x{}", hex::encode(hashes[1]))
    );
    assert_eq!(page["messages"][0]["message"]["payload"], "YTA=", "{page}");
    rln_chain::http::install_provider();
    let next: Value = reqwest::get(format!(
        "{url}&cursor={}",
        page["paginationCursor"].as_str().unwrap()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(next["messages"].as_array().unwrap().len(), 1, "{next}");
    let peer_addr = format!("{}/p2p/{}", addr(archive), archive.handle().peer_id());
    let remote = format!(
        "{}/store/v3/messages?includeData=true&pubsubTopic=%2Fwaku%2F2%2Frs%2F1%2F0&contentTopics={}&peerAddr={}",
        rest(publisher),
        B.replace('/', "%2F"),
        peer_addr.replace('/', "%2F")
    );
    rln_chain::http::install_provider();
    let through = reqwest::get(&remote).await.unwrap();
    // Node 1's limit is used up by this client's peer id only: node 0 is another peer.
    assert_eq!(through.status(), 200);
    let through: Value = through.json().await.unwrap();
    assert_eq!(
        through["messages"][0]["messageHash"],
        format!("0x{}", hex::encode(hashes[2]))
    );
    rln_chain::http::install_provider();
    let refused = reqwest::get(format!("{}/store/v3/messages?cursor=0x12", rest(archive)))
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    rln_chain::http::install_provider();
    let inverted: Value = reqwest::get(format!(
        "{}/store/v3/messages?startTime=9&endTime=3",
        rest(archive)
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(inverted["statusCode"], 400, "{inverted}");

    // The publisher archived its own messages, and its retention (capacity 2) holds: the
    // newest two stay. (Waiting on the messages themselves: a count of 2 can also be read
    // before all four are stored, and on PostgreSQL the gauge follows the pruning pass.)
    let payloads_kept = |node: &Node| -> Vec<String> {
        archived_among(node, &hashes)
            .into_iter()
            .map(|m| String::from_utf8(m.payload).unwrap())
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(10), || payloads_kept(publisher)
            == ["b0", "a2"])
        .await,
        "the publisher's retention brings it to the newest 2: {:?}",
        payloads_kept(publisher)
    );
    assert!(
        wait_metric(publisher, "rln_node_store_messages 2\n", 10).await,
        "the gauge follows"
    );
    let kept = archived_among(publisher, &hashes);
    assert!(
        kept.iter().all(|m| m.proof.is_none()),
        "keep_proofs = false"
    );
    let kept: Vec<String> = kept
        .into_iter()
        .map(|m| String::from_utf8(m.payload).unwrap())
        .collect();
    assert_eq!(kept, ["b0", "a2"], "the newest two are kept");
    let with_proofs = archived_among(archive, &hashes);
    assert!(
        with_proofs.iter().all(|m| m.proof.is_some()),
        "keep_proofs = true"
    );
    let metrics = archive.handle().encode_metrics().unwrap();
    assert!(
        metrics.contains("rln_node_light_requests_total{protocol=\"store\",code=\"429\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("rln_node_store_archived_total{result=\"stored\"} 4"));
}

/// A node that was down fills its history from a peer's store, and keeps only what passes
/// the RLN checks: two forged entries in the peer's archive (no proof, a broken proof) stay
/// out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_resumes_its_history_from_a_peer_through_the_rln_checks() {
    // Node 1, the store node resumed from, keeps proofs: without them nothing can be checked.
    let mut net = start_net(&[6, 1, 1], EPOCH, |i, _, c| c.store.keep_proofs = i == 1).await;
    wait_mesh(&net.nodes, 2).await;
    let mut hashes = Vec::new();
    for payload in ["m0", "m1"] {
        let hash = net.nodes[0]
            .handle()
            .publish(TOPIC, text(payload, A))
            .await
            .unwrap()
            .hash;
        hashes.push(hash);
    }
    assert!(
        wait_until(Duration::from_secs(10), || {
            net.nodes[2].handle().db().archive_counts().unwrap().0 == 2
        })
        .await
    );
    let down = net.nodes.pop().unwrap();
    down.shutdown().await.unwrap();

    // While node 2 is down: two messages relayed, and two forged entries written straight
    // into node 1's archive (a lying store).
    wait_mesh(&net.nodes, 1).await;
    for payload in ["m2", "m3"] {
        let hash = net.nodes[0]
            .handle()
            .publish(TOPIC, text(payload, A))
            .await
            .unwrap()
            .hash;
        hashes.push(hash);
    }
    let store_node = &net.nodes[1];
    assert!(
        wait_until(Duration::from_secs(10), || {
            store_node.handle().db().archive_counts().unwrap().0 == 4
        })
        .await
    );
    let now = rln_relay::clock::now_nanos();
    let forged = |payload: &str, proof: Option<Vec<u8>>| {
        let m = WakuMessage {
            timestamp: Some(now),
            rate_limit_proof: proof,
            ..text(payload, A)
        };
        rln_db::ArchivedMessage {
            hash: m.hash(TOPIC),
            pubsub_topic: TOPIC.into(),
            content_topic: A.into(),
            timestamp: now,
            payload: m.payload,
            version: None,
            meta: None,
            proof: m.rate_limit_proof,
        }
    };
    let lies = [
        forged("no-proof", None),
        forged("bad-proof", Some(vec![1u8; 300])),
    ];
    store_node.handle().db().archive_insert(&lies).unwrap();

    let mut config = net.configs[2].clone();
    config.store.resume = true;
    config.store.resume_peer = Some(format!(
        "{}/p2p/{}",
        addr(store_node),
        store_node.handle().peer_id()
    ));
    let back = Node::start(config).await.unwrap();
    assert!(
        wait_metric(
            &back,
            "rln_node_store_archived_total{result=\"resumed\"} 2\n",
            20
        )
        .await,
        "the two missed messages are resumed"
    );
    let held = back.handle().db().archive_lookup(&hashes).unwrap();
    let held: Vec<String> = held
        .into_iter()
        .map(|m| String::from_utf8(m.payload).unwrap())
        .collect();
    assert_eq!(held, ["m0", "m1", "m2", "m3"]);
    for lie in &lies {
        assert!(!back.handle().db().archive_contains(&lie.hash).unwrap());
    }
    assert_eq!(back.handle().db().archive_counts().unwrap().0, 4);
    back.shutdown().await.unwrap();
}

/// Two store nodes given one PostgreSQL database keep one history: each message both relay
/// is stored once (the second writer finds it there), and either node answers for all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_store_nodes_on_one_postgres_database_share_one_history() {
    let server = PgServer::start();
    let url = server.create_database();
    let net = start_net(&[6, 6], EPOCH, |_, _, c| {
        c.store.db_url = Some(url.clone());
    })
    .await;
    wait_mesh(&net.nodes, 1).await;
    let mut sent = Vec::new();
    for k in 0..4 {
        for (i, node) in net.nodes.iter().enumerate() {
            let hash = node
                .handle()
                .publish(TOPIC, text(&format!("n{i}.{k}"), A))
                .await
                .unwrap()
                .hash;
            sent.push(hash);
        }
    }
    let archived_total = |result: &str| -> u64 {
        net.nodes
            .iter()
            .map(|n| {
                n.handle()
                    .metrics()
                    .store_archived
                    .get_or_create(&rln_relay::metrics::ResultLabel {
                        result: result.into(),
                    })
                    .get()
            })
            .sum()
    };
    assert!(
        wait_until(Duration::from_secs(20), || archived_total("stored")
            + archived_total("duplicate")
            == 2 * sent.len() as u64)
        .await,
        "both nodes offered every message to the archive: stored {}, duplicate {}",
        archived_total("stored"),
        archived_total("duplicate")
    );
    assert_eq!(
        archived_total("stored"),
        sent.len() as u64,
        "each stored once"
    );
    assert_eq!(archived_total("duplicate"), sent.len() as u64);
    for node in &net.nodes {
        assert_eq!(archived(node), sent.len() as u64);
        let client = LightClient::connect(&addr(node).parse().unwrap())
            .await
            .unwrap();
        let page = client.store(&query(&[A], true, 100)).await.unwrap();
        assert_eq!(page.status_code, 200);
        assert_eq!(
            page.messages.len(),
            sent.len(),
            "either node answers for all"
        );
        let mut got: Vec<[u8; 32]> = page.messages.iter().map(|e| e.hash).collect();
        got.sort();
        let mut want = sent.clone();
        want.sort();
        assert_eq!(got, want);
    }
    for node in net.nodes {
        node.shutdown().await.unwrap();
    }
}
