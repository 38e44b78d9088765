//! The node's listeners under an attacker's load, driven the way an attacker would: raw TCP
//! sockets against a real `rln-node run` process, its memory read from `/proc`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rln_relay::network::{websocket_max_message_bytes, HANDSHAKE_TIMEOUT, MAX_PENDING_INCOMING};
use rln_relay::protocols::client::LightClient;
use rln_relay::wire::metadata::Metadata;
use rln_relay::wire::DEFAULT_MAX_MESSAGE_BYTES;
use rln_relay::Multiaddr;
use rln_testkit::node::NodeProcess;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rln-node"))
}

/// A node that needs no chain (its chain id is given, so it starts while the RPC at a closed
/// port is down), listening on TCP and WebSocket on loopback.
fn start_node(dir: &std::path::Path) -> NodeProcess {
    let data = dir.join("data");
    let args = [
        "--data-dir",
        data.to_str().unwrap(),
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--listen",
        "/ip4/127.0.0.1/tcp/0/ws",
        "--no-rest",
        "--no-discovery",
        "--eth-rpc",
        "http://127.0.0.1:9",
        "--eth-contract",
        "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "--eth-chain-id",
        "31337",
    ];
    NodeProcess::start_logged(&binary(), &args, Some(dir.join("node.log")))
}

/// The `host:port` of a `/ip4/<host>/tcp/<port>/ws/p2p/<id>` address.
fn socket_of(ws: &str) -> String {
    let parts: Vec<&str> = ws.split('/').collect();
    format!("{}:{}", parts[2], parts[4])
}

/// A raw TCP connection that has completed the WebSocket upgrade and nothing else.
async fn upgraded(socket: &str) -> TcpStream {
    let mut s = TcpStream::connect(socket).await.unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {socket}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut byte))
            .await
            .expect("the upgrade is answered")
            .unwrap();
        assert_eq!(n, 1, "closed during the upgrade: {answer:?}");
        answer.push(byte[0]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    s
}

/// The header of a masked binary WebSocket frame that announces `len` payload bytes.
fn frame_header(len: u64) -> Vec<u8> {
    let mut h = vec![0x82, 0x80 | 127];
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[1, 2, 3, 4]);
    h
}

