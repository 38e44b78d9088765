//! Traffic for load benchmarks: messages proved up front (kept on disk, so a second run skips
//! the proving), forged messages whose proofs fail only at the Groth16 check, and bare
//! GossipSub peers that publish them to rln-nodes and time their arrival.
//!
//! The peers speak Waku relay's protocol with the nodes' message ids (sha256 of the data)
//! and validate nothing, so every cost of validation stays with the nodes under test. A
//! publisher joins no topic (the nodes never forward it anything); a sink joins the topic
//! and notes when each message arrives.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, MessageId, ValidationMode};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId, Swarm};
use rand::Rng;
use rln_core::{epoch_at, epoch_to_fr, hash_to_field, Fr, Identity, MerkleTree, RlnIdentifier};
use rln_relay::network::RELAY_PROTOCOL;
use rln_relay::wire::{decode_proof, encode_proof, message_id};
use rln_relay::{SignalMode, WakuMessage};
use rln_zk::{KeySet, MessageRequest};
use tokio::sync::watch;

/// Bytes of payload in every load message: a short chat message.
pub const PAYLOAD_BYTES: usize = 200;

/// A member that proves pool messages.
#[derive(Debug, Clone)]
pub struct PoolMember {
    /// Its identity.
    pub identity: Identity,
    /// Its leaf index.
    pub index: u64,
    /// Its message limit (the most messages it proves per epoch).
    pub limit: u64,
}

/// First-time stamps for `len` slots against one clock: each slot keeps the first time it was
/// stamped, as an offset from the clock's start. Lock-free, for many tasks at once.
#[derive(Debug)]
pub struct Stamps {
    start: Instant,
    // Nanoseconds since the start plus one; 0 means "never".
    slots: Vec<AtomicU64>,
}

