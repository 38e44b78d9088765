//! Known answers of the reference implementation (zerokit v2.0.2, used by Waku's nodes).

use rln_core::{
    compute_share, external_nullifier, fr_from_le_bytes, hash_to_field, rate_commitment,
    recover_secret, Fr, Identity, MerkleProof, MerkleTree, RlnIdentifier, Share, TREE_DEPTH,
};
use rln_relay::wire::{decode_proof, encode_proof};
use rln_zk::proof::proof_from_bytes;
use rln_zk::snarkjs::SnarkjsProof;
use rln_zk::{ProofRequest, ProofVerdict, RateLimitProof, Verifier, ZkError};
use serde_json::Value;

use crate::common::{bytes, fr, fr_hex, interop_dir, prover, vectors};

fn cases() -> &'static [Value] {
    vectors()["cases"].as_array().expect("cases")
}

/// The epoch and rln identifier field elements the way the case says they were made.
fn epoch_and_identifier(case: &Value) -> (Fr, Fr) {
    let epoch = bytes(&case["epoch_bytes_hex"]);
    let ident = bytes(&case["rln_identifier_bytes_hex"]);
    if case["epoch_style"].as_str().unwrap().starts_with("raw") {
        let mut padded = [0u8; 32];
        padded[..epoch.len()].copy_from_slice(&epoch);
        let id = RlnIdentifier::from_tag(&ident).expect("short tag");
        (fr_from_le_bytes(&padded).unwrap(), id.to_fr())
    } else {
        (hash_to_field(&epoch), hash_to_field(&ident))
    }
}

fn merkle_proof(case: &Value) -> MerkleProof {
    MerkleProof {
        leaf_index: case["leaf_index"].as_u64().unwrap(),
        siblings: case["path_elements_le_hex"]
            .as_array()
            .unwrap()
            .iter()
            .map(fr_hex)
            .collect(),
    }
}

/// The case's RLN proof; the identifier is carried as a field element, so cases whose
/// identifier is a hash use its canonical bytes.
fn reference_proof(case: &Value) -> RateLimitProof {
    let (epoch, ident) = epoch_and_identifier(case);
    RateLimitProof {
        proof: proof_from_bytes(&bytes(&case["proof_compressed_hex"])).expect("valid proof"),
        merkle_root: fr(&case["root"]),
        epoch,
        share_x: fr(&case["x"]),
        share_y: fr(&case["y"]),
        nullifier: fr(&case["nullifier"]),
        rln_identifier: RlnIdentifier::from_bytes(rln_core::fr_to_le_bytes(&ident)).unwrap(),
    }
}

fn reference_verifier() -> Verifier {
    Verifier::from_path(&interop_dir().join("verification_key.json")).expect("reference vk")
}

#[test]
fn every_case_has_the_same_values() {
    assert_eq!(cases().len(), 5);
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        let secret = fr(&case["identity_secret"]);
        let identity = Identity::from_secret(secret);
        assert_eq!(identity.commitment(), fr(&case["id_commitment"]), "{name}");
        let seed = case["member_seed_utf8"].as_str().unwrap();
        assert_eq!(
            Identity::from_seed(seed.as_bytes()).secret(),
            secret,
            "{name}: seeded keygen"
        );
        let limit = case["user_message_limit"].as_u64().unwrap();
        let leaf = rate_commitment(identity.commitment(), limit).unwrap();
        assert_eq!(leaf, fr(&case["rate_commitment"]), "{name}");

        let (epoch, ident) = epoch_and_identifier(case);
        assert_eq!(epoch, fr(&case["epoch_fr"]), "{name}");
        assert_eq!(ident, fr(&case["rln_identifier_fr"]), "{name}");
        let en = external_nullifier(epoch, ident);
        assert_eq!(en, fr(&case["external_nullifier"]), "{name}");
        let x = hash_to_field(&bytes(&case["signal_hex"]));
        assert_eq!(x, fr(&case["x"]), "{name}");

        let message_id = case["message_id"].as_u64().unwrap();
        let out = compute_share(secret, en, message_id, limit, x).unwrap();
        assert_eq!(out.share.y, fr(&case["y"]), "{name}");
        assert_eq!(out.nullifier, fr(&case["nullifier"]), "{name}");

        let path = merkle_proof(case);
        let index_bits: Vec<u8> = case["identity_path_index"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_u64().unwrap() as u8)
            .collect();
        assert_eq!(path.path_index(), index_bits, "{name}");
        assert_eq!(path.compute_root(leaf), fr(&case["root"]), "{name}");
    }
}