/// Waits until the peer closes `s` (end of stream or a reset); returns how long it took, or
/// `None` if it stayed open for `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((start + limit).into(), s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// A light client's metadata exchange over WebSocket, as js-waku's first request.
async fn served(ws: &str) -> bool {
    let addr: Multiaddr = ws.parse().unwrap();
    let Ok(client) = LightClient::connect(&addr).await else {
        return false;
    };
    let mine = Metadata {
        cluster_id: Some(1),
        shards: vec![0],
    };
    matches!(client.metadata(&mine).await, Ok(m) if m.cluster_id == Some(1))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_frames_are_bounded_and_handshakes_end() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path());
    let ws = node.ws_addr().expect("a WebSocket address").to_string();
    let socket = socket_of(&ws);
    assert!(
        served(&ws).await,
        "a light client is served before the attack"
    );
    let before = node.rss().unwrap();

    // Hostile connections: each announces one huge frame (libp2p's old limit, 256 MiB) or one
    // exactly at the bound, and sends the first KiB of it.
    const HOSTILE: usize = 16;
    let bound = websocket_max_message_bytes(DEFAULT_MAX_MESSAGE_BYTES) as u64;
    let mut hostile = Vec::new();
    for i in 0..HOSTILE {
        let mut s = upgraded(&socket).await;
        let len = if i % 2 == 0 { 256 << 20 } else { bound };
        let mut frame = frame_header(len);
        frame.extend_from_slice(&[0x13; 1024]);
        s.write_all(&frame).await.unwrap();
        hostile.push(s);
    }
    // While they are held open, a light client is still served. (The pause lets the node
    // read the frame headers it was sent: nothing outside the process shows that it has,
    // and the RSS read after it is the figure this test is about.)
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        served(&ws).await,
        "a light client is served during the attack"
    );
    let during = node.rss().unwrap();
    let per_connection = during.saturating_sub(before) / HOSTILE as u64;
    eprintln!(
        "RSS {:.1} MiB before, {:.1} MiB with {HOSTILE} hostile frames: {:.3} MiB each \
         (bound {bound} bytes a frame)",
        mib(before),
        mib(during),
        mib(per_connection)
    );
    assert!(
        per_connection < 2 << 20,
        "each hostile connection cost {:.1} MiB",
        mib(per_connection)
    );

    // None of them outlives the handshake timeout.
    let limit = HANDSHAKE_TIMEOUT + Duration::from_secs(5);
    for s in &mut hostile {
        assert!(
            closed_within(s, limit).await.is_some(),
            "a hostile connection is still open after {limit:?}"
        );
    }
    // Nor does one that upgrades to WebSocket and then stays silent, or one that never
    // upgrades.
    let mut silent = upgraded(&socket).await;
    let mut mute = TcpStream::connect(&socket).await.unwrap();
    assert!(closed_within(&mut silent, limit).await.is_some());
    assert!(closed_within(&mut mute, limit).await.is_some());
    assert!(
        served(&ws).await,
        "a light client is served after the attack"
    );
    let after = node.rss().unwrap();
    eprintln!("RSS {:.1} MiB after they closed", mib(after));
    assert!(
        after.saturating_sub(before) < HOSTILE as u64 * (2 << 20),
        "RSS grew {:.1} MiB",
        mib(after.saturating_sub(before))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_in_their_handshake_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path());
    let ws = node.ws_addr().expect("a WebSocket address").to_string();
    let socket = socket_of(&ws);
    // More silent connections than the cap: those over it are closed at once, the rest when
    // the handshake times out.
    let extra = 24;
    let total = MAX_PENDING_INCOMING as usize + extra;
    let mut conns = Vec::new();
    for _ in 0..total {
        conns.push(TcpStream::connect(&socket).await.unwrap());
    }
    // Refused ones close at once; held ones only at the handshake timeout, well after this.
    let checks = conns
        .iter_mut()
        .map(|s| closed_within(s, Duration::from_secs(3)));
    let verdicts = futures::future::join_all(checks).await;
    let refused = verdicts.iter().filter(|v| v.is_some()).count();
    eprintln!("{refused} of {total} silent connections refused at once");
    assert!(
        refused >= extra / 2 && refused < total / 2,
        "only {refused} of {total} connections were refused (cap {MAX_PENDING_INCOMING})"
    );
    let limit = HANDSHAKE_TIMEOUT + Duration::from_secs(5);
    for s in &mut conns {
        assert!(closed_within(s, limit).await.is_some());
    }
    assert!(
        served(&ws).await,
        "a light client is served once they are gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_holds_at_most_its_share_of_a_protocols_streams() {
    use futures::AsyncReadExt as _;
    use rln_relay::protocols::filter;
    use rln_relay::protocols::reqres::MAX_STREAMS_PER_PEER;
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path());
    let ws = node.ws_addr().expect("a WebSocket address").to_string();
    let addr: Multiaddr = ws.parse().unwrap();
    // A client opens more filter streams than its share and writes nothing on any.
    let hog = LightClient::connect(&addr).await.unwrap();
    let extra = 8;
    let mut streams = Vec::new();
    for _ in 0..MAX_STREAMS_PER_PEER + extra {
        streams.push(hog.open(filter::PROTOCOL_SUBSCRIBE).await.unwrap());
    }
    // Those over its share are reset at once; the others stay open, waiting for a request.
    // Mplex sends a reset with the connection's next outbound frame, so the client then
    // makes a request of another protocol on the same connection to flush the last one.
    let mut closed = 0;
    let mut open = Vec::new();
    for round in 0..2 {
        let checks = streams.into_iter().map(|mut s| async move {
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(Duration::from_secs(3), s.read(&mut byte)).await;
            (read.is_ok(), s)
        });
        for (reset, s) in futures::future::join_all(checks).await {
            if reset {
                closed += 1;
            } else {
                open.push(s);
            }
        }
        streams = std::mem::take(&mut open);
        if round == 0 {
            let mine = Metadata {
                cluster_id: Some(1),
                shards: vec![0],
            };
            hog.metadata(&mine).await.unwrap();
        }
    }
    eprintln!(
        "{closed} of {} silent streams of one client reset (share {MAX_STREAMS_PER_PEER})",
        MAX_STREAMS_PER_PEER + extra
    );
    assert_eq!(
        closed, extra,
        "exactly the streams over the share are reset"
    );
    assert_eq!(streams.len(), MAX_STREAMS_PER_PEER, "the share stays open");
    // Another client is served at once on the same protocol.
    let other = LightClient::connect(&addr).await.unwrap();
    let ping = rln_relay::wire::filter::FilterRequest {
        request_id: "p".into(),
        kind: rln_relay::wire::filter::FilterRequestType::Ping,
        pubsub_topic: None,
        content_topics: vec![],
    };
    let started = Instant::now();
    let answer = other.filter(&ping).await.unwrap();
    assert_eq!(answer.status_code, filter::code::NOT_FOUND);
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(streams);
}
