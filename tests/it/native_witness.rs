//! The native witness solver against circom's WebAssembly calculator, and proofs from a
//! prepared membership against full proofs.

use ark_ff::UniformRand;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rln_core::{epoch_to_fr, Fr, Identity, MerkleProof, RlnIdentifier, TREE_DEPTH};
use rln_zk::circuit::solver::{MessageInputs, WitnessSolver};
use rln_zk::circuit::{CircuitInputs, WitnessGenerator};
use rln_zk::keys::RLN_WASM;
use rln_zk::{MessageRequest, ProofRequest, ProofVerdict, Verifier, ZkError};

use crate::common::prover;

fn random_inputs(rng: &mut ChaCha20Rng) -> CircuitInputs {
    let limit = match rng.gen_range(0..4) {
        0 => 1,
        1 => rln_core::identity::MAX_USER_MESSAGE_LIMIT,
        _ => rng.gen_range(1..=rln_core::identity::MAX_USER_MESSAGE_LIMIT),
    };
    let message_id = match rng.gen_range(0..3) {
        0 => 0,
        1 => limit - 1,
        _ => rng.gen_range(0..limit),
    };
    CircuitInputs {
        identity_secret: Fr::rand(rng),
        user_message_limit: limit,
        message_id,
        merkle_proof: MerkleProof {
            leaf_index: rng.gen_range(0..1u64 << TREE_DEPTH),
            siblings: (0..TREE_DEPTH).map(|_| Fr::rand(rng)).collect(),
        },
        x: Fr::rand(rng),
        external_nullifier: Fr::rand(rng),
    }
}

fn seeded() -> ChaCha20Rng {
    let seed: u64 = rand::random();
    eprintln!("seed {seed}");
    ChaCha20Rng::seed_from_u64(seed)
}

#[test]
fn the_native_witness_equals_circoms_on_random_inputs() {
    let solver = WitnessSolver::rln().unwrap();
    let wasm = WitnessGenerator::from_wasm(RLN_WASM).unwrap();
    let mut rng = seeded();
    for case in 0..24 {
        let inputs = random_inputs(&mut rng);
        let native = solver.solve(&inputs).unwrap();
        let reference = wasm.witness(&inputs).unwrap();
        assert_eq!(native.len(), reference.len());
        if let Some(wire) = (0..native.len()).find(|w| native[*w] != reference[*w]) {
            panic!("case {case}: wire {wire} differs ({inputs:?})");
        }
    }
}

#[test]
fn re_solving_the_message_part_equals_a_full_solve() {
    let solver = WitnessSolver::rln().unwrap();
    let mut rng = seeded();
    for _ in 0..8 {
        let first = random_inputs(&mut rng);
        let mut witness = solver.solve(&first).unwrap();
        let second = CircuitInputs {
            message_id: rng.gen_range(0..first.user_message_limit),
            x: Fr::rand(&mut rng),
            external_nullifier: Fr::rand(&mut rng),
            ..first.clone()
        };
        let message = MessageInputs {
            message_id: second.message_id,
            x: second.x,
            external_nullifier: second.external_nullifier,
        };
        solver
            .solve_message(&mut witness, &message, second.user_message_limit)
            .unwrap();
        assert_eq!(witness, solver.solve(&second).unwrap());
    }
}

#[test]
fn inputs_that_break_the_range_check_are_unsatisfied() {
    let solver = WitnessSolver::rln().unwrap();
    let mut inputs = random_inputs(&mut seeded());
    inputs.user_message_limit = 5;
    for bad in [5, 6, 1 << 16, u64::MAX] {
        inputs.message_id = bad;
        let err = solver.solve(&inputs).unwrap_err();
        assert!(matches!(err, ZkError::Unsatisfied(_)), "{bad}: {err}");
    }
    inputs.message_id = 4;
    assert!(solver.solve(&inputs).is_ok());
    inputs.merkle_proof.siblings.pop();
    assert!(matches!(
        solver.solve(&inputs),
        Err(ZkError::PathDepth { .. })
    ));
}

