//! The relay's parts driven directly, in process, without anvil or TCP between nodes: the
//! validator over real RocksDB with members set in the tree, the validation queue when it is
//! full, and the REST router answering requests (tower's `oneshot`).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use prometheus_client::registry::Registry;
use rln_core::{epoch_at, epoch_to_fr, Fr, Identity, RlnIdentifier};
use rln_node::{rest, Node};
use rln_relay::hub::Hub;
use rln_relay::metrics::Metrics;
use rln_relay::protocols::relay::pipeline::{Job, Pipeline, Sinks};
use rln_relay::protocols::relay::validation::{Acceptance, Candidate};
use rln_relay::wire::encode_proof;
use rln_relay::{Outcome, PeerId, Reason, Rules, SignalMode, Validator, WakuMessage};
use rln_testkit::node::offline_config;
use rln_testkit::StateFixture;
use rln_zk::{ProofRequest, Verifier};
use tower::ServiceExt;

use crate::common::prover;

const TOPIC: &str = "/waku/2/rs/1/0";
const EPOCH_SECS: u64 = 600;

fn rules() -> Rules {
    Rules {
        epoch_secs: EPOCH_SECS,
        max_clock_gap: Duration::from_secs(20),
        chain_lag: Duration::from_secs(20),
        rln_identifier: RlnIdentifier::waku(),
        signal: SignalMode::Timestamped,
    }
}

fn metrics() -> Metrics {
    Metrics::register(&mut Registry::default())
}

fn validator(state: &StateFixture, synced: bool) -> Validator {
    Validator::new(
        state.db.clone(),
        Verifier::dev().unwrap(),
        rules(),
        // "Synced" here: caught up an hour from now, long after any message of the test, so
        // an unknown root is the sender's fault.
        Arc::new(rln_relay::SyncView::new(
            synced,
            rln_relay::clock::now_nanos() as u64 / 1_000_000 + 3_600_000,
        )),
        metrics(),
    )
}

/// A message from `member` (at `index`, limit `limit`) with message id `message_id`, proved
/// against the fixture's current tree.
fn message(
    state: &StateFixture,
    member: &Identity,
    index: u64,
    limit: u64,
    message_id: u64,
    payload: &str,
) -> WakuMessage {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let mut m = WakuMessage {
        payload: payload.as_bytes().to_vec(),
        content_topic: "/test/1/in-process/proto".into(),
        timestamp: Some(now.as_nanos() as i64),
        ..Default::default()
    };
    let path = state.db.proof(index).unwrap();
    let request = ProofRequest::for_signal(
        member,
        limit,
        message_id,
        &path,
        &m.signal(SignalMode::Timestamped),
        epoch_to_fr(epoch_at(now.as_secs(), EPOCH_SECS)),
        RlnIdentifier::waku(),
    );
    let proof = prover().prove(&request, &mut rand::rngs::OsRng).unwrap();
    m.rate_limit_proof = Some(encode_proof(&proof));
    m
}

fn candidate(message: WakuMessage, source: PeerId) -> Candidate {
    Candidate::new(TOPIC.into(), message, SystemTime::now(), Some(source))
}

