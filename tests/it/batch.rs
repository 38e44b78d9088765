//! Batch verification gives every proof the verdict single verification gives it.

use std::sync::OnceLock;

use proptest::prelude::*;
use rand::SeedableRng;
use rln_core::{epoch_to_fr, Fr, Identity, MerkleTree, RlnIdentifier, TREE_DEPTH};
use rln_zk::{BatchItem, ProofRequest, ProofVerdict, Verifier};

use crate::common::prover;

/// 64 distinct valid proofs: 8 messages, each proof re-randomised 8 times.
fn valid_items() -> &'static Vec<BatchItem> {
    static ITEMS: OnceLock<Vec<BatchItem>> = OnceLock::new();
    ITEMS.get_or_init(|| {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(64);
        let members: Vec<Identity> = (0..8u64)
            .map(|i| Identity::from_seed(&i.to_be_bytes()))
            .collect();
        let mut tree = MerkleTree::in_memory(TREE_DEPTH).unwrap();
        for m in &members {
            tree.insert(m.rate_commitment(4).unwrap()).unwrap();
        }
        let vk = prover().verifying_key().clone();
        let mut items = Vec::new();
        for (i, member) in members.iter().enumerate() {
            let path = tree.proof(i as u64).unwrap();
            let request = ProofRequest::for_signal(
                member,
                4,
                (i % 4) as u64,
                &path,
                &[i as u8; 9],
                epoch_to_fr(77),
                RlnIdentifier::waku(),
            );
            let proof = prover().prove(&request, &mut rng).unwrap();
            for _ in 0..8 {
                let fresh = ark_groth16::Groth16::<ark_bn254::Bn254>::rerandomize_proof(
                    &vk,
                    &proof.proof,
                    &mut rng,
                );
                items.push(BatchItem {
                    proof: fresh,
                    public_inputs: proof.public_inputs(),
                });
            }
        }
        items
    })
}

#[test]
fn one_invalid_among_63_is_found() {
    let verifier = Verifier::dev().unwrap();
    let mut items = valid_items().clone();
    assert_eq!(items.len(), 64);
    let mut rng = rand::thread_rng();
    assert!(verifier
        .verify_batch(&items, &mut rng)
        .iter()
        .all(|v| *v == ProofVerdict::Valid));
    items[41].public_inputs[3] += Fr::from(1u64);
    let (verdicts, checks) = verifier.verify_batch_counted(&items, &mut rng);
    let invalid: Vec<usize> = (0..64)
        .filter(|i| verdicts[*i] == ProofVerdict::Invalid)
        .collect();
    assert_eq!(invalid, vec![41]);
    // Bisection: the whole, then about two checks per level down to the bad one (log₂ 64 = 6
    // levels), not 64 single verifications.
    assert!(
        checks <= 2 * 6 + 2,
        "{checks} pairing checks for one bad proof in 64"
    );
    // Three bad proofs cost a few bisections, still far fewer than 64 checks.
    items[3].public_inputs[0] += Fr::from(1u64);
    items[60].proof.c = items[59].proof.c;
    let (verdicts, checks) = verifier.verify_batch_counted(&items, &mut rng);
    let invalid: Vec<usize> = (0..64)
        .filter(|i| verdicts[*i] == ProofVerdict::Invalid)
        .collect();
    assert_eq!(invalid, vec![3, 41, 60]);
    assert!(
        checks <= 3 * (2 * 6 + 2),
        "{checks} pairing checks for three bad proofs"
    );
}

#[test]
fn reference_proofs_verify_as_a_batch() {
    let verifier =
        Verifier::from_path(&crate::common::interop_dir().join("verification_key.json")).unwrap();
    let v = crate::common::vectors();
    let mut items = Vec::new();
    for case in v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .chain([&v["slashing"]["proof_a"], &v["slashing"]["proof_b"]])
    {
        let proof =
            rln_zk::proof::proof_from_bytes(&crate::common::bytes(&case["proof_compressed_hex"]))
                .unwrap();
        let public_inputs = [
            crate::common::fr(&case["y"]),
            crate::common::fr(&case["root"]),
            crate::common::fr(&case["nullifier"]),
            crate::common::fr(&case["x"]),
            crate::common::fr(&case["external_nullifier"]),
        ];
        items.push(BatchItem {
            proof,
            public_inputs,
        });
    }
    assert_eq!(items.len(), 7);
    let mut rng = rand::thread_rng();
    assert!(verifier.combined_check(&items, &mut rng));
    // Swapping two proofs' public inputs breaks both, and only those two.
    items.swap(2, 5);
    let (p2, p5) = (items[2].proof.clone(), items[5].proof.clone());
    items[2].proof = p5;
    items[5].proof = p2;
    items.swap(2, 5);
    let verdicts = verifier.verify_batch(&items, &mut rng);
    let invalid: Vec<usize> = (0..7)
        .filter(|i| verdicts[*i] == ProofVerdict::Invalid)
        .collect();
    assert_eq!(invalid, vec![2, 5]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn batch_verdicts_equal_single_verdicts(
        size in 1usize..=64,
        bad in proptest::collection::vec((0usize..64, 0u8..3), 0..4),
    ) {
        let verifier = Verifier::dev().unwrap();
        let mut items: Vec<BatchItem> = valid_items()[..size].to_vec();
        for &(at, how) in &bad {
            let at = at % size;
            match how {
                0 => items[at].public_inputs[0] += Fr::from(1u64),
                1 => items[at].public_inputs[4] = Fr::from(9u64),
                _ => items[at].proof.c = items[(at + 1) % size].proof.a,
            }
        }
        let single: Vec<ProofVerdict> = items
            .iter()
            .map(|i| verifier.verify_public_inputs(&i.proof, &i.public_inputs).unwrap())
            .collect();
        let batch = verifier.verify_batch(&items, &mut rand::thread_rng());
        prop_assert_eq!(&batch, &single);
        prop_assert_eq!(batch.iter().all(|v| *v == ProofVerdict::Valid), bad.is_empty());
    }
}