#[test]
fn a_prepared_membership_gives_the_same_proof_as_a_full_one() {
    let prover = prover();
    let verifier = Verifier::dev().unwrap();
    let mut rng = seeded();
    let identity = Identity::from_secret(Fr::rand(&mut rng));
    let path = MerkleProof {
        leaf_index: rng.gen_range(0..1u64 << TREE_DEPTH),
        siblings: (0..TREE_DEPTH).map(|_| Fr::rand(&mut rng)).collect(),
    };
    let prepared = prover.prepare(&identity, 7, &path).unwrap();
    assert!(prepared.matches(&identity, 7, &path));
    assert!(!prepared.matches(&identity, 8, &path));
    for message_id in [0, 6, 3] {
        let signal = format!("message {message_id}");
        let epoch = epoch_to_fr(1000 + message_id);
        let full = ProofRequest::for_signal(
            &identity,
            7,
            message_id,
            &path,
            signal.as_bytes(),
            epoch,
            RlnIdentifier::waku(),
        );
        let message =
            MessageRequest::for_signal(message_id, signal.as_bytes(), epoch, RlnIdentifier::waku());
        let (r, s) = (Fr::rand(&mut rng), Fr::rand(&mut rng));
        let cold = prover.prove_with_randomness(&full, r, s).unwrap();
        let warm = prover
            .prove_message_with_randomness(&prepared, &message, r, s)
            .unwrap();
        assert_eq!(warm, cold);
        assert_eq!(warm.merkle_root, prepared.root());
        assert_eq!(verifier.verify(&warm), ProofVerdict::Valid);
        let fresh = prover.prove_message(&prepared, &message, &mut rng).unwrap();
        assert_ne!(fresh.proof, warm.proof, "fresh randomness");
        assert_eq!(verifier.verify(&fresh), ProofVerdict::Valid);
    }
    let too_far = MessageRequest::for_signal(7, b"x", epoch_to_fr(1), RlnIdentifier::waku());
    assert!(matches!(
        prover.prove_message(&prepared, &too_far, &mut rng),
        Err(ZkError::Rln(_))
    ));
}

#[test]
fn proofs_equal_arkworks_groth16_for_the_same_randomness() {
    // rln-zk assembles proofs itself (precomputed multi-scalar multiplications); arkworks'
    // prover over the same witness and key is the yardstick.
    let prover = prover();
    let zkey = rln_zk::ZkeyData::dev().unwrap();
    let mut rng = seeded();
    let inputs = random_inputs(&mut rng);
    let identity = Identity::from_secret(inputs.identity_secret);
    let epoch = Fr::rand(&mut rng);
    let request = ProofRequest {
        identity: &identity,
        user_message_limit: inputs.user_message_limit,
        message_id: inputs.message_id,
        merkle_proof: &inputs.merkle_proof,
        x: inputs.x,
        epoch,
        rln_identifier: RlnIdentifier::waku(),
    };
    let (r, s) = (Fr::rand(&mut rng), Fr::rand(&mut rng));
    let ours = prover.prove_with_randomness(&request, r, s).unwrap();
    let witness = prover
        .solver()
        .solve(&CircuitInputs {
            external_nullifier: rln_core::external_nullifier(epoch, RlnIdentifier::waku().to_fr()),
            ..inputs
        })
        .unwrap();
    let arkworks = ark_groth16::Groth16::<ark_bn254::Bn254, ark_circom::CircomReduction>::create_proof_with_reduction_and_matrices(
        &zkey.proving_key,
        r,
        s,
        &zkey.matrices,
        zkey.num_instance_variables,
        zkey.num_constraints,
        &witness,
    )
    .unwrap();
    assert_eq!(ours.proof, arkworks);
}

#[test]
fn a_membership_prepared_with_another_key_is_refused() {
    let mut rng = seeded();
    let identity = Identity::from_secret(Fr::rand(&mut rng));
    let path = MerkleProof {
        leaf_index: 5,
        siblings: (0..TREE_DEPTH).map(|_| Fr::rand(&mut rng)).collect(),
    };
    let prepared = prover().prepare(&identity, 3, &path).unwrap();
    let mut other_key = rln_zk::ZkeyData::dev().unwrap();
    other_key.proving_key.delta_g1 = (other_key.proving_key.delta_g1 * Fr::from(2u64)).into();
    let other = rln_zk::Prover::new(WitnessSolver::rln().unwrap(), other_key).unwrap();
    let message = MessageRequest::for_signal(0, b"m", epoch_to_fr(1), RlnIdentifier::waku());
    let err = other
        .prove_message(&prepared, &message, &mut rng)
        .unwrap_err();
    assert!(matches!(err, ZkError::PreparedMismatch(_)), "{err}");
}