#[test]
fn the_validator_accepts_ignores_rejects_and_catches_a_double_signal_over_rocksdb() {
    let mut state = StateFixture::new();
    let alice = Identity::from_seed(b"in-process alice");
    let bob = Identity::from_seed(b"in-process bob");
    state.add_member(0, &alice, 2);
    state.add_member(1, &bob, 1);
    let v = validator(&state, true);
    let peer = PeerId::random();

    // Two valid messages in one batch, then the same first one again: a duplicate.
    let first = message(&state, &alice, 0, 2, 0, "one");
    let second = message(&state, &alice, 0, 2, 1, "two");
    let outcomes = v.validate_batch(&[candidate(first.clone(), peer), candidate(second, peer)]);
    assert_eq!(outcomes, vec![Outcome::Valid, Outcome::Valid]);
    assert_eq!(state.db.nullifier_count().unwrap(), 2);
    let again = v.validate_batch(&[candidate(first.clone(), peer)]);
    assert_eq!(again, vec![Outcome::Ignored(Reason::Duplicate)]);
    assert_eq!(again[0].acceptance().0, Acceptance::Ignore);

    // Bob reuses message id 0: the second share reveals his secret, and the peer that sent
    // both shares is blamed.
    let honest = message(&state, &bob, 1, 1, 0, "bob once");
    let spam = message(&state, &bob, 1, 1, 0, "bob twice");
    assert_eq!(
        v.validate_batch(&[candidate(honest, peer)]),
        vec![Outcome::Valid]
    );
    let outcome = v.validate_batch(&[candidate(spam, peer)]).remove(0);
    match &outcome {
        Outcome::Spam {
            evidence,
            same_sender,
        } => {
            assert_eq!(evidence.secret, bob.secret());
            assert_eq!(evidence.id_commitment, bob.commitment());
            assert!(same_sender);
        }
        other => panic!("expected spam, got {other:?}"),
    }
    assert_eq!(outcome.acceptance(), (Acceptance::Reject, "spam"));

    // A tampered proof, a missing proof and a root the node never had.
    let mut tampered = message(&state, &alice, 0, 2, 0, "tampered");
    let mut bytes = tampered.rate_limit_proof.take().unwrap();
    bytes[10] ^= 1;
    tampered.rate_limit_proof = Some(bytes);
    let mut unproved = first.clone();
    unproved.rate_limit_proof = None;
    let outcomes = v.validate_batch(&[candidate(tampered, peer), candidate(unproved, peer)]);
    assert!(
        matches!(
            outcomes[0],
            Outcome::Rejected(Reason::InvalidProof | Reason::MalformedProof)
        ),
        "{:?}",
        outcomes[0]
    );
    assert_eq!(outcomes[1], Outcome::Rejected(Reason::MissingProof));

    let mut elsewhere = StateFixture::new();
    elsewhere.add_member(0, &alice, 2);
    elsewhere.add_member(5, &Identity::from_seed(b"someone else"), 1);
    let foreign = message(&elsewhere, &alice, 0, 2, 1, "foreign root");
    assert_eq!(
        v.validate_batch(&[candidate(foreign.clone(), peer)]),
        vec![Outcome::Rejected(Reason::UnknownRoot)]
    );
    // A node still syncing cannot tell a root it lacks from a bad one: no blame.
    let syncing = validator(&state, false);
    assert_eq!(
        syncing.validate_batch(&[candidate(foreign, peer)]),
        vec![Outcome::Ignored(Reason::UnknownRoot)]
    );
}