impl Stamps {
    /// `len` empty slots on a clock starting at `start`.
    pub fn new(len: usize, start: Instant) -> Self {
        Self {
            start,
            slots: (0..len).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Stamps slot `i` with now, unless it already holds a time.
    pub fn stamp(&self, i: usize) {
        let nanos = self.start.elapsed().as_nanos() as u64 + 1;
        let _ = self.slots[i].compare_exchange(0, nanos, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// When slot `i` was first stamped, from the clock's start.
    pub fn at(&self, i: usize) -> Option<Duration> {
        match self.slots[i].load(Ordering::Relaxed) {
            0 => None,
            n => Some(Duration::from_nanos(n - 1)),
        }
    }
}

/// Encoded messages, each with its gossipsub id, and when each was sent and received.
#[derive(Debug)]
pub struct Traffic {
    messages: Vec<Vec<u8>>,
    by_id: HashMap<MessageId, usize>,
    start: Instant,
    sent: Stamps,
    received: Stamps,
}

impl Traffic {
    /// Traffic over `messages`; the clock starts now.
    pub fn new(messages: Vec<Vec<u8>>) -> Self {
        let by_id = messages
            .iter()
            .enumerate()
            .map(|(i, m)| (MessageId::from(message_id(m).to_vec()), i))
            .collect();
        let start = Instant::now();
        Self {
            sent: Stamps::new(messages.len(), start),
            received: Stamps::new(messages.len(), start),
            by_id,
            messages,
            start,
        }
    }

    /// How many messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The encoded message `i`.
    pub fn message(&self, i: usize) -> &[u8] {
        &self.messages[i]
    }

    /// When the clock started.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// When message `i` was handed to a publisher's swarm (from the clock's start).
    pub fn sent_at(&self, i: usize) -> Option<Duration> {
        self.sent.at(i)
    }

    /// When message `i` first reached a sink.
    pub fn received_at(&self, i: usize) -> Option<Duration> {
        self.received.at(i)
    }

    /// How many of `range` reached a sink.
    pub fn delivered(&self, range: std::ops::Range<usize>) -> usize {
        range.filter(|&i| self.received_at(i).is_some()).count()
    }
}

/// Honest messages proved with the Waku key set, `count` of them spread over `members` (each
/// proves message ids `0..limit`, in order), all in the epoch of now. See [`prove_pool`].
pub fn honest_pool(
    members: &[PoolMember],
    count: usize,
    epoch_secs: u64,
    cache_dir: &Path,
) -> Vec<Vec<u8>> {
    let capacity: u64 = members.iter().map(|m| m.limit).sum();
    assert!(
        count as u64 <= capacity,
        "{count} messages need members with limits adding up to {count}"
    );
    let mut slots = Vec::with_capacity(count);
    'fill: for (m, member) in members.iter().enumerate() {
        for id in 0..member.limit {
            if slots.len() == count {
                break 'fill;
            }
            slots.push((m, id));
        }
    }
    prove_pool(members, &slots, epoch_secs, cache_dir)
}

/// Messages proved with the Waku key set, message k by member `slots[k].0` with message id
/// `slots[k].1`, all in the epoch of now, against the tree of every one of `members`' leaves
/// (so the root is the chain's when `members` are all its members). Each has its own payload,
/// so a slot given twice makes a double signal: two messages under one nullifier. Cached under
/// `cache_dir`, keyed by the root, the epoch and the slots.
pub fn prove_pool(
    members: &[PoolMember],
    slots: &[(usize, u64)],
    epoch_secs: u64,
    cache_dir: &Path,
) -> Vec<Vec<u8>> {
    let count = slots.len();
    for &(m, id) in slots {
        let member = &members[m];
        assert!(
            id < member.limit,
            "message id {id} is over member {m}'s limit"
        );
    }
    let mut tree = MerkleTree::in_memory(rln_core::TREE_DEPTH).expect("an in-memory tree");
    let leaves: Vec<(u64, Fr)> = members
        .iter()
        .map(|m| {
            (
                m.index,
                m.identity.rate_commitment(m.limit).expect("a valid limit"),
            )
        })
        .collect();
    tree.set_leaves(&leaves).expect("the leaves fit");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    let epoch = epoch_at(now.as_secs(), epoch_secs);
    let root = rln_core::fr_to_hex(&tree.root().expect("the root"));
    // A key for the slots (a cache miss from another toolchain's hasher only costs a proving).
    let layout = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        slots.hash(&mut h);
        h.finish() & 0xffff_ffff_ffff
    };
    let cache = cache_dir.join(format!(
        "pool-{}-{epoch_secs}s-{epoch}-{count}-{layout:012x}.bin",
        root.trim_start_matches("0x").get(..16).unwrap_or("root")
    ));
    if let Some(messages) = read_pool(&cache, count) {
        println!("load: {count} proved messages from {}", cache.display());
        return messages;
    }
    let prover = KeySet::Waku.prover().expect("the Waku key set loads");
    // The membership part of each member that proves anything.
    let mut prepared = HashMap::new();
    for &(m, _) in slots {
        if let std::collections::hash_map::Entry::Vacant(e) = prepared.entry(m) {
            let member = &members[m];
            let path = tree.proof(member.index).expect("a leaf of the tree");
            e.insert(
                prover
                    .prepare(&member.identity, member.limit, &path)
                    .expect("the membership part"),
            );
        }
    }
    let started = Instant::now();
    let done = AtomicU64::new(0);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = count.div_ceil(threads).max(1);
    let base_ns = now.as_nanos() as i64;
    println!(
        "load: proving {count} messages (cached in {})",
        cache.display()
    );
    let mut messages: Vec<Vec<u8>> = Vec::with_capacity(count);
    std::thread::scope(|scope| {
        let workers: Vec<_> = slots
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                let (prover, prepared, done) = (&prover, &prepared, &done);
                scope.spawn(move || {
                    let mut out = Vec::with_capacity(part.len());
                    for (j, &(m, id)) in part.iter().enumerate() {
                        let k = c * chunk + j;
                        let mut msg = WakuMessage {
                            payload: payload(k),
                            content_topic: "/load/1/bench/proto".into(),
                            timestamp: Some(base_ns + k as i64),
                            ..Default::default()
                        };
                        let request = MessageRequest::for_signal(
                            id,
                            &msg.signal(SignalMode::Timestamped),
                            epoch_to_fr(epoch),
                            RlnIdentifier::waku(),
                        );
                        let proof = prover
                            .prove_message(&prepared[&m], &request, &mut rand::rngs::OsRng)
                            .expect("a proof");
                        msg.rate_limit_proof = Some(encode_proof(&proof));
                        out.push(msg.encode());
                        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if n % (count as u64 / 10).max(1) == 0 {
                            println!(
                                "load:   {n}/{count} proved ({:.0} s)",
                                started.elapsed().as_secs_f64()
                            );
                        }
                    }
                    out
                })
            })
            .collect();
        for w in workers {
            messages.extend(w.join().expect("a proving thread"));
        }
    });
    write_pool(&cache, &messages);
    messages
}

