//! Witness graphs a user passes (`rln.witness_graph`, iden3 circom-witnesscalc format):
//! `WitnessGraph::from_bytes`, then `solve` on fixed RLN inputs, as the node does when it
//! loads keys (it proves one test message before anything else).
//!
//! Checks: no panic, no out-of-bounds evaluation and no allocation out of proportion to the
//! input for any graph the parser accepts; the witness has one value per wire.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rln_core::{Fr, MerkleProof, TREE_DEPTH};
use rln_zk::circuit::graph::WitnessGraph;
use rln_zk::circuit::CircuitInputs;

fuzz_target!(|data: &[u8]| {
    let Ok(graph) = WitnessGraph::from_bytes(data) else {
        return;
    };
    let inputs = CircuitInputs {
        identity_secret: Fr::from(7u64),
        user_message_limit: 10,
        message_id: 3,
        merkle_proof: MerkleProof {
            leaf_index: 5,
            siblings: (0..TREE_DEPTH as u64).map(Fr::from).collect(),
        },
        x: Fr::from(11u64),
        external_nullifier: Fr::from(13u64),
    };
    let witness = graph.solve(&inputs).expect("RLN-shaped inputs solve");
    assert_eq!(witness.len(), graph.num_wires());
    assert!(graph.message_wires().iter().all(|w| *w < graph.num_wires()));
});