#[test]
fn tree_roots_and_paths_match() {
    let v = vectors();
    let mut tree = MerkleTree::in_memory(TREE_DEPTH).unwrap();
    assert_eq!(tree.root().unwrap(), fr(&v["empty_tree_root_depth20"]));
    for member in v["members"].as_array().unwrap() {
        let index = member["index"].as_u64().unwrap();
        tree.set(index, fr(&member["rate_commitment"])).unwrap();
    }
    assert_eq!(tree.root().unwrap(), fr(&v["tree_root_after_inserts"]));
    for case in cases() {
        let expected = merkle_proof(case);
        assert_eq!(tree.proof(expected.leaf_index).unwrap(), expected);
    }
}

#[test]
fn reference_proofs_verify_with_the_reference_key() {
    let from_json = reference_verifier();
    let dir = interop_dir();
    let from_compressed =
        Verifier::from_path(&dir.join("verification_key.arkworks.compressed.bin")).unwrap();
    let from_uncompressed =
        Verifier::from_path(&dir.join("verification_key.arkworks.uncompressed.bin")).unwrap();
    assert_eq!(from_json.verifying_key(), from_compressed.verifying_key());
    assert_eq!(from_json.verifying_key(), from_uncompressed.verifying_key());
    for case in cases() {
        let proof = reference_proof(case);
        assert_eq!(
            from_json.verify(&proof),
            ProofVerdict::Valid,
            "{}",
            case["name"]
        );
        // Through the Waku wire encoding and back.
        let wire = decode_proof(&encode_proof(&proof)).unwrap();
        assert_eq!(from_json.verify(&wire), ProofVerdict::Valid);
        // The snarkjs JSON of the same proof parses to the same points.
        let json: SnarkjsProof = serde_json::from_value(case["proof_snarkjs"].clone()).unwrap();
        assert_eq!(json.to_proof().unwrap(), proof.proof);
    }
}

type Tamper = Box<dyn Fn(&mut RateLimitProof)>;

#[test]
fn negative_cases_fail() {
    let verifier = reference_verifier();
    let v = vectors();
    assert_eq!(v["negative"]["tampered_x_plus_1_verifies"], false);
    assert_eq!(v["negative"]["tampered_nullifier_plus_1_verifies"], false);
    let one = Fr::from(1u64);
    for case in cases() {
        let good = reference_proof(case);
        let tampered: [(&str, Tamper); 6] = [
            ("x + 1", Box::new(move |p| p.share_x += one)),
            ("nullifier + 1", Box::new(move |p| p.nullifier += one)),
            ("y + 1", Box::new(move |p| p.share_y += one)),
            ("wrong root", Box::new(move |p| p.merkle_root += one)),
            ("other epoch", Box::new(move |p| p.epoch += one)),
            (
                "other identifier",
                Box::new(|p| p.rln_identifier = RlnIdentifier::from_tag(b"other").unwrap()),
            ),
        ];
        for (what, tamper) in tampered {
            let mut bad = good.clone();
            tamper(&mut bad);
            assert_eq!(
                verifier.verify(&bad),
                ProofVerdict::Invalid,
                "{}: {what}",
                case["name"]
            );
        }
    }
    // A proof moved onto another message's public values.
    let mut swapped = reference_proof(&cases()[1]);
    swapped.proof = reference_proof(&cases()[0]).proof;
    assert_eq!(verifier.verify(&swapped), ProofVerdict::Invalid);
}

#[test]
fn message_id_at_the_limit_is_refused() {
    let case = &cases()[0];
    let identity = Identity::from_secret(fr(&case["identity_secret"]));
    let path = merkle_proof(case);
    let (epoch, ident) = epoch_and_identifier(case);
    let request = ProofRequest {
        identity: &identity,
        user_message_limit: 1,
        message_id: 1,
        merkle_proof: &path,
        x: fr(&case["x"]),
        epoch,
        rln_identifier: RlnIdentifier::from_bytes(rln_core::fr_to_le_bytes(&ident)).unwrap(),
    };
    let err = prover()
        .prove(&request, &mut rand::thread_rng())
        .unwrap_err();
    assert!(
        matches!(
            err,
            ZkError::Rln(rln_core::RlnError::MessageIdOutOfRange {
                message_id: 1,
                limit: 1
            })
        ),
        "{err}"
    );
}

