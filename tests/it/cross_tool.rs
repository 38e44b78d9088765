//! rln-node and snarkjs accept each other's proofs made with the dev zkey.

use std::process::Command;

use rln_core::{epoch_to_fr, Identity, MerkleTree, RlnIdentifier, TREE_DEPTH};
use rln_zk::snarkjs::{public_signals_from_json, public_signals_to_json, SnarkjsProof};
use rln_zk::{ProofRequest, ProofVerdict, Verifier};

use crate::common::{node_tool, prover, repo, run};

/// A member at index 5 of a tree holding a few others, sending in epoch 1000.
fn fixture() -> (Identity, rln_core::MerkleProof) {
    let identity = Identity::from_seed(b"cross-tool member");
    let mut tree = MerkleTree::in_memory(TREE_DEPTH).unwrap();
    for i in 0..5u64 {
        let other = Identity::from_seed(&i.to_le_bytes());
        tree.insert(other.rate_commitment(3).unwrap()).unwrap();
    }
    let index = tree.insert(identity.rate_commitment(4).unwrap()).unwrap();
    (identity, tree.proof(index).unwrap())
}

#[test]
fn snarkjs_verifies_our_proof_and_rejects_a_tampered_one() {
    let (identity, path) = fixture();
    let request = ProofRequest::for_signal(
        &identity,
        4,
        2,
        &path,
        b"hello from rln-node",
        epoch_to_fr(1000),
        RlnIdentifier::waku(),
    );
    let proof = prover().prove(&request, &mut rand::thread_rng()).unwrap();
    let dir = tempdir("snarkjs-verify");
    let proof_json = dir.join("proof.json");
    let public_json = dir.join("public.json");
    std::fs::write(
        &proof_json,
        serde_json::to_vec(&SnarkjsProof::from_proof(&proof.proof)).unwrap(),
    )
    .unwrap();
    std::fs::write(
        &public_json,
        serde_json::to_vec(&public_signals_to_json(&proof.public_inputs())).unwrap(),
    )
    .unwrap();
    let vk = repo().join("zkeys/verification_key.json");

    let (ok, out) = run(Command::new(node_tool("snarkjs"))
        .args(["groth16", "verify"])
        .args([&vk, &public_json, &proof_json]));
    assert!(
        ok && out.contains("OK"),
        "snarkjs rejected our proof: {out}"
    );

    let mut tampered = proof.public_inputs();
    tampered[3] += rln_core::Fr::from(1u64);
    std::fs::write(
        &public_json,
        serde_json::to_vec(&public_signals_to_json(&tampered)).unwrap(),
    )
    .unwrap();
    let (ok, out) = run(Command::new(node_tool("snarkjs"))
        .args(["groth16", "verify"])
        .args([&vk, &public_json, &proof_json]));
    assert!(
        !ok || !out.contains("OK!"),
        "snarkjs accepted a tampered proof: {out}"
    );
}

#[test]
fn we_verify_a_snarkjs_proof() {
    let (identity, path) = fixture();
    let x = rln_core::hash_to_field(b"hello from snarkjs");
    let en = rln_core::external_nullifier(epoch_to_fr(1000), RlnIdentifier::waku().to_fr());
    let dec = |f: &rln_core::Fr| public_signals_to_json(std::slice::from_ref(f)).remove(0);
    let input = serde_json::json!({
        "identitySecret": dec(&identity.secret()),
        "userMessageLimit": "4",
        "messageId": "3",
        "pathElements": path.siblings.iter().map(dec).collect::<Vec<_>>(),
        "identityPathIndex": path.path_index().iter().map(|b| b.to_string()).collect::<Vec<_>>(),
        "x": dec(&x),
        "externalNullifier": dec(&en),
    });
    let dir = tempdir("snarkjs-prove");
    let input_json = dir.join("input.json");
    let proof_json = dir.join("proof.json");
    let public_json = dir.join("public.json");
    std::fs::write(&input_json, serde_json::to_vec(&input).unwrap()).unwrap();
    let (ok, out) = run(Command::new(node_tool("snarkjs"))
        .args(["groth16", "fullprove"])
        .arg(&input_json)
        .arg(repo().join("circuits/build/rln.wasm"))
        .arg(repo().join("zkeys/rln_dev_insecure.zkey"))
        .args([&proof_json, &public_json]));
    assert!(ok, "snarkjs fullprove failed: {out}");

    let proof: SnarkjsProof = serde_json::from_slice(&std::fs::read(&proof_json).unwrap()).unwrap();
    let signals: Vec<String> =
        serde_json::from_slice(&std::fs::read(&public_json).unwrap()).unwrap();
    let inputs = public_signals_from_json(&signals).unwrap();
    let expected = rln_core::compute_share(identity.secret(), en, 3, 4, x).unwrap();
    assert_eq!(
        inputs,
        vec![
            expected.share.y,
            path.compute_root(identity.rate_commitment(4).unwrap()),
            expected.nullifier,
            x,
            en
        ]
    );

    let verifier = Verifier::dev().unwrap();
    let groth = proof.to_proof().unwrap();
    assert_eq!(
        verifier.verify_public_inputs(&groth, &inputs).unwrap(),
        ProofVerdict::Valid
    );
    let mut wrong = inputs.clone();
    wrong[0] += rln_core::Fr::from(1u64);
    assert_eq!(
        verifier.verify_public_inputs(&groth, &wrong).unwrap(),
        ProofVerdict::Invalid
    );
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rln-node-it-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