/// A node for load runs on `chain`: loopback, `epoch_secs`-long epochs and as long a clock gap
/// (so that a cached pool stays valid as long), the given static peers and no discovery (the
/// topology stays as planned).
pub fn planned_config(
    chain: &crate::TestChain,
    dir: &Path,
    member: Option<&crate::TestMember>,
    epoch_secs: u64,
    static_peers: Vec<String>,
) -> rln_node::NodeConfig {
    let mut c = crate::node::loopback_config(chain, dir, member, epoch_secs);
    c.rln.max_clock_gap_secs = epoch_secs;
    c.network.static_peers = static_peers;
    c.network.discovery = false;
    c
}

/// A payload of [`PAYLOAD_BYTES`] that differs for every `k`.
fn payload(k: usize) -> Vec<u8> {
    let mut p = format!("load message {k} ").into_bytes();
    p.resize(PAYLOAD_BYTES, b'.');
    p
}

fn read_pool(path: &Path, count: usize) -> Option<Vec<Vec<u8>>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .read_to_end(&mut bytes)
        .ok()?;
    let mut messages = Vec::with_capacity(count);
    let mut rest = bytes.as_slice();
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let len = u32::from_le_bytes(*len) as usize;
        messages.push(tail.get(..len)?.to_vec());
        rest = &tail[len..];
    }
    (messages.len() == count && rest.is_empty()).then_some(messages)
}

fn write_pool(path: &Path, messages: &[Vec<u8>]) {
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("tmp");
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        for m in messages {
            f.write_all(&(m.len() as u32).to_le_bytes())?;
            f.write_all(m)?;
        }
        f.into_inner()?.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        println!("load: cannot cache the pool in {}: {e}", path.display());
    }
}

/// `count` messages shaped like `template` (same root, epoch and RLN identifier, `x` the hash
/// of their own signal) whose nullifier and `y` are random: every check before the Groth16
/// one passes, and that one fails. A real proof's curve points make them decode.
pub fn forged(template: &[u8], count: usize, rng: &mut impl Rng) -> Vec<Vec<u8>> {
    let original = WakuMessage::decode(template, usize::MAX).expect("a pool message");
    let proof_bytes = original.rate_limit_proof.as_deref().expect("a proof");
    let proof = decode_proof(proof_bytes).expect("a pool proof decodes");
    let stamp = original.timestamp.unwrap_or_default();
    (0..count)
        .map(|k| {
            let mut msg = WakuMessage {
                payload: format!("forged {k} {}", rng.gen::<u64>()).into_bytes(),
                content_topic: original.content_topic.clone(),
                timestamp: Some(stamp + k as i64),
                ..Default::default()
            };
            let mut p = proof.clone();
            p.share_x = hash_to_field(&msg.signal(SignalMode::Timestamped));
            p.nullifier = Fr::from(rng.gen::<u128>());
            p.share_y = Fr::from(rng.gen::<u128>());
            msg.rate_limit_proof = Some(encode_proof(&p));
            msg.encode()
        })
        .collect()
}

/// Where benches keep proved pools: `$RLN_LOAD_POOL_DIR`, or `rln-load-pool` in cargo's
/// target directory (found from the running executable).
pub fn pool_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RLN_LOAD_POOL_DIR") {
        return PathBuf::from(dir);
    }
    target_dir().join("rln-load-pool")
}

/// cargo's target directory: benches and tests run from `<target>/<profile>/deps/`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the running executable's path");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .expect("the executable is under <target>/<profile>/deps")
}

/// The `rln-node` binary: `$RLN_NODE_BINARY`, or the one of the profile the running bench or
/// test was built with.
pub fn node_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("RLN_NODE_BINARY") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the running executable's path");
    let profile = exe
        .ancestors()
        .nth(2)
        .expect("the executable is under <target>/<profile>/deps");
    let binary = profile.join("rln-node");
    assert!(
        binary.exists(),
        "{} is missing: build it with the same profile first (`make bench-throughput` does)",
        binary.display()
    );
    binary
}

/// A bare GossipSub peer on loopback TCP.
pub struct LoadPeer {
    swarm: Swarm<gossipsub::Behaviour>,
}

impl std::fmt::Debug for LoadPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadPeer")
            .field("peer_id", self.swarm.local_peer_id())
            .finish()
    }
}