#[test]
fn slashing_pair_recovers_the_secret() {
    let slashing = &vectors()["slashing"];
    let (a, b) = (&slashing["proof_a"], &slashing["proof_b"]);
    let verifier = reference_verifier();
    for p in [a, b] {
        assert_eq!(verifier.verify(&reference_proof(p)), ProofVerdict::Valid);
    }
    assert_eq!(fr(&a["nullifier"]), fr(&b["nullifier"]));
    let share = |p: &Value| Share {
        x: fr(&p["x"]),
        y: fr(&p["y"]),
    };
    let secret = recover_secret(share(a), share(b)).unwrap();
    assert_eq!(secret, fr(&slashing["recovered_identity_secret"]));
    assert_eq!(secret, fr(&a["identity_secret"]));
    assert_eq!(
        Identity::from_secret(secret).commitment(),
        fr(&a["id_commitment"])
    );
}

/// Our circuit and dev key, fed the reference inputs, reach the reference's public outputs.
#[test]
fn dev_key_proofs_of_reference_inputs() {
    let dev = Verifier::dev().unwrap();
    let reference = reference_verifier();
    for case in cases() {
        let identity = Identity::from_secret(fr(&case["identity_secret"]));
        let path = merkle_proof(case);
        let (epoch, ident) = epoch_and_identifier(case);
        let request = ProofRequest::for_signal(
            &identity,
            case["user_message_limit"].as_u64().unwrap(),
            case["message_id"].as_u64().unwrap(),
            &path,
            &bytes(&case["signal_hex"]),
            epoch,
            RlnIdentifier::from_bytes(rln_core::fr_to_le_bytes(&ident)).unwrap(),
        );
        let ours = prover().prove(&request, &mut rand::thread_rng()).unwrap();
        let theirs = reference_proof(case);
        assert_eq!(
            ours.public_inputs(),
            theirs.public_inputs(),
            "{}",
            case["name"]
        );
        assert_eq!(dev.verify(&ours), ProofVerdict::Valid);
        // Keys are per setup: each proof verifies only under its own key.
        assert_eq!(reference.verify(&ours), ProofVerdict::Invalid);
        assert_eq!(dev.verify(&theirs), ProofVerdict::Invalid);
    }
}

/// The reference key set: its witness graph and its `.arkzkey`.
fn reference_prover() -> &'static rln_zk::Prover {
    static PROVER: std::sync::OnceLock<rln_zk::Prover> = std::sync::OnceLock::new();
    PROVER.get_or_init(|| {
        let dir = interop_dir();
        let graph = rln_zk::circuit::graph::WitnessGraph::from_path(&dir.join("graph.bin"))
            .expect("the reference witness graph loads");
        let zkey = rln_zk::ZkeyData::from_path(&dir.join("rln_final.arkzkey"))
            .expect("the reference arkzkey loads");
        rln_zk::Prover::new(graph, zkey).expect("graph and key belong together")
    })
}

