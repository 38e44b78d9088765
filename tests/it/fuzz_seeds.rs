//! The seed corpus of the fuzz targets (`fuzz/seeds/<target>/`), made with the workspace's own
//! encoders so that the seeds stay valid inputs as the formats evolve: the test fails when a
//! committed seed differs from what the encoders now write. `make fuzz-seeds` rewrites them
//! (`RLN_WRITE_FUZZ_SEEDS=1`). Inputs that once crashed a target sit beside them as
//! `crash-*` files; this test leaves those alone.

use ark_bn254::{Fq, G1Affine, G2Affine};
use ark_ec::AffineRepr;
use ark_ff::{BigInteger, PrimeField};
use ark_groth16::{ProvingKey, VerifyingKey};
use ark_serialize::CanonicalSerialize;
use rand::SeedableRng;
use rln_chain::{IdentityFile, Keystore, KeystoreMembership};
use rln_core::{fr_to_le_bytes, Fr, Identity, RlnIdentifier};
use rln_node::rest::store::rest_response;
use rln_node::rest::RestMessage;
use rln_relay::protocols::framing::length_prefix;
use rln_relay::wire::filter::{encode_push, FilterRequest, FilterRequestType, FilterResponse};
use rln_relay::wire::lightpush::{encode_v2, encode_v2_response, encode_v3, LightPushResponse};
use rln_relay::wire::metadata::Metadata;
use rln_relay::wire::payload::{self, DecryptionKey, PayloadKey};
use rln_relay::wire::store::{StoreEntry, StoreRequest, StoreResponse};
use rln_relay::wire::{encode_proof, WakuMessage};
use rln_zk::{Groth16Proof, RateLimitProof};

use crate::common::repo;

const WRITE: &str = "RLN_WRITE_FUZZ_SEEDS";

/// One seed: its target, its file name and its bytes.
type Seed = (&'static str, &'static str, Vec<u8>);

#[test]
fn fuzz_seeds_are_current() {
    let dir = repo().join("fuzz/seeds");
    let write = std::env::var_os(WRITE).is_some();
    let mut stale = Vec::new();
    for (target, name, bytes) in seeds() {
        let path = dir.join(target).join(name);
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "fuzz seeds differ from what the encoders write: {stale:?}; run `make fuzz-seeds`"
    );
}

fn seeds() -> Vec<Seed> {
    let mut out = Vec::new();
    out.extend(wire_seeds());
    out.extend(file_seeds());
    out.extend(rest_seeds());
    out.extend(payload_seeds());
    out
}

fn proof() -> RateLimitProof {
    RateLimitProof {
        proof: Groth16Proof {
            a: G1Affine::generator(),
            b: G2Affine::generator(),
            c: (G1Affine::generator() * Fr::from(3u64)).into(),
        },
        merkle_root: Fr::from(1u64),
        epoch: Fr::from(2u64),
        share_x: Fr::from(3u64),
        share_y: Fr::from(4u64),
        nullifier: Fr::from(5u64),
        rln_identifier: RlnIdentifier::waku(),
    }
}

fn message() -> WakuMessage {
    WakuMessage {
        payload: b"hello".to_vec(),
        content_topic: "/app/1/chat/proto".into(),
        version: Some(0),
        timestamp: Some(1_700_000_000_000_000_000),
        meta: Some(vec![1, 2, 3]),
        rate_limit_proof: Some(encode_proof(&proof())),
        ephemeral: Some(false),
    }
}

const TOPIC: &str = "/waku/2/rs/1/0";