impl LoadPeer {
    /// A peer that joins `topic` when given (a sink) or none (a publisher).
    pub fn new(topic: Option<&str>) -> Self {
        let config = gossipsub::ConfigBuilder::default()
            .protocol_id(RELAY_PROTOCOL, gossipsub::Version::V1_1)
            .validation_mode(ValidationMode::Anonymous)
            .message_id_fn(|m: &gossipsub::Message| MessageId::from(message_id(&m.data).to_vec()))
            .max_transmit_size(1 << 20)
            .heartbeat_interval(Duration::from_millis(300))
            .build()
            .expect("a gossipsub config");
        let behaviour = gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, config)
            .expect("a gossipsub behaviour");
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .expect("a TCP transport")
            .with_behaviour(|_| behaviour)
            .expect("the behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(300)))
            .build();
        if let Some(topic) = topic {
            swarm
                .behaviour_mut()
                .subscribe(&IdentTopic::new(topic))
                .expect("a subscription");
        }
        Self { swarm }
    }

    /// Its peer id.
    pub fn peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// Dials `addr` and waits (up to 30 s) until the peer there is known to relay `topic`,
    /// and, for a sink, until it is in the sink's mesh.
    pub async fn connect(&mut self, addr: &str, topic: &str) {
        let addr: Multiaddr = addr.parse().expect("a multiaddress");
        let peer = match addr.iter().last() {
            Some(libp2p::multiaddr::Protocol::P2p(peer)) => peer,
            _ => panic!("{addr} has no /p2p/<peer id>"),
        };
        self.swarm.dial(addr).expect("the dial starts");
        let hash = IdentTopic::new(topic).hash();
        let subscribed = self.swarm.behaviour().topics().any(|t| *t == hash);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let b = self.swarm.behaviour();
            let relays = b
                .all_peers()
                .any(|(p, topics)| *p == peer && topics.contains(&&hash));
            let meshed = !subscribed || b.mesh_peers(&hash).any(|p| *p == peer);
            if relays && meshed {
                return;
            }
            tokio::select! {
                _ = self.swarm.select_next_some() => {}
                _ = tokio::time::sleep_until(deadline) => {
                    panic!("{peer} did not join {topic} with this load peer within 30 s")
                }
            }
        }
    }

    /// Publishes `schedule` (offsets from the traffic's start, message indexes) as it falls
    /// due, then keeps the connections served until `stop`. Returns how many publishes failed.
    pub async fn publish(
        mut self,
        topic: &str,
        traffic: Arc<Traffic>,
        schedule: Vec<(Duration, usize)>,
        mut stop: watch::Receiver<bool>,
    ) -> usize {
        let topic = IdentTopic::new(topic);
        let start = tokio::time::Instant::from_std(traffic.start());
        let mut failed = 0;
        let mut next = 0;
        while next < schedule.len() {
            let due = start + schedule[next].0;
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {
                    let now = tokio::time::Instant::now();
                    while next < schedule.len() && start + schedule[next].0 <= now {
                        let i = schedule[next].1;
                        traffic.sent.stamp(i);
                        if self
                            .swarm
                            .behaviour_mut()
                            .publish(topic.clone(), traffic.message(i).to_vec())
                            .is_err()
                        {
                            failed += 1;
                        }
                        next += 1;
                    }
                }
                _ = self.swarm.select_next_some() => {}
            }
        }
        self.serve(&mut stop, None).await;
        failed
    }

    /// Notes the arrival of every message of `traffic` until `stop`.
    pub async fn sink(mut self, traffic: Arc<Traffic>, mut stop: watch::Receiver<bool>) {
        self.serve(&mut stop, Some(&traffic)).await;
    }

    async fn serve(&mut self, stop: &mut watch::Receiver<bool>, traffic: Option<&Traffic>) {
        while !*stop.borrow() {
            tokio::select! {
                _ = stop.changed() => {}
                event = self.swarm.select_next_some() => {
                    if let (
                        SwarmEvent::Behaviour(gossipsub::Event::Message { message_id, .. }),
                        Some(t),
                    ) = (event, traffic)
                    {
                        if let Some(&i) = t.by_id.get(&message_id) {
                            t.received.stamp(i);
                        }
                    }
                }
            }
        }
    }
}

/// Waits until `count()` reaches `total`, or has not changed for `quiet`, checking every
/// `poll`: the end of a run's deliveries, whether all arrived or some never will.
pub async fn until_delivered_or_quiet(
    total: usize,
    quiet: Duration,
    poll: Duration,
    mut count: impl FnMut() -> usize,
) {
    let (mut seen, mut quiet_since) = (0, Instant::now());
    loop {
        tokio::time::sleep(poll).await;
        let now = count();
        if now >= total || quiet_since.elapsed() > quiet {
            return;
        }
        if now != seen {
            (seen, quiet_since) = (now, Instant::now());
        }
    }
}

/// Latency percentile of a sorted list (`p` in 0..=1).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
