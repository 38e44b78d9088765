//! Our Poseidon against circomlibjs, the JavaScript reference of the circomlib parameters.

use std::process::Command;

use ark_ff::{BigInteger, PrimeField};
use num_bigint::BigUint;
use rln_core::poseidon::{poseidon1, poseidon2, poseidon3};
use rln_core::Fr;

use crate::common::{repo, run};

fn dec(value: Fr) -> String {
    BigUint::from_bytes_le(&value.into_bigint().to_bytes_le()).to_string()
}

#[test]
fn poseidon_matches_circomlibjs() {
    let minus_one = -Fr::from(1u64);
    let big = Fr::from(u64::MAX) * Fr::from(u64::MAX);
    let cases: Vec<Vec<Fr>> = vec![
        vec![Fr::from(0u64)],
        vec![Fr::from(1u64)],
        vec![minus_one],
        vec![Fr::from(1u64), Fr::from(2u64)],
        vec![Fr::from(0u64), Fr::from(0u64)],
        vec![big, minus_one],
        vec![Fr::from(1u64), Fr::from(2u64), Fr::from(3u64)],
        vec![minus_one, big, Fr::from(42u64)],
    ];
    let ours: Vec<String> = cases
        .iter()
        .map(|c| match c.as_slice() {
            [a] => dec(poseidon1(*a)),
            [a, b] => dec(poseidon2(*a, *b)),
            [a, b, c] => dec(poseidon3(*a, *b, *c)),
            _ => unreachable!(),
        })
        .collect();
    let request: Vec<Vec<String>> = cases
        .iter()
        .map(|c| c.iter().map(|f| dec(*f)).collect())
        .collect();
    let script = repo().join("tests/scripts/poseidon-vectors.js");
    crate::common::node_tool("snarkjs"); // make sure `make tools` ran
    let (ok, out) = run(Command::new("node")
        .arg(&script)
        .arg(serde_json::to_string(&request).unwrap()));
    assert!(ok, "circomlibjs script failed: {out}");
    let theirs: Vec<String> = serde_json::from_str(out.trim()).expect("JSON from the script");
    assert_eq!(ours, theirs);
}