#[test]
fn the_reference_key_gives_the_reference_proofs_byte_for_byte() {
    let prover = reference_prover();
    let verifier = reference_verifier();
    assert!(prover.verifying_key() == verifier.verifying_key());
    // The compiled-in Waku key set is the reference key.
    assert!(&rln_zk::KeySet::Waku.verifying_key().unwrap() == verifier.verifying_key());
    assert!(crate::common::waku_prover().verifying_key() == verifier.verifying_key());
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        let expected = reference_proof(case);
        let identity = Identity::from_secret(fr(&case["identity_secret"]));
        let path = merkle_proof(case);
        let request = ProofRequest {
            identity: &identity,
            user_message_limit: case["user_message_limit"].as_u64().unwrap(),
            message_id: case["message_id"].as_u64().unwrap(),
            merkle_proof: &path,
            x: fr(&case["x"]),
            epoch: expected.epoch,
            rln_identifier: expected.rln_identifier,
        };
        let (r, s) = (fr(&case["groth16_r"]), fr(&case["groth16_s"]));
        let proof = prover.prove_with_randomness(&request, r, s).unwrap();
        assert_eq!(
            hex::encode(proof.proof_bytes()),
            case["proof_compressed_hex"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(proof, expected, "{name}: public values");
        // The precomputed membership gives the same bytes.
        let prepared = prover
            .prepare(&identity, request.user_message_limit, &path)
            .unwrap();
        let message = rln_zk::MessageRequest {
            message_id: request.message_id,
            x: request.x,
            epoch: request.epoch,
            rln_identifier: request.rln_identifier,
        };
        let warm = prover
            .prove_message_with_randomness(&prepared, &message, r, s)
            .unwrap();
        assert_eq!(warm, expected, "{name}: prepared");
        // Fresh randomness: a different proof that the reference key verifies.
        let fresh = prover.prove(&request, &mut rand::rngs::OsRng).unwrap();
        assert_ne!(fresh.proof, expected.proof, "{name}");
        assert_eq!(verifier.verify(&fresh), ProofVerdict::Valid, "{name}");
    }
}

/// The witness of Waku's circuit, evaluated from its graph, against values computed without
/// any circuit: on random members, limits (near 2^16 too), message ids (at limit − 1 too),
/// leaf indices and paths, its public outputs equal rln-core's y, nullifier and root, the
/// proof made from it verifies under the reference key, and the prepared path gives the
/// same witness as the full one.
#[test]
fn the_graph_witness_agrees_with_the_native_arithmetic_on_random_inputs() {
    use rand::{Rng, SeedableRng};
    let prover = reference_prover();
    let verifier = reference_verifier();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(20_261_201);
    for round in 0..200u64 {
        let identity =
            Identity::from_secret(Fr::from(rng.gen::<u64>()) * Fr::from(rng.gen::<u64>()));
        let limit = match round % 4 {
            0 => 65_535,
            1 => 65_535 - rng.gen_range(0..4),
            2 => 1 + rng.gen_range(0..4),
            _ => rng.gen_range(1..=65_535),
        };
        let message_id = if round % 3 == 0 {
            limit - 1
        } else {
            rng.gen_range(0..limit)
        };
        let path = MerkleProof {
            leaf_index: rng.gen_range(0..1u64 << TREE_DEPTH),
            siblings: (0..TREE_DEPTH)
                .map(|_| Fr::from(rng.gen::<u64>()))
                .collect(),
        };
        let x = Fr::from(rng.gen::<u64>());
        let epoch = Fr::from(rng.gen::<u64>());
        let tag = RlnIdentifier::waku();
        let en = external_nullifier(epoch, tag.to_fr());
        let inputs = rln_zk::circuit::CircuitInputs {
            identity_secret: identity.secret(),
            user_message_limit: limit,
            message_id,
            merkle_proof: path.clone(),
            x,
            external_nullifier: en,
        };
        let witness = prover.solver().solve(&inputs).unwrap();
        let expected = compute_share(identity.secret(), en, message_id, limit, x).unwrap();
        let leaf = rate_commitment(identity.commitment(), limit).unwrap();
        assert_eq!(witness[0], Fr::from(1u64), "round {round}");
        assert_eq!(witness[1], expected.share.y, "round {round}: y");
        assert_eq!(witness[2], path.compute_root(leaf), "round {round}: root");
        assert_eq!(witness[3], expected.nullifier, "round {round}: nullifier");
        assert_eq!(witness[4], x, "round {round}: x");
        assert_eq!(witness[5], en, "round {round}: external nullifier");
        // Every tenth round: a proof from this witness verifies, and the prepared path
        // gives the same one.
        if round % 10 == 0 {
            let request = ProofRequest {
                identity: &identity,
                user_message_limit: limit,
                message_id,
                merkle_proof: &path,
                x,
                epoch,
                rln_identifier: tag,
            };
            let (r, s) = (Fr::from(rng.gen::<u64>()), Fr::from(rng.gen::<u64>()));
            let cold = prover.prove_with_randomness(&request, r, s).unwrap();
            assert_eq!(verifier.verify(&cold), ProofVerdict::Valid, "round {round}");
            let prepared = prover.prepare(&identity, limit, &path).unwrap();
            let message = rln_zk::MessageRequest {
                message_id,
                x,
                epoch,
                rln_identifier: tag,
            };
            let warm = prover
                .prove_message_with_randomness(&prepared, &message, r, s)
                .unwrap();
            assert_eq!(warm, cold, "round {round}: prepared path");
        }
    }
}

/// The per-message part of Waku's circuit, found by data flow in its witness graph, is a small
/// share of its wires, and the outputs that depend only on the membership are not in it.
#[test]
fn the_waku_graph_isolates_the_per_message_wires() {
    let prover = reference_prover();
    let wires = prover.solver().message_wires();
    let total = prover.solver().num_wires();
    assert!(wires.contains(&1), "y changes per message");
    assert!(wires.contains(&3), "the nullifier changes per message");
    assert!(!wires.contains(&2), "the root does not");
    // Poseidon(3), Poseidon(1), the range check and the signals around them: about as many
    // as in this repository's circuit (508 of 5,839).
    assert!(
        (400..700).contains(&wires.len()),
        "{} of {total}",
        wires.len()
    );
}