fn wire_seeds() -> Vec<Seed> {
    let minimal = WakuMessage {
        content_topic: "/a/1/b/proto".into(),
        timestamp: Some(-1),
        ..Default::default()
    };
    let request = FilterRequest {
        request_id: "f1".into(),
        kind: FilterRequestType::Subscribe,
        pubsub_topic: Some(TOPIC.into()),
        content_topics: vec!["/a/1/b/proto".into(), "/a/1/c/proto".into()],
    };
    let unsubscribe_all = FilterRequest {
        kind: FilterRequestType::UnsubscribeAll,
        pubsub_topic: None,
        content_topics: Vec::new(),
        ..request.clone()
    };
    let filter_response = FilterResponse {
        request_id: "f1".into(),
        status_code: 404,
        status_desc: Some("no subscription".into()),
    };
    let push_response = LightPushResponse {
        request_id: "p1".into(),
        status_code: 200,
        status_desc: None,
        relay_peer_count: Some(3),
    };
    let content_query = StoreRequest {
        request_id: "s1".into(),
        include_data: true,
        pubsub_topic: Some(TOPIC.into()),
        content_topics: vec!["/app/1/chat/proto".into()],
        time_start: Some(-5),
        time_end: Some(1_700_000_000_000_000_000),
        message_hashes: Vec::new(),
        pagination_cursor: Some(vec![3; 32]),
        pagination_forward: true,
        pagination_limit: Some(7),
    };
    let lookup = StoreRequest {
        request_id: "s2".into(),
        include_data: false,
        pubsub_topic: Some(TOPIC.into()),
        content_topics: Vec::new(),
        time_start: None,
        time_end: None,
        message_hashes: vec![vec![1; 32], vec![2; 32]],
        pagination_cursor: None,
        pagination_forward: false,
        pagination_limit: None,
    };
    let store_response = StoreResponse {
        request_id: "s1".into(),
        status_code: 200,
        status_desc: None,
        messages: vec![
            StoreEntry {
                hash: [1; 32],
                message: Some((TOPIC.into(), message())),
            },
            StoreEntry {
                hash: [2; 32],
                message: None,
            },
        ],
        cursor: Some([2; 32]),
    };
    let metadata = Metadata {
        cluster_id: Some(1),
        shards: vec![0, 3],
    }
    .encode();
    let mut proof_with_extensions = encode_proof(&proof());
    // Field 99 (a varint) and field 42 (bytes): unknown fields are skipped.
    proof_with_extensions.extend_from_slice(&[0x98, 0x06, 0xac, 0x02, 0xd2, 0x02, 3, 1, 2, 3]);
    let frame = |body: &[u8]| [length_prefix(body.len()), body.to_vec()].concat();
    vec![
        ("waku_message", "full.pb", message().encode()),
        ("waku_message", "minimal.pb", minimal.encode()),
        ("rate_limit_proof", "proof.pb", encode_proof(&proof())),
        ("rate_limit_proof", "extensions.pb", proof_with_extensions),
        ("filter", "subscribe.pb", request.encode()),
        ("filter", "unsubscribe-all.pb", unsubscribe_all.encode()),
        ("filter", "response.pb", filter_response.encode()),
        ("filter", "push.pb", encode_push(TOPIC, &message().encode())),
        (
            "lightpush",
            "v3-request.pb",
            encode_v3("p1", Some(TOPIC), &message()),
        ),
        (
            "lightpush",
            "v2-request.pb",
            encode_v2("p2", TOPIC, &message()),
        ),
        ("lightpush", "v3-response.pb", push_response.encode()),
        (
            "lightpush",
            "v2-response.pb",
            encode_v2_response("p2", false, "why"),
        ),
        ("store", "content-query.pb", content_query.encode()),
        ("store", "lookup.pb", lookup.encode()),
        ("store", "response.pb", store_response.encode()),
        ("metadata", "metadata.pb", metadata.clone()),
        // Packed field 2 and nwaku's packed field 3.
        (
            "metadata",
            "packed.pb",
            vec![0x08, 1, 0x12, 2, 0, 3, 0x1a, 2, 3, 5],
        ),
        ("framing", "metadata.frame", frame(&metadata)),
        ("framing", "message.frame", frame(&message().encode())),
    ]
}

/// The password of the seed keystore: the `keystore` target's.
const KEYSTORE_PASSWORD: &[u8] = b"fuzz";

