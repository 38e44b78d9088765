//! Proving keys a user passes (`rln.zkey`): `ZkeyData::from_bytes`, which reads a snarkjs
//! `.zkey` (layout checked by `zkey_format::check` first) or an `.arkzkey`.
//!
//! Checks: no panic and no allocation out of proportion to the input; a parsed key is
//! consistent in what the prover indexes with, so that a bad file is refused at load and never
//! turns into an out-of-bounds access later: five public inputs, one `a` query point per wire,
//! one matrix row per constraint, every matrix entry naming a wire of the key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rln_zk::keys::{check_public_inputs, zkey_format};
use rln_zk::ZkeyData;

fuzz_target!(|data: &[u8]| {
    let _ = zkey_format::check(data);
    let Ok(key) = ZkeyData::from_bytes(data) else {
        return;
    };
    let pk = &key.proving_key;
    assert!(check_public_inputs(&pk.vk).is_ok());
    assert_eq!(pk.a_query.len(), key.num_wires);
    for matrix in &key.matrices[..2] {
        assert_eq!(matrix.len(), key.num_constraints);
        for row in matrix {
            assert!(row.iter().all(|(_, wire)| *wire < key.num_wires));
        }
    }
});