#[test]
fn a_full_validation_queue_ignores_the_message_without_blocking() {
    let state = StateFixture::new();
    let validator = Arc::new(validator(&state, true));
    // A results channel of one that nobody reads: the single worker blocks on its second
    // result, so the queue behind it fills up.
    let (verdicts, _unread) = tokio::sync::mpsc::channel(1);
    let metrics = metrics();
    let (pipeline, _workers) = Pipeline::start(
        validator,
        1,
        1,
        1,
        Sinks {
            verdicts,
            hub: Arc::new(Hub::new(10)),
            spam: None,
            db: state.db.clone(),
            archive: state.db.clone(),
            metrics: metrics.clone(),
        },
    )
    .unwrap();
    let job = || Job {
        id: libp2p_message_id(),
        source: PeerId::random(),
        candidate: candidate(WakuMessage::default(), PeerId::random()),
    };
    let started = std::time::Instant::now();
    let mut refused = None;
    for _ in 0..200 {
        if let Err(outcome) = pipeline.submit(job()) {
            refused = Some(outcome);
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let refused = refused.expect("the queue fills up");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "submit never blocks"
    );
    assert_eq!(refused, Outcome::Ignored(Reason::QueueFull));
    assert_eq!(refused.acceptance(), (Acceptance::Ignore, "queue_full"));
    assert_eq!(Metrics::reason(&metrics.ignored, "queue_full").get(), 1);
}

fn libp2p_message_id() -> rln_relay::network::MessageId {
    rln_relay::network::MessageId::new(&rand::random::<[u8; 8]>())
}

async fn call(router: &axum::Router, request: Request<Body>) -> (StatusCode, String) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn post_json(uri: &str, json: &str) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(json.to_string()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_router_answers_with_status_codes_that_say_whose_fault_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(offline_config(dir.path())).await.unwrap();
    let router = rest::router(node.handle().clone());

    // Not synced (the RPC is down): health says so with 503, and names the root.
    let (status, body) = call(&router, get("/health")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["synced"], false);
    assert!(health["root"].as_str().unwrap().starts_with("0x"), "{body}");

    let (status, body) = call(&router, get("/debug/v1/info")).await;
    assert_eq!(status, StatusCode::OK);
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["peerId"], node.handle().peer_id().to_string());
    assert_eq!(info["pubsubTopics"][0], TOPIC);
    let backend = rln_bn254::backend_report();
    assert_eq!(info["backend"]["scalar"], backend.scalar);
    assert_eq!(info["backend"]["lanes"], backend.lanes);
    assert_eq!(info["keys"]["source"], "key set `waku`");
    assert_eq!(info["keys"]["insecure"], false);

    // The client's mistakes are 4xx.
    let topic = "%2Fwaku%2F2%2Frs%2F1%2F0";
    let (status, body) = call(
        &router,
        post_json(
            &format!("/relay/v1/messages/{topic}"),
            r#"{"payload":"not base64!","contentTopic":"/a/1/b/proto"}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("payload is not base64"), "{body}");
    let (status, _) = call(
        &router,
        post_json(&format!("/relay/v1/messages/{topic}"), "{not json"),
    )
    .await;
    assert!(status.is_client_error());
    let (status, body) = call(&router, get("/relay/v1/messages/%2Fnot%2Fsubscribed")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // A relay-only node cannot publish: a conflict with its setup, not a server error.
    let (status, body) = call(
        &router,
        post_json(
            &format!("/relay/v1/messages/{topic}"),
            r#"{"payload":"aGk=","contentTopic":"/a/1/b/proto"}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = call(&router, get("/rln/v1/membership")).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Subscribing works without peers; the cached topic then answers (empty).
    let (status, _) = call(
        &router,
        post_json("/relay/v1/subscriptions", r#"["/waku/2/rs/1/7"]"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(&router, get("/relay/v1/messages/%2Fwaku%2F2%2Frs%2F1%2F7")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "[]"));

    let (status, body) = call(&router, get("/rln/v1/spam")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "[]"));
    // Evidence pages newest first; the cursor of a page's last piece asks for the next.
    for epoch in 1..=5u64 {
        let share = |x: u64| rln_db::NullifierRecord {
            x: Fr::from(x),
            y: Fr::from(x + 1),
            message_hash: [0; 32],
            first_seen_ms: 0,
        };
        node.handle()
            .db()
            .record_spam(&rln_db::SpamEvidence {
                epoch,
                nullifier: Fr::from(epoch),
                first: share(1),
                second: share(2),
                secret: Fr::from(3u64),
                id_commitment: Fr::from(4u64),
                slash_status: rln_db::evidence::NOT_SUBMITTED.into(),
            })
            .unwrap();
    }
    let mut epochs = Vec::new();
    let mut uri = "/rln/v1/spam?limit=2".to_string();
    loop {
        let (status, body) = call(&router, get(&uri)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
        let Some(last) = page.last() else { break };
        assert!(page.len() <= 2);
        epochs.extend(page.iter().map(|e| e["epoch"].as_u64().unwrap()));
        uri = format!(
            "/rln/v1/spam?limit=2&before={}",
            last["cursor"].as_str().unwrap()
        );
    }
    assert_eq!(epochs, vec![5, 4, 3, 2, 1]);
    for bad in [
        "/rln/v1/spam?limit=0",
        "/rln/v1/spam?limit=5000",
        "/rln/v1/spam?before=0x12",
    ] {
        let (status, _) = call(&router, get(bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (status, body) = call(&router, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("waku_rln_invalid_messages_total"), "{body}");

    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_api_checks_host_names_its_token_and_publish_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = offline_config(dir.path());
    config.rest.listen = Some(([127, 0, 0, 1], 0).into());
    let token = "correct-horse-battery-staple";
    config.rest.token = Some(token.into());
    let node = Node::start(config).await.unwrap();
    let router = rest::router(node.handle().clone());
    let with = |uri: &str, host: &str, auth: Option<&str>| {
        let mut r = Request::get(uri).header("host", host);
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.body(Body::empty()).unwrap()
    };
    let bearer = format!("Bearer {token}");

    // DNS rebinding: a page served as evil.example resolving to 127.0.0.1 sends its name.
    let (status, body) = call(
        &router,
        with("/debug/v1/info", "evil.example:8645", Some(&bearer)),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("evil.example"), "{body}");
    for host in ["127.0.0.1:8645", "localhost:8645", "[::1]:8645"] {
        let (status, body) = call(&router, with("/debug/v1/info", host, Some(&bearer))).await;
        assert_eq!(status, StatusCode::OK, "{host}: {body}");
    }

    // The token: required everywhere but /health, compared whole.
    let (status, _) = call(&router, with("/debug/v1/info", "127.0.0.1", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(
        &router,
        with("/metrics", "127.0.0.1", Some("Bearer correct-horse")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(&router, with("/health", "127.0.0.1", None)).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "health answers (not synced)"
    );

    // A timestamp outside the clock gap is refused before anything else (a future one would
    // spend a message id of a future epoch).
    let future = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
        + 3_600_000_000_000;
    let post = Request::post("/relay/v1/messages/%2Fwaku%2F2%2Frs%2F1%2F0")
        .header("host", "127.0.0.1")
        .header("authorization", &bearer)
        .header("content-type", "application/json")
        .body(Body::from(format!(
            r#"{{"payload":"aGk=","contentTopic":"/a/1/b/proto","timestamp":{future}}}"#
        )))
        .unwrap();
    let (status, body) = call(&router, post).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body.contains("s from this node's clock; at most 20 s"),
        "{body}"
    );
    node.shutdown().await.unwrap();
}
