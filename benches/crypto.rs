//! Criterion benchmarks of the cryptographic core: Poseidon, the Merkle tree, witness
//! generation (native, and circom's WebAssembly as the baseline), proving (full, from a
//! prepared membership, and the preparation) and verification. The side-by-side comparison
//! with the reference implementation is `benches/compare.rs` (`make bench-compare`).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rln_core::poseidon::{poseidon1, poseidon2, poseidon3};
use rln_core::{epoch_to_fr, Fr, Identity, MerkleTree, RlnIdentifier, TREE_DEPTH};
use rln_zk::circuit::{CircuitInputs, WitnessGenerator};
use rln_zk::keys::RLN_WASM;
use rln_zk::{BatchItem, MessageRequest, ProofRequest, Prover, Verifier};

fn poseidon(c: &mut Criterion) {
    let (a, b, d) = (Fr::from(1u64), -Fr::from(2u64), Fr::from(3u64));
    c.bench_function("poseidon/1", |bench| {
        bench.iter(|| poseidon1(std::hint::black_box(a)))
    });
    c.bench_function("poseidon/2", |bench| {
        bench.iter(|| poseidon2(std::hint::black_box(a), b))
    });
    c.bench_function("poseidon/3", |bench| {
        bench.iter(|| poseidon3(std::hint::black_box(a), b, d))
    });
    // Baseline in the same run: light-poseidon's textbook rounds (what rln-core used before).
    use light_poseidon::{Poseidon, PoseidonHasher};
    let mut textbook = Poseidon::<Fr>::new_circom(2).unwrap();
    c.bench_function("poseidon_textbook/2", |bench| {
        bench.iter(|| textbook.hash(&[std::hint::black_box(a), b]).unwrap())
    });
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
}

criterion_group!(benches, poseidon, merkle, zk);
criterion_main!(benches);