/// An identity file in the form written before `0x` big-endian text: little-endian hex.
fn legacy_identity_file(identity: &Identity, trapdoor: Fr, nullifier: Fr) -> Vec<u8> {
    let le = |x: Fr| {
        fr_to_le_bytes(&x)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    serde_json::to_vec_pretty(&serde_json::json!({
        "trapdoor": le(trapdoor),
        "nullifier": le(nullifier),
        "secret": le(identity.secret()),
        "commitment": le(identity.commitment()),
    }))
    .unwrap()
}

fn file_seeds() -> Vec<Seed> {
    let identity = Identity::from_seed(b"fuzz seed");
    let membership = KeystoreMembership::new(
        &identity,
        None,
        31_337,
        "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        3,
        10,
    );
    let mut keystore = Keystore::default();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    // Two PBKDF2 rounds: the target decrypts only credentials with a small count.
    keystore
        .add(&membership, KEYSTORE_PASSWORD, 2, &mut rng)
        .unwrap();
    let vk = rln_zk::KeySet::Dev.verifying_key().unwrap();
    let arkworks = |compress| {
        let mut bytes = Vec::new();
        vk.serialize_with_mode(&mut bytes, compress).unwrap();
        bytes
    };
    let text = |path: &str| std::fs::read(repo().join(path)).unwrap();
    let (derived, trapdoor, nullifier) = Identity::random_derived(&mut rng);
    vec![
        (
            "keystore",
            "keystore.json",
            serde_json::to_vec_pretty(&keystore).unwrap(),
        ),
        (
            "keystore",
            "credential.json",
            serde_json::to_vec(&membership).unwrap(),
        ),
        (
            "identity_file",
            "identity.json",
            IdentityFile::new(&derived, trapdoor, nullifier)
                .to_json()
                .into_bytes(),
        ),
        (
            "identity_file",
            "legacy.json",
            legacy_identity_file(&derived, trapdoor, nullifier),
        ),
        ("zkey", "tiny.zkey", tiny_zkey()),
        ("zkey", "tiny.arkzkey", tiny_arkzkey()),
        (
            "verifying_key",
            "dev.json",
            text("zkeys/verification_key.json"),
        ),
        (
            "verifying_key",
            "dev-compressed.ark",
            arkworks(ark_serialize::Compress::Yes),
        ),
        (
            "verifying_key",
            "dev-uncompressed.ark",
            arkworks(ark_serialize::Compress::No),
        ),
        ("witness_graph", "tiny.graph", tiny_graph()),
        ("config", "example.toml", text("rln-node.example.toml")),
        (
            "config",
            "minimal.toml",
            b"[chain]\ncontract = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\n\
              rpc = [\"http://127.0.0.1:8545\"]\n"
                .to_vec(),
        ),
    ]
}

fn rest_seeds() -> Vec<Seed> {
    let store = rest_response(StoreResponse {
        request_id: "r".into(),
        status_code: 200,
        status_desc: None,
        messages: vec![StoreEntry {
            hash: [1; 32],
            message: Some((TOPIC.into(), message())),
        }],
        cursor: Some([1; 32]),
    });
    let hash = format!("0x{}", hex::encode([0xab; 32]));
    vec![
        (
            "rest",
            "message.json",
            serde_json::to_vec(&RestMessage::from_message(&message())).unwrap(),
        ),
        ("rest", "topics.json", br#"["/waku/2/rs/1/0"]"#.to_vec()),
        (
            "rest",
            "store-response.json",
            serde_json::to_vec(&store).unwrap(),
        ),
        (
            "rest",
            "store-query.txt",
            format!(
                "includeData=true&pubsubTopic=%2Fwaku%2F2%2Frs%2F1%2F0&contentTopics=%2Fa%2F1%2Fb\
                 %2Fproto,%2Fa%2F1%2Fc%2Fproto&startTime=5&endTime=10&cursor={hash}\
                 &ascending=false&pageSize=7"
            )
            .into_bytes(),
        ),
        (
            "rest",
            "store-lookup.txt",
            format!("hashes={hash},q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=").into_bytes(),
        ),
        (
            "rest",
            "spam-query.txt",
            format!("limit=10&before=0x{}", hex::encode([7; 40])).into_bytes(),
        ),
    ]
}

/// The keys of the `payload` target.
const SYMMETRIC: [u8; 32] = [0x5a; 32];
const PRIVATE: [u8; 32] = [0x11; 32];
const SIGNER: [u8; 32] = [0x22; 32];

fn payload_seeds() -> Vec<Seed> {
    let private = payload::parse_secret_key(&hex::encode(PRIVATE)).unwrap();
    let signer = payload::parse_secret_key(&hex::encode(SIGNER)).unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
    let mut seal = |key: &PayloadKey, signed: bool| {
        let sealed = payload::encrypt(b"hello", key, signed.then_some(&signer), &mut rng).unwrap();
        let opener = match key {
            PayloadKey::Symmetric(k) => DecryptionKey::Symmetric(*k),
            PayloadKey::Asymmetric(_) => DecryptionKey::Private(private.clone()),
        };
        assert_eq!(
            payload::decrypt(&sealed, &opener).unwrap().payload,
            b"hello"
        );
        sealed
    };
    let symmetric = PayloadKey::Symmetric(SYMMETRIC);
    let asymmetric = PayloadKey::Asymmetric(private.public_key());
    // An unsigned envelope as it is before encryption: flags (a 1-byte length), the length,
    // the payload, padding to 256 bytes.
    let mut envelope = vec![0x01, 5];
    envelope.extend_from_slice(b"hello");
    envelope.resize(256, 0);
    vec![
        ("payload", "symmetric.bin", seal(&symmetric, false)),
        ("payload", "symmetric-signed.bin", seal(&symmetric, true)),
        ("payload", "ecies.bin", seal(&asymmetric, false)),
        ("payload", "ecies-signed.bin", seal(&asymmetric, true)),
        ("payload", "envelope.bin", envelope),
    ]
}

/// A G1 point as a snarkjs zkey writes it: x and y as their Montgomery limbs, little-endian.
fn zkey_g1(out: &mut Vec<u8>, p: &G1Affine) {
    let (x, y) = p.xy().unwrap();
    for c in [x, y] {
        out.extend_from_slice(&montgomery(&c));
    }
}

fn zkey_g2(out: &mut Vec<u8>, p: &G2Affine) {
    let (x, y) = p.xy().unwrap();
    for c in [x.c0, x.c1, y.c0, y.c1] {
        out.extend_from_slice(&montgomery(&c));
    }
}

fn montgomery(value: &Fq) -> Vec<u8> {
    value.0.to_bytes_le()
}

/// A snarkjs `.zkey` of a toy circuit: 8 wires, the RLN circuit's 5 public signals, a domain
/// of 8, every point the generator (valid, if useless for proving).
fn tiny_zkey() -> Vec<u8> {
    const N_VARS: u32 = 8;
    const N_PUBLIC: u32 = 5;
    const DOMAIN: u32 = 8;
    let g1 = G1Affine::generator();
    let g2 = G2Affine::generator();
    let points1 = |n: u32| {
        let mut out = Vec::new();
        (0..n).for_each(|_| zkey_g1(&mut out, &g1));
        out
    };
    let mut header = Vec::new();
    header.extend_from_slice(&32u32.to_le_bytes());
    header.extend_from_slice(&Fq::MODULUS.to_bytes_le());
    header.extend_from_slice(&32u32.to_le_bytes());
    header.extend_from_slice(&Fr::MODULUS.to_bytes_le());
    for v in [N_VARS, N_PUBLIC, DOMAIN] {
        header.extend_from_slice(&v.to_le_bytes());
    }
    zkey_g1(&mut header, &g1); // alpha
    zkey_g1(&mut header, &g1); // beta
    zkey_g2(&mut header, &g2); // beta
    zkey_g2(&mut header, &g2); // gamma
    zkey_g1(&mut header, &g1); // delta
    zkey_g2(&mut header, &g2); // delta
                               // Coefficients (matrix, constraint, signal, value): one constraint, then the rows that
                               // snarkjs appends for the public signals.
    let coefficients = [
        (0u32, 0u32, 6u32, 1u64),
        (1, 0, 7, 2),
        (0, 5, 1, 1),
        (0, 6, 2, 1),
    ];
    let mut coeffs = (coefficients.len() as u32).to_le_bytes().to_vec();
    for (matrix, constraint, signal, value) in coefficients {
        for v in [matrix, constraint, signal] {
            coeffs.extend_from_slice(&v.to_le_bytes());
        }
        coeffs.extend_from_slice(&fr_to_le_bytes(&Fr::from(value)));
    }
    let mut b2 = Vec::new();
    (0..N_VARS).for_each(|_| zkey_g2(&mut b2, &g2));
    let sections: Vec<(u32, Vec<u8>)> = vec![
        (1, 1u32.to_le_bytes().to_vec()),
        (2, header),
        (3, points1(N_PUBLIC + 1)),
        (4, coeffs),
        (5, points1(N_VARS)),
        (6, points1(N_VARS)),
        (7, b2),
        (8, points1(N_VARS - N_PUBLIC - 1)),
        (9, points1(DOMAIN)),
    ];
    let mut out = b"zkey".to_vec();
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    for (id, body) in sections {
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&body);
    }
    out
}

/// An `.arkzkey` of a toy circuit: 8 wires, two constraints, the generator everywhere.
fn tiny_arkzkey() -> Vec<u8> {
    let g1 = G1Affine::generator();
    let g2 = G2Affine::generator();
    let key = ProvingKey::<ark_bn254::Bn254> {
        vk: VerifyingKey {
            alpha_g1: g1,
            beta_g2: g2,
            gamma_g2: g2,
            delta_g2: g2,
            gamma_abc_g1: vec![g1; 6],
        },
        beta_g1: g1,
        delta_g1: g1,
        a_query: vec![g1; 8],
        b_g1_query: vec![g1; 8],
        b_g2_query: vec![g2; 8],
        h_query: vec![g1; 4],
        l_query: vec![g1; 2],
    };
    let mut out = Vec::new();
    key.serialize_uncompressed(&mut out).unwrap();
    // Instance and witness variables, constraints, non-zero entries of A, B and C.
    for v in [6u64, 2, 2, 2, 1, 0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let rows: [&[(u64, u64)]; 4] = [&[(6, 1), (0, 3)], &[], &[(7, 2)], &[]];
    for matrix in rows.chunks(2) {
        out.extend_from_slice(&2u64.to_le_bytes());
        for row in matrix {
            out.extend_from_slice(&(row.len() as u64).to_le_bytes());
            for (wire, value) in *row {
                out.extend_from_slice(&fr_to_le_bytes(&Fr::from(*value)));
                out.extend_from_slice(&wire.to_le_bytes());
            }
        }
    }
    out.extend_from_slice(&0u64.to_le_bytes()); // C: no rows
    out
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field_varint(out: &mut Vec<u8>, number: u64, v: u64) {
    varint(out, number << 3);
    varint(out, v);
}

fn field_bytes(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    varint(out, number << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A witness graph (circom-witnesscalc format) with the RLN circuit's inputs and one node
/// of each kind and operation.
fn tiny_graph() -> Vec<u8> {
    // `Node`: oneof input = 1, constant = 2, unary = 3, binary = 4, ternary = 5.
    let op = |fields: &[(u64, u64)]| {
        let mut body = Vec::new();
        for (number, v) in fields {
            field_varint(&mut body, *number, *v);
        }
        body
    };
    let mut nodes: Vec<(u64, Vec<u8>)> = vec![
        (1, op(&[(1, 0)])),  // 0: the constant one
        (1, op(&[(1, 1)])),  // 1: identitySecret
        (1, op(&[(1, 44)])), // 2: x
        (2, {
            let mut value = Vec::new();
            field_bytes(&mut value, 1, &[5]);
            let mut constant = Vec::new();
            field_bytes(&mut constant, 1, &value);
            constant
        }), // 3: 5
        (3, op(&[(1, 0), (2, 1)])), // 4: -identitySecret
        (3, op(&[(1, 1), (2, 2)])), // 5: x
    ];
    for binary in 0..20 {
        nodes.push((4, op(&[(1, binary), (2, 1), (3, 3)])));
    }
    nodes.push((5, op(&[(1, 0), (2, 4), (3, 5), (4, 3)])));
    let mut out = b"wtns.graph.001".to_vec();
    out.extend_from_slice(&(nodes.len() as u64).to_le_bytes());
    for (kind, body) in &nodes {
        let mut node = Vec::new();
        field_bytes(&mut node, *kind, body);
        varint(&mut out, node.len() as u64);
        out.extend_from_slice(&node);
    }
    let offset = out.len() as u64;
    let mut metadata = Vec::new();
    let mut wires = Vec::new();
    for node in 0..nodes.len() as u64 {
        varint(&mut wires, node);
    }
    field_bytes(&mut metadata, 1, &wires);
    let inputs = [
        ("identitySecret", 1, 1),
        ("userMessageLimit", 2, 1),
        ("messageId", 3, 1),
        ("pathElements", 4, 20),
        ("identityPathIndex", 24, 20),
        ("x", 44, 1),
        ("externalNullifier", 45, 1),
    ];
    for (name, offset, len) in inputs {
        let mut signal = Vec::new();
        field_varint(&mut signal, 1, offset);
        field_varint(&mut signal, 2, len);
        let mut entry = Vec::new();
        field_bytes(&mut entry, 1, name.as_bytes());
        field_bytes(&mut entry, 2, &signal);
        field_bytes(&mut metadata, 2, &entry);
    }
    varint(&mut out, metadata.len() as u64);
    out.extend_from_slice(&metadata);
    out.extend_from_slice(&offset.to_le_bytes());
    out
}

/// The seeds parse with the decoders their targets fuzz (a seed that does not parse would
/// only teach the fuzzer the format's error paths).
#[test]
fn fuzz_seeds_parse() {
    assert!(rln_zk::ZkeyData::from_bytes(&tiny_zkey()).is_ok());
    assert!(rln_zk::ZkeyData::from_bytes(&tiny_arkzkey()).is_ok());
    let graph = rln_zk::circuit::graph::WitnessGraph::from_bytes(&tiny_graph()).unwrap();
    assert_eq!(graph.num_wires(), 27);
    let text = String::from_utf8(file_seeds()[0].2.clone()).unwrap();
    let keystore = Keystore::from_json(&text, "seed").unwrap();
    let id = keystore.memberships().next().unwrap().to_string();
    keystore
        .get(&id, KEYSTORE_PASSWORD)
        .unwrap()
        .identity()
        .unwrap();
    for (target, name, bytes) in file_seeds() {
        if target == "identity_file" {
            let text = String::from_utf8(bytes).unwrap();
            assert!(IdentityFile::parse(&text).is_ok(), "{name}");
        }
    }
}
