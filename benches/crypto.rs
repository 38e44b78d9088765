//! Criterion benchmarks of the cryptographic core: Poseidon, the fixed-base MSMs and the
//! quotient's FFTs (each fast path of rln-bn254 beside its portable path, `<op>/fast` and
//! `<op>/portable`, in the same run), the Merkle tree, witness generation (native, and circom's
//! WebAssembly as the baseline), proving (full, from a prepared membership, and the
//! preparation) and verification. The side-by-side comparison with the reference
//! implementation is `benches/compare.rs` (`make bench-compare`).
//!
//! The `fast` rows take whatever path detection picked (see the backend line printed first):
//! under `RLN_FORCE_PORTABLE=1` both rows of a pair run the portable path.

use ark_bn254::{G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ec::CurveGroup;
use ark_ff::UniformRand;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rand::SeedableRng;
use rln_bn254::fft::CosetFft;
use rln_bn254::msm::{best_window, G1Msm, G2Msm};
use rln_bn254::poseidon::portable;
use rln_core::poseidon::{poseidon1, poseidon2, poseidon3};
use rln_core::{epoch_to_fr, Fr, Identity, MerkleTree, RlnIdentifier, TREE_DEPTH};
use rln_zk::circuit::{CircuitInputs, WitnessGenerator};
use rln_zk::keys::RLN_WASM;
use rln_zk::{BatchItem, MessageRequest, ProofRequest, Prover, Verifier};

fn poseidon(c: &mut Criterion) {
    println!("backend: {}", rln_bn254::backend_report());
    let (a, b, d) = (Fr::from(1u64), -Fr::from(2u64), Fr::from(3u64));
    c.bench_function("poseidon/1/fast", |bench| {
        bench.iter(|| poseidon1(std::hint::black_box(a)))
    });
    c.bench_function("poseidon/1/portable", |bench| {
        bench.iter(|| portable::poseidon1(std::hint::black_box(a)))
    });
    c.bench_function("poseidon/2/fast", |bench| {
        bench.iter(|| poseidon2(std::hint::black_box(a), b))
    });
    c.bench_function("poseidon/2/portable", |bench| {
        bench.iter(|| portable::poseidon2(std::hint::black_box(a), b))
    });
    c.bench_function("poseidon/3/fast", |bench| {
        bench.iter(|| poseidon3(std::hint::black_box(a), b, d))
    });
    c.bench_function("poseidon/3/portable", |bench| {
        bench.iter(|| portable::poseidon3(std::hint::black_box(a), b, d))
    });
    // Baseline in the same run: light-poseidon's textbook rounds (what rln-core used before).
    use light_poseidon::{Poseidon, PoseidonHasher};
    let mut textbook = Poseidon::<Fr>::new_circom(2).unwrap();
    c.bench_function("poseidon_textbook/2", |bench| {
        bench.iter(|| textbook.hash(&[std::hint::black_box(a), b]).unwrap())
    });
}

/// The prover's largest fixed-base MSMs: the `H` query (8,192 points of G1) and a G2 query of
/// the size of the circuit's wires, on random bases and scalars.
fn msm(c: &mut Criterion) {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let g1: Vec<G1Affine> = G1Projective::normalize_batch(
        &(0..8192)
            .map(|_| G1Projective::rand(&mut rng))
            .collect::<Vec<_>>(),
    );
    let g2: Vec<G2Affine> = G2Projective::normalize_batch(
        &(0..4096)
            .map(|_| G2Projective::rand(&mut rng))
            .collect::<Vec<_>>(),
    );
    let scalars: Vec<Fr> = (0..8192).map(|_| Fr::rand(&mut rng)).collect();
    let mut group = c.benchmark_group("msm");
    group.sample_size(20);
    let (w1, w2) = (best_window(g1.len()), best_window(g2.len()));
    let (fast, portable) = (G1Msm::new(&g1, w1), G1Msm::portable(&g1, w1));
    group.bench_function("g1 8192/fast", |bench| bench.iter(|| fast.msm(&scalars)));
    group.bench_function("g1 8192/portable", |bench| {
        bench.iter(|| portable.msm(&scalars))
    });
    let (fast, portable) = (G2Msm::new(&g2, w2), G2Msm::portable(&g2, w2));
    group.bench_function("g2 4096/fast", |bench| bench.iter(|| fast.msm(&scalars)));
    group.bench_function("g2 4096/portable", |bench| {
        bench.iter(|| portable.msm(&scalars))
    });
    // The size of a per-message query of the Waku circuit (342 wires change per message).
    let small = 342;
    let w = best_window(small);
    let g1_small = G1Msm::new(&g1[..small], w);
    group.bench_function("g1 342/fast", |bench| {
        bench.iter(|| g1_small.msm(&scalars[..small]))
    });
    let g2_small = G2Msm::new(&g2[..small], w);
    group.bench_function("g2 342/fast", |bench| {
        bench.iter(|| g2_small.msm(&scalars[..small]))
    });
    group.finish();
}

/// The quotient's three FFT chains to the odd coset and the product there, at the dev
/// circuit's domain size.
fn fft(c: &mut Criterion) {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(6);
    let n = 8192;
    let vectors: Vec<Vec<Fr>> = (0..3)
        .map(|_| (0..n).map(|_| Fr::rand(&mut rng)).collect())
        .collect();
    let mut group = c.benchmark_group("fft");
    group.sample_size(30);
    for (name, fft) in [
        ("coset product 8192/fast", CosetFft::new(n).unwrap()),
        (
            "coset product 8192/portable",
            CosetFft::portable(n).unwrap(),
        ),
    ] {
        group.bench_function(name, |bench| {
            bench.iter_batched(
                || vectors.clone(),
                |v| {
                    let [a, b, c]: [Vec<Fr>; 3] = v.try_into().unwrap();
                    fft.product_on_coset(a, b, c)
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn merkle(c: &mut Criterion) {
    let mut tree = MerkleTree::in_memory(TREE_DEPTH).unwrap();
    for i in 0..1000u64 {
        tree.insert(Fr::from(i + 1)).unwrap();
    }
    c.bench_function("merkle/insert depth 20 (in memory)", |bench| {
        let mut leaf = 1u64;
        bench.iter(|| {
            leaf += 1;
            tree.insert(Fr::from(leaf)).unwrap()
        })
    });
    c.bench_function("merkle/path depth 20", |bench| {
        bench.iter(|| tree.proof(std::hint::black_box(500)).unwrap())
    });
    c.bench_function(
        "merkle/batch of 1000 leaves depth 20 (in memory)",
        |bench| {
            bench.iter_batched(
                || MerkleTree::in_memory(TREE_DEPTH).unwrap(),
                |mut fresh| {
                    let leaves: Vec<Fr> = (1..=1000u64).map(Fr::from).collect();
                    fresh.insert_many(&leaves).unwrap();
                    fresh
                },
                BatchSize::LargeInput,
            )
        },
    );
}

fn zk(c: &mut Criterion) {
    let prover = Prover::dev().unwrap();
    let verifier = Verifier::dev().unwrap();
    let witness = WitnessGenerator::from_wasm(RLN_WASM).unwrap();
    let identity = Identity::from_seed(b"bench");
    let mut tree = MerkleTree::in_memory(TREE_DEPTH).unwrap();
    for i in 0..100u64 {
        tree.insert(Fr::from(i + 1)).unwrap();
    }
    let index = tree.insert(identity.rate_commitment(10).unwrap()).unwrap();
    let path = tree.proof(index).unwrap();
    let request = ProofRequest::for_signal(
        &identity,
        10,
        3,
        &path,
        b"bench signal",
        epoch_to_fr(42),
        RlnIdentifier::waku(),
    );
    let inputs = CircuitInputs {
        identity_secret: identity.secret(),
        user_message_limit: 10,
        message_id: 3,
        merkle_proof: path.clone(),
        x: request.x,
        external_nullifier: rln_core::external_nullifier(
            request.epoch,
            request.rln_identifier.to_fr(),
        ),
    };
    let mut group = c.benchmark_group("zk");
    group.sample_size(20);
    // Baseline in the same run: circom's WebAssembly calculator.
    group.bench_function("witness generation (wasm)", |bench| {
        bench.iter(|| witness.witness(&inputs).unwrap())
    });
    group.bench_function("witness generation (native)", |bench| {
        bench.iter(|| prover.solver().solve(&inputs).unwrap())
    });
    let mut rng = rand::thread_rng();
    group.bench_function("proof generation", |bench| {
        bench.iter(|| prover.prove(&request, &mut rng).unwrap())
    });
    group.bench_function("membership part (prepare)", |bench| {
        bench.iter(|| prover.prepare(&identity, 10, &path).unwrap())
    });
    let prepared = prover.prepare(&identity, 10, &path).unwrap();
    let message =
        MessageRequest::for_signal(3, b"bench signal", request.epoch, RlnIdentifier::waku());
    group.bench_function("proof from a prepared membership", |bench| {
        bench.iter(|| prover.prove_message(&prepared, &message, &mut rng).unwrap())
    });
    // The same on Waku's circuit and key (the default key set): its witness comes from the
    // witness graph.
    let waku = rln_zk::KeySet::Waku.prover().unwrap();
    group.bench_function("waku key: witness generation (graph)", |bench| {
        bench.iter(|| waku.solver().solve(&inputs).unwrap())
    });
    group.bench_function("waku key: proof generation", |bench| {
        bench.iter(|| waku.prove(&request, &mut rng).unwrap())
    });
    let waku_prepared = waku.prepare(&identity, 10, &path).unwrap();
    group.bench_function("waku key: proof from a prepared membership", |bench| {
        bench.iter(|| {
            waku.prove_message(&waku_prepared, &message, &mut rng)
                .unwrap()
        })
    });
    let proof = prover.prove(&request, &mut rng).unwrap();
    group.bench_function("verification (prepared key)", |bench| {
        bench.iter(|| verifier.verify(&proof))
    });
    // Baseline in the same run: arkworks' verifier with the same prepared key, which computes
    // the public-input term by double-and-add.
    let arkworks_key = ark_groth16::prepare_verifying_key(verifier.verifying_key());
    let public_inputs = proof.public_inputs();
    group.bench_function("verification (arkworks verify_proof)", |bench| {
        bench.iter(|| {
            ark_groth16::Groth16::<ark_bn254::Bn254>::verify_proof(
                &arkworks_key,
                &proof.proof,
                &public_inputs,
            )
            .unwrap()
        })
    });
    // 64 distinct valid proofs of one statement (re-randomised), verified together.
    let items: Vec<BatchItem> = (0..64)
        .map(|_| BatchItem {
            proof: ark_groth16::Groth16::<ark_bn254::Bn254>::rerandomize_proof(
                prover.verifying_key(),
                &proof.proof,
                &mut rng,
            ),
            public_inputs: proof.public_inputs(),
        })
        .collect();
    group.bench_function("batch verification of 64 proofs", |bench| {
        bench.iter(|| verifier.verify_batch(&items, &mut rng))
    });
    group.finish();
    parts(c, &proof.proof);
}

/// What the relay pays per message before verification (reading a proof's compressed points:
/// square roots, on-curve and subgroup checks), and a proof's own work in a batch check (its
/// weight times `A`, the line coefficients of `B`, alone and 64 at once). Each of rln-bn254's steps runs beside
/// arkworks' in the same run.
fn parts(c: &mut Criterion, proof: &rln_zk::Groth16Proof) {
    use ark_ec::pairing::Pairing;
    use ark_serialize::{CanonicalDeserialize, Compress, Validate};
    use rln_bn254::weights::{mul_by_weights, Weight};
    let bytes = rln_zk::proof::proof_to_bytes(proof);
    let mut group = c.benchmark_group("parts");
    group.bench_function("proof (128 bytes, checked)", |bench| {
        bench.iter(|| rln_zk::proof::proof_from_bytes(&bytes).unwrap())
    });
    group.bench_function("proof (arkworks, checked)", |bench| {
        bench.iter(|| rln_zk::Groth16Proof::deserialize_compressed(&bytes[..]).unwrap())
    });
    group.bench_function("g2 point, unchecked", |bench| {
        bench.iter(|| {
            G2Affine::deserialize_with_mode(&bytes[32..96], Compress::Yes, Validate::No).unwrap()
        })
    });
    let b = proof.b;
    group.bench_function("g2 subgroup check/fast", |bench| {
        bench.iter(|| rln_bn254::subgroup::g2_in_subgroup(&b))
    });
    group.bench_function("g2 subgroup check/arkworks", |bench| {
        bench.iter(|| b.is_in_correct_subgroup_assuming_on_curve())
    });
    group.bench_function("g2 line coefficients (G2Prepared)", |bench| {
        bench.iter(|| <ark_bn254::Bn254 as Pairing>::G2Prepared::from(b))
    });
    let bs = vec![b; 64];
    group.bench_function("64 g2 line coefficients/fast", |bench| {
        bench.iter(|| rln_bn254::prepare::g2_prepared_many(&bs))
    });
    group.bench_function("64 g2 line coefficients/arkworks", |bench| {
        bench.iter(|| {
            use rayon::prelude::*;
            bs.par_iter()
                .map(|p| <ark_bn254::Bn254 as Pairing>::G2Prepared::from(*p))
                .collect::<Vec<_>>()
        })
    });
    let points = vec![proof.a; 64];
    let mut rng = rand::thread_rng();
    let weights: Vec<Weight> = (0..64)
        .map(|_| Weight::new(rand::Rng::gen(&mut rng), rand::Rng::gen(&mut rng)))
        .collect();
    group.bench_function("64 weights times A/fast", |bench| {
        bench.iter(|| mul_by_weights(&points, &weights))
    });
    let scalars: Vec<Fr> = weights.iter().map(Weight::scalar).collect();
    group.bench_function("64 weights times A/arkworks", |bench| {
        bench.iter(|| {
            use rayon::prelude::*;
            points
                .par_iter()
                .zip(&scalars)
                .map(|(p, r)| *p * r)
                .collect::<Vec<_>>()
        })
    });
    // A batch of 64's Miller loops: 64 proofs and the key's three pairs.
    let g1: Vec<G1Affine> = vec![proof.a; 67];
    let g2: Vec<<ark_bn254::Bn254 as Pairing>::G2Prepared> = vec![b.into(); 67];
    group.bench_function("miller loops of 67 pairs/fast", |bench| {
        bench.iter(|| rln_bn254::pairing::multi_miller_loop(g1.iter().zip(&g2)).unwrap())
    });
    group.bench_function("miller loops of 67 pairs/arkworks", |bench| {
        bench.iter(|| ark_bn254::Bn254::multi_miller_loop(g1.clone(), g2.clone()))
    });
    group.finish();
}

criterion_group!(benches, poseidon, msm, fft, merkle, zk);
criterion_main!(benches);
