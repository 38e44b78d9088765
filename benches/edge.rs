//! The light protocols under load, on loopback with real sockets and proofs:
//!
//! - light push: time from a client's request to the node's answer, for messages without a
//!   proof (the node proves, validates and publishes each), against the node's proving time
//!   for the same kind of message, sampled alternately in the same run;
//! - filter: time from a message's delivery on the service node until its push has reached
//!   every one of many subscribers (one criterion each), and the memory the subscriptions
//!   add to the process (clients and node both live in it, so this bounds the node's share
//!   from above).
//!
//! `cargo bench --bench edge` (release) runs 40 pushes and 1,000 subscribers; under
//! `cargo test --all-targets` a small version runs once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use rln_node::Node;
use rln_relay::protocols::client::{next_push, LightClient};
use rln_relay::wire::filter::{FilterRequest, FilterRequestType};
use rln_relay::{MessageIdChoice, WakuMessage};
use rln_testkit::chain::CHEAP;
use rln_testkit::node::loopback_config;
use rln_testkit::TestChain;

const TOPIC: &str = "/waku/2/rs/1/0";
const EPOCH: u64 = 86_400;
const FAN_TOPIC: &str = "/bench/1/fan/proto";

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn message(payload: String, content_topic: &str) -> WakuMessage {
    WakuMessage {
        payload: payload.into_bytes(),
        content_topic: content_topic.into(),
        timestamp: Some(now_nanos()),
        ..Default::default()
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let pushes: usize = if measuring { 40 } else { 3 };
    let subscribers: usize = if measuring { 1_000 } else { 20 };
    let rounds: usize = if measuring { 7 } else { 1 };

    let chain = TestChain::with_params(CHEAP).await;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let limit = (pushes + rounds + 2) as u32;
    let member = chain.register_member(dirs[0].path(), limit).await;
    let relay_member = chain.register_member(dirs[1].path(), 1).await;
    let mut c0 = loopback_config(&chain, dirs[0].path(), Some(&member), EPOCH);
    c0.rest.listen = None;
    c0.lightpush.requests_per_minute = 0;
    let service = Node::start(c0).await.unwrap();
    wait(|| !service.handle().listen_addrs().is_empty()).await;
    let mut c1 = loopback_config(&chain, dirs[1].path(), Some(&relay_member), EPOCH);
    c1.rest.listen = None;
    c1.network.static_peers = vec![service.handle().listen_addrs()[0].to_string()];
    c1.filter.max_peers = subscribers + 10;
    c1.filter.requests_per_minute = 0;
    let relay = Node::start(c1).await.unwrap();
    assert!(service.handle().wait_synced(Duration::from_secs(60)).await);
    assert!(relay.handle().wait_synced(Duration::from_secs(60)).await);
    wait_for_relay_peer(&service).await;
    wait_for_relay_peer(&relay).await;

    // Light push against proving, alternately.
    let client = LightClient::connect(&service.handle().listen_addrs()[0])
        .await
        .unwrap();
    let publisher = service.handle().publisher().unwrap().clone();
    let (mut proving, mut pushing) = (Vec::new(), Vec::new());
    for i in 0..pushes {
        let p = publisher.clone();
        let m = message(format!("baseline-{i}"), "/bench/1/push/proto");
        let started = Instant::now();
        // Proved with a fixed id and never published: only the time is kept.
        tokio::task::spawn_blocking(move || p.prove(m, MessageIdChoice::Forced(0)))
            .await
            .unwrap()
            .unwrap();
        proving.push(started.elapsed());
        let m = message(format!("push-{i}"), "/bench/1/push/proto");
        let started = Instant::now();
        let answer = client.lightpush("b", TOPIC, &m).await.unwrap();
        pushing.push(started.elapsed());
        assert_eq!(answer.status_code, 200, "{answer:?}");
    }
    let (prove, push) = (median(proving), median(pushing));
    println!(
        "light push: p50 {:.1} ms from request to answer; proof p50 {:.1} ms in the same run; \
         overhead {:.1} ms (target ≤ 10 ms)",
        ms(push),
        ms(prove),
        ms(push.saturating_sub(prove))
    );

    // Filter fan-out.
    let relay_addr = relay.handle().listen_addrs()[0].clone();
    let mut clients = Vec::new();
    for _ in 0..subscribers {
        clients.push(LightClient::connect(&relay_addr).await.unwrap());
    }
    let before = rss_kib();
    let received: Arc<Mutex<Vec<(usize, Instant)>>> = Arc::default();
    for (n, client) in clients.iter().enumerate() {
        let mut pushes = client.pushes().unwrap();
        let answer = client
            .filter(&FilterRequest {
                request_id: format!("s{n}"),
                kind: FilterRequestType::Subscribe,
                pubsub_topic: Some(TOPIC.into()),
                content_topics: vec![FAN_TOPIC.into()],
            })
            .await
            .unwrap();
        assert_eq!(answer.status_code, 200);
        let received = received.clone();
        tokio::spawn(async move {
            let Some((_, mut stream)) = pushes.next().await else {
                return;
            };
            for round in 0.. {
                if next_push(&mut stream, Duration::from_secs(120))
                    .await
                    .is_err()
                {
                    return;
                }
                if let Ok(mut r) = received.lock() {
                    r.push((round, Instant::now()));
                }
            }
        });
    }
    let mut delivered = relay.handle().messages();
    let mut fan_out = Vec::new();
    let mut after = before;
    for round in 0..rounds {
        service
            .handle()
            .publish(TOPIC, message(format!("fan-{round}"), FAN_TOPIC))
            .await
            .unwrap();
        let at = loop {
            let d = delivered.recv().await.unwrap();
            if d.message.content_topic == FAN_TOPIC {
                break Instant::now();
            }
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let last = loop {
            let done: Vec<Instant> = received
                .lock()
                .unwrap()
                .iter()
                .filter(|(r, _)| *r == round)
                .map(|(_, t)| *t)
                .collect();
            if done.len() == subscribers {
                break done.into_iter().max().unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: {} of {subscribers} subscribers got the push",
                done.len()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        fan_out.push(last.saturating_duration_since(at));
        if round == 0 {
            after = rss_kib();
        }
    }
    let fan = median(fan_out);
    println!(
        "filter fan-out to {subscribers} subscribers: p50 {:.1} ms from delivery to the last \
         push received (target ≤ 50 ms); {:.1} KiB per subscription (process RSS, clients \
         included: an upper bound)",
        ms(fan),
        after.saturating_sub(before) as f64 / subscribers as f64
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn wait(f: impl Fn() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out");
}

async fn wait_for_relay_peer(node: &Node) {
    for _ in 0..300 {
        let on_topic = node
            .handle()
            .peers()
            .await
            .iter()
            .any(|p| p.topics.iter().any(|t| t == TOPIC));
        if on_topic {
            tokio::time::sleep(Duration::from_secs(2)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no relay peer");
}
