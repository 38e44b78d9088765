//! rln-node against the reference implementation (zerokit's `rln` crate, v2.0.2, the library
//! behind Waku's nodes), on the same inputs, in one run: `make bench-compare`.
//!
//! Each row alternates one sample of rln-node with one sample of the reference, so that the
//! noise of this shared machine hits both sides alike, and reports medians and their ratio.
//! Peak memory of proving is measured in child processes (one per side), each of which
//! loads its prover and proves a few messages, then reports its `VmHWM`.
//!
//! Built only with `--features compare`: `make test` never compiles the reference.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ark_ff_ref::PrimeField as _;
use rln::prelude as reference;
use rln_core::poseidon::poseidon2;
use rln_core::{epoch_to_fr, fr_to_le_bytes, Fr, Identity, MerkleTree, RlnIdentifier, TREE_DEPTH};
use rln_db::{DbConfig, RlnDb};
use rln_zk::{BatchItem, KeySet, MessageRequest, ProofRequest, ProofVerdict, Verifier};
use zerokit_utils::merkle_tree::ZerokitMerkleTree;

const LIMIT: u64 = 10;
const MESSAGE_ID: u64 = 3;
const SIGNAL: &[u8] = b"compare signal";
const BATCH_LEAVES: usize = 1000;

fn to_ref(value: &Fr) -> reference::Fr {
    reference::Fr::from_le_bytes_mod_order(&fr_to_le_bytes(value))
}

/// `samples` alternating runs of both closures; medians of each.
fn paired(
    samples: usize,
    mut ours: impl FnMut() -> Duration,
    mut theirs: impl FnMut() -> Duration,
) -> (Duration, Duration) {
    // One unmeasured round each: first-touch allocations and caches.
    ours();
    theirs();
    let mut a = Vec::with_capacity(samples);
    let mut b = Vec::with_capacity(samples);
    for _ in 0..samples {
        a.push(ours());
        b.push(theirs());
    }
    (median(a), median(b))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn timed<T>(f: impl FnOnce() -> T) -> Duration {
    let start = Instant::now();
    std::hint::black_box(f());
    start.elapsed()
}

struct Row {
    operation: &'static str,
    ours: Duration,
    theirs: Duration,
    target: &'static str,
    per: &'static str,
}

/// The shared inputs: one member at index 100 of a tree of 101 leaves.
struct Fixture {
    identity: Identity,
    path: rln_core::MerkleProof,
    x: Fr,
    epoch: Fr,
    external_nullifier: Fr,
}

fn fixture() -> Fixture {
    let identity = Identity::from_seed(b"compare");
    let mut tree = MerkleTree::in_memory(TREE_DEPTH).expect("tree");
    for i in 0..100u64 {
        tree.insert(Fr::from(i * 7 + 1)).expect("insert");
    }
    let index = tree
        .insert(identity.rate_commitment(LIMIT).expect("limit"))
        .expect("insert");
    let path = tree.proof(index).expect("path");
    let epoch = epoch_to_fr(42);
    Fixture {
        x: rln_core::hash_to_field(SIGNAL),
        external_nullifier: rln_core::external_nullifier(epoch, RlnIdentifier::waku().to_fr()),
        identity,
        path,
        epoch,
    }
}

fn reference_witness(f: &Fixture) -> reference::RLNWitnessInput {
    let mut secret = to_ref(&f.identity.secret());
    reference::RLNWitnessInput::new(
        reference::IdSecret::from(&mut secret),
        reference::Fr::from(LIMIT),
        reference::Fr::from(MESSAGE_ID),
        f.path.siblings.iter().map(to_ref).collect(),
        f.path.path_index(),
        to_ref(&f.x),
        to_ref(&f.external_nullifier),
    )
    .expect("reference witness")
}

fn reference_partial_witness(f: &Fixture) -> reference::RLNPartialWitnessInput {
    let mut secret = to_ref(&f.identity.secret());
    reference::RLNPartialWitnessInput::new(
        reference::IdSecret::from(&mut secret),
        reference::Fr::from(LIMIT),
        f.path.siblings.iter().map(to_ref).collect(),
        f.path.path_index(),
    )
    .expect("reference partial witness")
}

fn request(f: &Fixture) -> ProofRequest<'_> {
    ProofRequest::for_signal(
        &f.identity,
        LIMIT,
        MESSAGE_ID,
        &f.path,
        SIGNAL,
        f.epoch,
        RlnIdentifier::waku(),
    )
}

