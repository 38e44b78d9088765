//! Every typed error of rln-zk, reached from real keys and inputs.

use rln_core::{epoch_to_fr, Fr, Identity, MerkleProof, MerkleTree, RlnIdentifier, TREE_DEPTH};
use rln_zk::circuit::solver::WitnessSolver;
use rln_zk::keys::verifying_key_from_arkworks;
use rln_zk::{ProofRequest, ProofVerdict, Prover, Verifier, ZkError, ZkeyData};

use crate::common::prover;

#[test]
fn dev_prover_and_exported_key_agree() {
    let exported = Verifier::dev().unwrap();
    assert_eq!(exported.verifying_key(), prover().verifying_key());
}

#[test]
fn a_key_for_another_circuit_is_a_mismatch() {
    let mut zkey = ZkeyData::dev().unwrap();
    zkey.num_wires += 1;
    let err = Prover::new(WitnessSolver::rln().unwrap(), zkey).unwrap_err();
    assert!(matches!(err, ZkError::KeyMismatch(_)), "{err}");
}

#[test]
fn wrong_public_input_counts_are_refused() {
    let mut vk = prover().verifying_key().clone();
    vk.gamma_abc_g1.pop();
    let err = Verifier::new(&vk).unwrap_err();
    assert!(
        matches!(
            err,
            ZkError::PublicInputCount {
                expected: 5,
                got: 4
            }
        ),
        "{err}"
    );

    let verifier = Verifier::dev().unwrap();
    let proof = sample_proof();
    let err = verifier
        .verify_public_inputs(&proof.proof, &proof.public_inputs()[..4])
        .unwrap_err();
    assert!(
        matches!(
            err,
            ZkError::PublicInputCount {
                expected: 5,
                got: 4
            }
        ),
        "{err}"
    );
    assert_eq!(
        verifier
            .verify_public_inputs(&proof.proof, &proof.public_inputs())
            .unwrap(),
        ProofVerdict::Valid
    );
}

#[test]
fn garbage_keys_are_errors_not_panics() {
    assert!(matches!(
        ZkeyData::from_bytes(b"definitely not a zkey"),
        Err(ZkError::Zkey(_))
    ));
    let truncated = &rln_zk::keys::DEV_ZKEY[..4096];
    assert!(matches!(
        ZkeyData::from_bytes(truncated),
        Err(ZkError::Zkey(_))
    ));
    assert!(matches!(
        verifying_key_from_arkworks(&[7u8; 424]),
        Err(ZkError::VerifyingKey(_))
    ));
    let missing = std::path::Path::new("/nonexistent/rln.zkey");
    assert!(matches!(
        ZkeyData::from_path(missing),
        Err(ZkError::Io { .. })
    ));
}

#[test]
fn a_point_off_the_curve_is_an_error_not_a_panic() {
    // The first point of section 5 (the A query) sits right after its 12-byte section header;
    // find it by walking the section table.
    let mut key = rln_zk::keys::DEV_ZKEY.to_vec();
    let mut at = 12;
    loop {
        let id = u32::from_le_bytes(key[at..at + 4].try_into().unwrap());
        let size = u64::from_le_bytes(key[at + 4..at + 12].try_into().unwrap()) as usize;
        if id == 5 {
            at += 12;
            break;
        }
        at += 12 + size;
    }
    // y := y + 1 (in Montgomery form this is still a field element, but off the curve).
    key[at + 32] ^= 1;
    assert!(
        rln_zk::keys::zkey_format::check(&key).is_ok(),
        "the layout is intact"
    );
    let err = ZkeyData::from_bytes(&key).unwrap_err();
    assert!(matches!(err, ZkError::Zkey(_)), "{err}");
}

#[test]
fn a_path_of_the_wrong_depth_is_refused() {
    let identity = Identity::from_seed(b"short path");
    let path = MerkleProof {
        leaf_index: 0,
        siblings: vec![Fr::from(0u64); 10],
    };
    let request = ProofRequest::for_signal(
        &identity,
        1,
        0,
        &path,
        b"m",
        epoch_to_fr(1),
        RlnIdentifier::waku(),
    );
    let err = prover()
        .prove(&request, &mut rand::thread_rng())
        .unwrap_err();
    assert!(
        matches!(
            err,
            ZkError::PathDepth {
                expected: 20,
                got: 10
            }
        ),
        "{err}"
    );
}

#[test]
fn proofs_are_randomised_but_deterministic_for_fixed_randomness() {
    let identity = Identity::from_seed(b"randomness");
    let mut tree = MerkleTree::in_memory(TREE_DEPTH).unwrap();
    let index = tree.insert(identity.rate_commitment(2).unwrap()).unwrap();
    let path = tree.proof(index).unwrap();
    let request = ProofRequest::for_signal(
        &identity,
        2,
        1,
        &path,
        b"m",
        epoch_to_fr(9),
        RlnIdentifier::waku(),
    );
    let a = prover()
        .prove_with_randomness(&request, Fr::from(11u64), Fr::from(13u64))
        .unwrap();
    let b = prover()
        .prove_with_randomness(&request, Fr::from(11u64), Fr::from(13u64))
        .unwrap();
    let c = prover().prove(&request, &mut rand::thread_rng()).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.proof, c.proof);
    assert_eq!(a.public_inputs(), c.public_inputs());
    assert_eq!(a.merkle_root, tree.root().unwrap());
}

fn sample_proof() -> rln_zk::RateLimitProof {
    let identity = Identity::from_seed(b"sample");
    let mut tree = MerkleTree::in_memory(TREE_DEPTH).unwrap();
    let index = tree.insert(identity.rate_commitment(1).unwrap()).unwrap();
    let path = tree.proof(index).unwrap();
    let request = ProofRequest::for_signal(
        &identity,
        1,
        0,
        &path,
        b"m",
        epoch_to_fr(5),
        RlnIdentifier::waku(),
    );
    prover().prove(&request, &mut rand::thread_rng()).unwrap()
}
