//! The light protocols (metadata, light push, filter) served by in-process nodes to Rust light
//! clients over real loopback sockets, mplex-muxed as js-waku's are: every status code, the
//! limits, and that only valid messages get relayed or pushed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rln_node::Node;
use rln_relay::protocols::client::{self, next_push, LightClient, Muxer};
use rln_relay::protocols::{filter, lightpush};
use rln_relay::wire::filter::{FilterRequest, FilterRequestType};
use rln_relay::wire::metadata::Metadata;
use rln_relay::{MessageIdChoice, Multiaddr, WakuMessage};

use crate::relay::{drain, start_net, wait_mesh, wait_until};

const TOPIC: &str = "/waku/2/rs/1/0";
/// A day: no test crosses into a fresh epoch.
const EPOCH: u64 = 86_400;

fn message(payload: &str, content_topic: &str) -> WakuMessage {
    WakuMessage {
        payload: payload.as_bytes().to_vec(),
        content_topic: content_topic.into(),
        timestamp: Some(now_nanos()),
        ..Default::default()
    }
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

fn addr(node: &Node) -> Multiaddr {
    node.handle().listen_addrs()[0].clone()
}

fn ping() -> FilterRequest {
    FilterRequest {
        request_id: "p".into(),
        kind: FilterRequestType::Ping,
        pubsub_topic: None,
        content_topics: vec![],
    }
}

fn subscribe(id: &str, content_topics: Vec<String>) -> FilterRequest {
    FilterRequest {
        request_id: id.into(),
        kind: FilterRequestType::Subscribe,
        pubsub_topic: Some(TOPIC.into()),
        content_topics,
    }
}

/// The first push the node sends a client.
async fn first_push(
    pushes: &mut rln_relay::protocols::client::PushStreams,
) -> (String, WakuMessage) {
    client::first_push(pushes, Duration::from_secs(30))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn light_push_answers_every_case_with_its_code_and_relays_only_valid_messages() {
    let net = start_net(&[3, 2], EPOCH, |_, _, _| {}).await;
    wait_mesh(&net.nodes, 1).await;
    let (service, relay) = (&net.nodes[0], &net.nodes[1]);
    let mut relayed = relay.handle().messages();
    let client = LightClient::connect(&addr(service)).await.unwrap();

    // Metadata: cluster 1 and the shard the node relays.
    let theirs = client
        .metadata(&Metadata {
            cluster_id: Some(1),
            shards: vec![0],
        })
        .await
        .unwrap();
    assert_eq!(theirs.cluster_id, Some(1));
    assert_eq!(theirs.shards, vec![0]);

    // 200: no proof, so the node proves it with its membership; the relay gets it, proved.
    let ok = client
        .lightpush("r1", TOPIC, &message("hello", "/edge/1/a/proto"))
        .await
        .unwrap();
    assert_eq!(
        (ok.request_id.as_str(), ok.status_code),
        ("r1", 200),
        "{ok:?}"
    );
    assert!(ok.relay_peer_count >= Some(1));
    let got = tokio::time::timeout(Duration::from_secs(20), relayed.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.message.payload, b"hello");
    assert!(got.message.rate_limit_proof.is_some());

    let code = |r: &rln_relay::wire::lightpush::LightPushResponse| r.status_code;
    // 400: not a request at all, and a message without a content topic.
    let raw = client
        .request(lightpush::PROTOCOL_V3, &[0x0a, 0x09, 1])
        .await
        .unwrap();
    let raw = rln_relay::wire::lightpush::LightPushResponse::decode(&raw).unwrap();
    assert_eq!(raw.status_code, 400, "{raw:?}");
    let no_topic = client
        .lightpush("r2", TOPIC, &message("x", ""))
        .await
        .unwrap();
    assert_eq!(code(&no_topic), 400);
    // 413: larger than the network's limit.
    let big = WakuMessage {
        payload: vec![7; 200 * 1024],
        ..message("", "/edge/1/a/proto")
    };
    let too_big = client.lightpush("r3", TOPIC, &big).await.unwrap();
    assert_eq!(code(&too_big), 413, "{too_big:?}");
    // 421: a topic the node does not relay.
    let other = client
        .lightpush("r4", "/waku/2/rs/1/7", &message("x", "/edge/1/a/proto"))
        .await
        .unwrap();
    assert_eq!(code(&other), 421);
    // 420: a timestamp an hour old is not proved; a broken proof is not relayed.
    let old = WakuMessage {
        timestamp: Some(now_nanos() - 3_600_000_000_000),
        ..message("old", "/edge/1/a/proto")
    };
    let stale = client.lightpush("r5", TOPIC, &old).await.unwrap();
    assert_eq!(code(&stale), 420, "{stale:?}");
    assert!(stale.status_desc.unwrap().contains("timestamp"));
    let forged = WakuMessage {
        rate_limit_proof: Some(vec![1, 2, 3]),
        ..message("forged", "/edge/1/a/proto")
    };
    let bad_proof = client.lightpush("r6", TOPIC, &forged).await.unwrap();
    assert_eq!(code(&bad_proof), 420);
    assert!(bad_proof
        .status_desc
        .unwrap()
        .contains("RLN validation failed"));

    // Spam pushed with its own proofs (the relay node's member, message id 0 twice): the
    // first is relayed, the second refused with 420, its evidence recorded, never relayed.
    let spammer = relay.handle().publisher().unwrap();
    let first = spammer
        .prove(
            message("spam-1", "/edge/1/a/proto"),
            MessageIdChoice::Forced(0),
        )
        .unwrap();
    let second = spammer
        .prove(
            message("spam-2", "/edge/1/a/proto"),
            MessageIdChoice::Forced(0),
        )
        .unwrap();
    assert_eq!(
        code(&client.lightpush("s1", TOPIC, &first).await.unwrap()),
        200
    );
    let refused = client.lightpush("s2", TOPIC, &second).await.unwrap();
    assert_eq!(code(&refused), 420, "{refused:?}");
    assert!(refused.status_desc.unwrap().contains("double signal"));
    assert_eq!(service.handle().spam_evidence().unwrap().len(), 1);
    // A duplicate is refused too.
    let again = client.lightpush("s3", TOPIC, &first).await.unwrap();
    assert_eq!(code(&again), 420);
    let seen: Vec<Vec<u8>> = drain(&mut relayed, Duration::from_secs(3))
        .await
        .into_iter()
        .map(|d| d.message.payload)
        .collect();
    assert_eq!(seen, vec![b"spam-1".to_vec()]);

    // v2 says the same with is_success and info: the membership (limit 3) proves one more
    // message for this client, then answers with the phrase js-waku's v2 client looks for.
    let (ok, info) = client
        .lightpush_v2("v1", TOPIC, &message("v2-ok", "/edge/1/a/proto"))
        .await
        .unwrap();
    assert!(ok, "{info}");
    let mut refusal = None;
    for i in 0..3 {
        let (ok, info) = client
            .lightpush_v2("v", TOPIC, &message(&format!("v2-{i}"), "/edge/1/a/proto"))
            .await
            .unwrap();
        if !ok {
            refusal = Some(info);
            break;
        }
    }
    let refusal = refusal.expect("the membership's limit of 3 runs out");
    assert!(
        refusal.contains("could not get new message id to generate an rln proof")
            && refusal.contains("(504)"),
        "{refusal}"
    );
    // No message id was used twice: the service node never made spam of its own, and the
    // second share never reached the relay.
    assert_eq!(service.handle().spam_evidence().unwrap().len(), 1);
    assert!(relay.handle().spam_evidence().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_relay_peers_light_push_is_505_busy_clients_get_429_and_subscriptions_expire() {
    let net = start_net(&[2], EPOCH, |_, _, c| {
        c.lightpush.requests_per_minute = 2;
        c.filter.subscription_ttl_secs = 1;
        c.filter.requests_per_minute = 3;
    })
    .await;
    let client = LightClient::connect(&addr(&net.nodes[0])).await.unwrap();
    for _ in 0..2 {
        let r = client
            .lightpush("x", TOPIC, &message("alone", "/edge/1/a/proto"))
            .await
            .unwrap();
        assert_eq!(r.status_code, 505, "{r:?}");
    }
    let r = client
        .lightpush("x", TOPIC, &message("alone", "/edge/1/a/proto"))
        .await
        .unwrap();
    assert_eq!(r.status_code, 429, "{r:?}");
    // Nothing was proved: no message id was spent on a message that could not go out.
    assert_eq!(
        net.nodes[0]
            .handle()
            .publisher()
            .unwrap()
            .remaining()
            .unwrap(),
        2
    );
    // Filter: a subscription nobody refreshes expires, and a fourth request in a minute is
    // one too many.
    let _pushes = client.pushes().unwrap();
    let sub = subscribe("t", vec!["/edge/1/ttl/proto".into()]);
    assert_eq!(client.filter(&sub).await.unwrap().status_code, 200);
    let subscribers = &net.nodes[0].handle().metrics().filter_subscribers;
    assert!(
        wait_until(Duration::from_secs(10), || subscribers.get() == 0).await,
        "the subscription expires"
    );
    let ping = ping();
    assert_eq!(client.filter(&ping).await.unwrap().status_code, 404);
    assert_eq!(client.filter(&ping).await.unwrap().status_code, 404);
    assert_eq!(client.filter(&ping).await.unwrap().status_code, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_serves_1000_subscriptions_of_50_peers_within_its_limits() {
    let net = start_net(&[5, 1], EPOCH, |i, _, c| {
        if i == 1 {
            c.filter.max_peers = 51;
        }
    })
    .await;
    wait_mesh(&net.nodes, 1).await;
    let (publisher, service) = (&net.nodes[0], &net.nodes[1]);
    let topics: Vec<String> = (0..20).map(|j| format!("/edge/1/t{j}/proto")).collect();

    // 50 clients with 20 criteria each.
    let mut clients = Vec::new();
    for i in 0..50 {
        let client = LightClient::connect(&addr(service)).await.unwrap();
        let pushes = client.pushes().unwrap();
        let r = client
            .filter(&subscribe(&format!("c{i}"), topics.clone()))
            .await
            .unwrap();
        assert_eq!(r.status_code, 200, "{r:?}");
        clients.push((client, pushes));
    }
    assert_eq!(
        service.handle().metrics().filter_criteria.get(),
        1_000,
        "criteria held"
    );

    // Limits, each with its code.
    let probe = LightClient::connect(&addr(service)).await.unwrap();
    let ping = ping();
    assert_eq!(probe.filter(&ping).await.unwrap().status_code, 404);
    let many: Vec<String> = (0..101).map(|j| format!("/edge/1/m{j}/proto")).collect();
    assert_eq!(
        probe
            .filter(&subscribe("m", many))
            .await
            .unwrap()
            .status_code,
        400
    );
    let no_topic = FilterRequest {
        pubsub_topic: None,
        ..subscribe("n", topics.clone())
    };
    assert_eq!(probe.filter(&no_topic).await.unwrap().status_code, 400);
    let unsubscribe = FilterRequest {
        kind: FilterRequestType::Unsubscribe,
        ..subscribe("u", topics.clone())
    };
    assert_eq!(probe.filter(&unsubscribe).await.unwrap().status_code, 404);
    // Criteria per peer: 1,000 at most.
    let mut last = 0;
    for k in 0..11 {
        let batch: Vec<String> = (0..100)
            .map(|j| format!("/edge/1/k{k}-{j}/proto"))
            .collect();
        last = probe
            .filter(&subscribe(&format!("k{k}"), batch))
            .await
            .unwrap()
            .status_code;
    }
    assert_eq!(last, 400, "the 11th hundred is over the per-peer limit");
    // The probe is the 51st subscriber; a 52nd is one too many.
    let extra = LightClient::connect(&addr(service)).await.unwrap();
    assert_eq!(
        extra
            .filter(&subscribe("e", topics[..1].to_vec()))
            .await
            .unwrap()
            .status_code,
        filter::code::SERVICE_UNAVAILABLE
    );
    // PING and UNSUBSCRIBE_ALL of a subscriber.
    assert_eq!(probe.filter(&ping).await.unwrap().status_code, 200);
    let all = FilterRequest {
        kind: FilterRequestType::UnsubscribeAll,
        ..ping.clone()
    };
    assert_eq!(probe.filter(&all).await.unwrap().status_code, 200);
    assert_eq!(probe.filter(&ping).await.unwrap().status_code, 404);

    // One relayed message on a subscribed topic reaches all 50, on their push streams; a
    // message on another topic reaches nobody.
    publisher
        .handle()
        .publish(TOPIC, message("nobody", "/edge/1/other/proto"))
        .await
        .unwrap();
    publisher
        .handle()
        .publish(TOPIC, message("fan-out", &topics[5]))
        .await
        .unwrap();
    for (_, pushes) in clients.iter_mut() {
        let (topic, m) = first_push(pushes).await;
        assert_eq!(
            (topic.as_str(), m.payload.as_slice()),
            (TOPIC, &b"fan-out"[..])
        );
        assert!(m.rate_limit_proof.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_is_dropped_and_the_others_get_every_push() {
    const MESSAGES: usize = 10;
    let net = start_net(&[MESSAGES as u32, 1], EPOCH, |i, _, c| {
        if i == 1 {
            c.filter.push_queue = 2;
            c.filter.push_timeout_secs = 3;
        }
    })
    .await;
    wait_mesh(&net.nodes, 1).await;
    let (publisher, service) = (&net.nodes[0], &net.nodes[1]);
    let content_topic = "/edge/1/big/proto";
    // The reader reads every push; the sleeper (Yamux: flow control per stream) accepts its
    // push stream and never reads it, so the node's writes stall once its window is full.
    let reader = LightClient::connect(&addr(service)).await.unwrap();
    let sleeper = LightClient::connect_with(&addr(service), Muxer::Yamux)
        .await
        .unwrap();
    let mut reader_pushes = reader.pushes().unwrap();
    let mut sleeper_pushes = sleeper.pushes().unwrap();
    for (c, id) in [(&reader, "r"), (&sleeper, "s")] {
        let r = c
            .filter(&subscribe(id, vec![content_topic.into()]))
            .await
            .unwrap();
        assert_eq!(r.status_code, 200);
    }
    let held = tokio::spawn(async move {
        // Accepted and held, never read.
        let mut streams = Vec::new();
        while let Some((_, stream)) = sleeper_pushes.next().await {
            streams.push(stream);
        }
    });
    let reading = tokio::spawn(async move {
        let mut got = Vec::new();
        let Some((_, mut stream)) = reader_pushes.next().await else {
            return got;
        };
        while got.len() < MESSAGES {
            match next_push(&mut stream, Duration::from_secs(60)).await {
                Ok((_, m)) => got.push(m.payload),
                Err(_) => break,
            }
        }
        got
    });
    // 100 KiB each: two fill a stream's window of 256 KiB.
    for i in 0..MESSAGES {
        let mut m = message("", content_topic);
        m.payload = vec![i as u8; 100 * 1024];
        publisher.handle().publish(TOPIC, m).await.unwrap();
    }
    let got = tokio::time::timeout(Duration::from_secs(90), reading)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), MESSAGES, "the reader got every push");
    assert!(got.iter().enumerate().all(|(i, p)| p[0] == i as u8));
    let metrics = service.handle().metrics();
    let dropped = || {
        metrics
            .filter_pushes
            .get_or_create(&rln_relay::metrics::ResultLabel {
                result: "dropped".into(),
            })
            .get()
    };
    assert!(
        wait_until(Duration::from_secs(30), || metrics.filter_subscribers.get()
            == 1)
        .await,
        "the sleeper is unsubscribed ({} pushes dropped)",
        dropped()
    );
    assert!(dropped() >= 2);
    // Its pushes stop; the node keeps serving.
    let ping = ping();
    assert_eq!(sleeper.filter(&ping).await.unwrap().status_code, 404);
    assert_eq!(reader.filter(&ping).await.unwrap().status_code, 200);
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_written_a_minute_after_its_stream_opened_is_served() {
    let net = start_net(&[1], EPOCH, |_, _, _| {}).await;
    let client = LightClient::connect(&addr(&net.nodes[0])).await.unwrap();
    // js-waku opens streams ahead of use; libp2p's request-response would have given up
    // after 10 s.
    let mut stream = client.open(filter::PROTOCOL_SUBSCRIBE).await.unwrap();
    tokio::time::sleep(Duration::from_secs(65)).await;
    let answer = LightClient::exchange(
        &mut stream,
        &subscribe("late", vec!["/edge/1/late/proto".into()]).encode(),
    )
    .await
    .unwrap();
    let answer = rln_relay::wire::filter::FilterResponse::decode(&answer).unwrap();
    assert_eq!(
        (answer.request_id.as_str(), answer.status_code),
        ("late", 200)
    );
}

use futures::StreamExt as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_published_over_rest_reaches_filter_subscribers_the_rest_cache_and_the_archive() {
    use base64::Engine as _;
    let net = start_net(&[3, 1], EPOCH, |_, _, _| {}).await;
    wait_mesh(&net.nodes, 1).await;
    let node = &net.nodes[0];
    let content_topic = "/edge/1/rest/proto";
    let client = LightClient::connect(&addr(node)).await.unwrap();
    let mut pushes = client.pushes().unwrap();
    let r = client
        .filter(&subscribe("s", vec![content_topic.into()]))
        .await
        .unwrap();
    assert_eq!(r.status_code, 200, "{r:?}");

    // Published through the node's own REST API, as an application would.
    let rest = format!("http://{}", node.rest_addr().unwrap());
    let url = format!("{rest}/relay/v1/messages/%2Fwaku%2F2%2Frs%2F1%2F0");
    let payload = base64::engine::general_purpose::STANDARD.encode("over rest");
    let answer = reqwest::Client::new()
        .post(&url)
        .json(&serde_json::json!({ "payload": payload, "contentTopic": content_topic }))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{:?}", answer.text().await);
    let published: serde_json::Value = answer.json().await.unwrap();
    let hash_hex = published["messageHash"].as_str().unwrap().to_string();

    // The node's filter subscriber gets it, with its proof.
    let (topic, m) = first_push(&mut pushes).await;
    assert_eq!(
        (topic.as_str(), m.payload.as_slice()),
        (TOPIC, &b"over rest"[..])
    );
    assert!(m.rate_limit_proof.is_some());
    assert_eq!(format!("0x{}", hex::encode(m.hash(TOPIC))), hash_hex);

    // Its REST cache has it.
    let cached: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    let cached = cached.as_array().unwrap();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert_eq!(cached[0]["payload"], payload);

    // Its archive has it (the writer batches: wait for it).
    let hash = m.hash(TOPIC);
    let archive = node.handle().archive().clone();
    assert!(
        wait_until(Duration::from_secs(10), || archive
            .contains(&hash)
            .unwrap_or(false))
        .await,
        "archived"
    );
}