fn poseidon_row() -> Row {
    let (a, b) = (Fr::from(1u64), -Fr::from(2u64));
    let (ra, rb) = (to_ref(&a), to_ref(&b));
    assert_eq!(
        to_ref(&poseidon2(a, b)),
        reference::poseidon_hash_pair(ra, rb)
    );
    const CALLS: u32 = 2000;
    let (ours, theirs) = paired(
        31,
        || timed(|| (0..CALLS).fold(a, |acc, _| poseidon2(std::hint::black_box(acc), b))),
        || {
            timed(|| {
                (0..CALLS).fold(ra, |acc, _| {
                    reference::poseidon_hash_pair(std::hint::black_box(acc), rb)
                })
            })
        },
    );
    Row {
        operation: "Poseidon, 2 inputs",
        ours: ours / CALLS,
        theirs: theirs / CALLS,
        target: "≤ 6 µs",
        per: "per hash",
    }
}

fn tree_row() -> Row {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = RlnDb::open(
        dir.path().join("ours"),
        DbConfig {
            sync_writes: false,
            ..DbConfig::default()
        },
    )
    .expect("rocksdb");
    let config = reference::PmtreeConfig::builder()
        .path(dir.path().join("reference"))
        .temporary(false)
        .build()
        .expect("pmtree config");
    let mut pmtree = reference::PmTree::new(
        reference::DEFAULT_TREE_DEPTH,
        reference::Fr::from(0u64),
        config,
    )
    .expect("pmtree");
    let mut next = 0u64;
    let mut leaves = move || {
        let batch: Vec<Fr> = (next..next + BATCH_LEAVES as u64)
            .map(|i| Fr::from(i * 7 + 3))
            .collect();
        next += BATCH_LEAVES as u64;
        batch
    };
    let batches: Vec<Vec<Fr>> = (0..24).map(|_| leaves()).collect();
    let mut ours_batches = batches.clone().into_iter();
    let mut their_batches = batches.clone().into_iter();
    let mut their_next = 0usize;
    let (ours, theirs) = paired(
        22,
        || {
            let batch = ours_batches.next().expect("batch");
            timed(|| db.append_leaves(&batch).expect("append"))
        },
        || {
            let batch: Vec<reference::Fr> = their_batches
                .next()
                .expect("batch")
                .iter()
                .map(to_ref)
                .collect();
            let start = their_next;
            their_next += batch.len();
            timed(|| {
                pmtree
                    .set_range(start, batch.into_iter())
                    .expect("set_range")
            })
        },
    );
    assert_eq!(
        to_ref(&db.root().expect("root")),
        pmtree.root(),
        "same roots"
    );
    Row {
        operation: "tree insert, batched (1000), persisted",
        ours: ours / BATCH_LEAVES as u32,
        theirs: theirs / BATCH_LEAVES as u32,
        target: "≤ 60 µs",
        per: "per leaf",
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(side) = args
        .iter()
        .position(|a| a == "--peak-rss")
        .map(|i| &args[i + 1])
    {
        prove_for_rss(side);
        return;
    }
    let quick = !args.iter().any(|a| a == "--bench");
    let samples = if quick { 3 } else { 21 };

    // Both sides prove and verify on one circuit and key: Waku's, which rln-node compiles in
    // as its `waku` key set and the reference loads from its resources.
    eprintln!("==> loading both provers and verifiers (Waku's circuit and key on both sides)");
    let prover = KeySet::Waku.prover().expect("our prover");
    let verifier =
        Verifier::new(&KeySet::Waku.verifying_key().expect("our vk")).expect("our verifier");
    let zkey = reference::zkey_from_folder();
    let graph = reference::graph_from_folder();
    let f = fixture();
    let witness = reference_witness(&f);

    // Same statement on both sides: the public values agree.
    let mut rng = rand::thread_rng();
    let ours_proof = prover.prove(&request(&f), &mut rng).expect("prove");
    let values = reference::proof_values_from_witness(&witness);
    let their_proof = reference::generate_zk_proof(zkey, &witness, graph).expect("reference prove");
    assert_eq!(to_ref(&ours_proof.merkle_root), *values.root(), "same root");
    assert!(reference::verify_zk_proof(&zkey.0.vk, &their_proof, &values).expect("verify"));
    assert_eq!(verifier.verify(&ours_proof), ProofVerdict::Valid);
    // One key on both sides: α and the public-input points agree (decimal coordinates,
    // which both arkworks versions print alike).
    let theirs_points: Vec<String> = std::iter::once(&zkey.0.vk.alpha_g1)
        .chain(&zkey.0.vk.gamma_abc_g1)
        .map(|p| format!("{} {}", p.x, p.y))
        .collect();
    let ours_vk = prover.verifying_key();
    let ours_points: Vec<String> = std::iter::once(&ours_vk.alpha_g1)
        .chain(&ours_vk.gamma_abc_g1)
        .map(|p| format!("{} {}", p.x, p.y))
        .collect();
    assert_eq!(
        ours_points, theirs_points,
        "one verifying key on both sides"
    );

    let mut rows = Vec::new();
    eprintln!("==> Poseidon");
    rows.push(poseidon_row());
    eprintln!("==> tree inserts");
    rows.push(tree_row());

    eprintln!("==> proof generation");
    let (ours, theirs) = paired(
        samples,
        || {
            timed(|| {
                prover
                    .prove(&request(&f), &mut rand::thread_rng())
                    .expect("prove")
            })
        },
        || timed(|| reference::generate_zk_proof(zkey, &witness, graph).expect("prove")),
    );
    rows.push(Row {
        operation: "proof generation, depth 20",
        ours,
        theirs,
        target: "≤ 45 ms, ≥ 3.5×",
        per: "per proof",
    });

    eprintln!("==> proof from a precomputed membership part");
    let prepared = prover
        .prepare(&f.identity, LIMIT, &f.path)
        .expect("prepare");
    let partial = reference::generate_partial_zk_proof(zkey, &reference_partial_witness(&f), graph)
        .expect("reference partial proof");
    let message = MessageRequest::for_signal(MESSAGE_ID, SIGNAL, f.epoch, RlnIdentifier::waku());
    let (ours, theirs) = paired(
        samples,
        || {
            timed(|| {
                prover
                    .prove_message(&prepared, &message, &mut rand::thread_rng())
                    .expect("prove")
            })
        },
        || timed(|| reference::finish_zk_proof(zkey, &partial, &witness, graph).expect("finish")),
    );
    rows.push(Row {
        operation: "publish latency, membership part precomputed",
        ours,
        theirs,
        target: "≤ 16 ms",
        per: "per proof",
    });
    let (ours_prepare, theirs_prepare) = paired(
        samples.min(5),
        || {
            timed(|| {
                prover
                    .prepare(&f.identity, LIMIT, &f.path)
                    .expect("prepare")
            })
        },
        || {
            timed(|| {
                reference::generate_partial_zk_proof(zkey, &reference_partial_witness(&f), graph)
                    .expect("partial")
            })
        },
    );
    rows.push(Row {
        operation: "  (precomputing the membership part)",
        ours: ours_prepare,
        theirs: theirs_prepare,
        target: "",
        per: "once per path",
    });

    eprintln!("==> verification");
    let pvk = ark_groth16_ref::prepare_verifying_key(&zkey.0.vk);
    let reference_inputs = [
        to_ref(&ours_proof.share_y),
        *values.root(),
        to_ref(&ours_proof.nullifier),
        to_ref(&ours_proof.share_x),
        to_ref(&f.external_nullifier),
    ];
    assert_eq!(reference_inputs[1], *values.root());
    let verify_reference_prepared = || {
        ark_groth16_ref::Groth16::<reference::Curve>::verify_proof(
            &pvk,
            &their_proof,
            &reference_inputs,
        )
        .expect("verify")
    };
    assert!(
        verify_reference_prepared(),
        "same public inputs on both sides"
    );
    const VERIFIES: u32 = 20;
    let (ours, theirs) = paired(
        samples,
        || timed(|| (0..VERIFIES).all(|_| verifier.verify(&ours_proof) == ProofVerdict::Valid)),
        || timed(|| (0..VERIFIES).all(|_| verify_reference_prepared())),
    );
    let single_ours = ours / VERIFIES;
    rows.push(Row {
        operation: "single verification (prepared key)",
        ours: single_ours,
        theirs: theirs / VERIFIES,
        target: "≤ 1.2 ms",
        per: "per proof",
    });
    let (_, theirs_unprepared) = paired(
        samples,
        || Duration::ZERO,
        || {
            timed(|| {
                (0..VERIFIES).all(|_| {
                    reference::verify_zk_proof(&zkey.0.vk, &their_proof, &values).expect("verify")
                })
            })
        },
    );
    rows.push(Row {
        operation: "  (reference's verify_zk_proof, key prepared per call)",
        ours: single_ours,
        theirs: theirs_unprepared / VERIFIES,
        target: "",
        per: "per proof",
    });

    let items: Vec<BatchItem> = (0..64)
        .map(|_| BatchItem {
            proof: ark_groth16::Groth16::<ark_bn254::Bn254>::rerandomize_proof(
                prover.verifying_key(),
                &ours_proof.proof,
                &mut rng,
            ),
            public_inputs: ours_proof.public_inputs(),
        })
        .collect();
    let (ours, theirs) = paired(
        samples,
        || {
            timed(|| {
                let verdicts = verifier.verify_batch(&items, &mut rand::thread_rng());
                assert!(verdicts.iter().all(|v| *v == ProofVerdict::Valid));
            })
        },
        || timed(|| (0..64).all(|_| verify_reference_prepared())),
    );
    rows.push(Row {
        operation: "batch verification of 64 (reference: 64 single)",
        ours: ours / 64,
        theirs: theirs / 64,
        target: "≤ 0.4 ms",
        per: "per proof",
    });

    eprintln!("==> peak memory of proving (child processes)");
    let rss_ours = peak_rss_of("ours");
    let rss_theirs = peak_rss_of("reference");

    println!();
    println!(
        "rln-node vs zerokit rln v2.0.2, medians of {samples} alternating samples{}",
        if quick {
            " (quick run: pass --bench for the real one)"
        } else {
            ""
        }
    );
    println!("| operation | rln-node | reference | reference / rln-node | target (rln-node) |");
    println!("|---|---|---|---|---|");
    for row in &rows {
        println!(
            "| {} | {} | {} | {:.2}× | {} |",
            row.operation,
            show(row.ours, row.per),
            show(row.theirs, row.per),
            row.theirs.as_secs_f64() / row.ours.as_secs_f64().max(1e-12),
            row.target
        );
    }
    println!(
        "| peak RSS: load the prover and prove 5 messages | {} | {} | {:.2}× | |",
        mib(rss_ours),
        mib(rss_theirs),
        rss_theirs as f64 / rss_ours.max(1) as f64
    );
}

fn show(d: Duration, per: &str) -> String {
    let us = d.as_secs_f64() * 1e6;
    let value = if us < 1000.0 {
        format!("{us:.2} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    };
    format!("{value} {per}")
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

/// Runs this binary again as `--peak-rss <side>` and reads the `VmHWM` it prints.
fn peak_rss_of(side: &str) -> u64 {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(&exe)
        .args(["--peak-rss", side])
        .output()
        .expect("run the child");
    assert!(
        out.status.success(),
        "{side}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("VmHWM in kB")
}

fn prove_for_rss(side: &str) {
    let f = fixture();
    match side {
        "ours" => {
            let prover = KeySet::Waku.prover().expect("prover");
            for _ in 0..5 {
                prover
                    .prove(&request(&f), &mut rand::thread_rng())
                    .expect("prove");
            }
        }
        _ => {
            let zkey = reference::zkey_from_folder();
            let graph = reference::graph_from_folder();
            let witness = reference_witness(&f);
            for _ in 0..5 {
                reference::generate_zk_proof(zkey, &witness, graph).expect("prove");
            }
        }
    }
    let status = std::fs::read_to_string(Path::new("/proc/self/status")).expect("proc status");
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM");
    println!("{hwm}");
}
