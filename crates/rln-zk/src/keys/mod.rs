//! Loading circuit artifacts and keys: snarkjs `.zkey` proving keys, verifying keys in snarkjs
//! JSON or arkworks bytes, and the INSECURE development keys compiled into this crate.
//!
//! - [`zkey_format`]: the layout of snarkjs's binary `.zkey`, checked before arkworks reads it.
//! - [`arkzkey`]: the reference implementation's `.arkzkey` (arkworks serialization).
//! - [`snarkjs`]: JSON forms of keys and proofs for interop with the circom tool chain.

use std::path::Path;

use ark_bn254::{Bn254, Fr};
use ark_groth16::{ProvingKey, VerifyingKey};
use ark_relations::utils::matrix::Matrix;
use ark_serialize::CanonicalDeserialize;

use crate::circuit::PUBLIC_INPUTS;
use crate::error::ZkError;

pub mod arkzkey;
mod cursor;
pub mod snarkjs;
pub mod zkey_format;

/// The circom witness generator of `circuits/rln.circom` (depth 20, 16-bit limits).
#[cfg(feature = "wasm-witness")]
pub const RLN_WASM: &[u8] = include_bytes!("../../../../circuits/build/rln.wasm");

/// The circuit's constraint system, as circom wrote it (`circuits/build/rln.r1cs`).
pub const RLN_R1CS: &[u8] = include_bytes!("../../../../circuits/build/rln.r1cs");

/// The names of the circuit's wires, `wire,name` per line, from circom's symbol file
/// (`circuits/build/rln.wires`).
pub const RLN_WIRES: &str = include_str!("../../../../circuits/build/rln.wires");

/// The development proving key. INSECURE: made by a public, deterministic setup
/// (`circuits/make-dev-keys.sh`); anyone can forge proofs against it.
pub const DEV_ZKEY: &[u8] = include_bytes!("../../../../zkeys/rln_dev_insecure.zkey");

/// The verifying key of [`DEV_ZKEY`] in snarkjs JSON.
pub const DEV_VERIFYING_KEY_JSON: &str = include_str!("../../../../zkeys/verification_key.json");

/// A proving key with the circuit's constraint matrices, as a snarkjs `.zkey` holds them.
#[derive(Debug, Clone)]
pub struct ZkeyData {
    /// The Groth16 proving key (its `vk` is the matching verifying key).
    pub proving_key: ProvingKey<Bn254>,
    /// The A, B and C matrices of the R1CS.
    pub matrices: [Matrix<Fr>; 3],
    /// Public variables including the constant one.
    pub num_instance_variables: usize,
    /// Wires of the circuit, including the constant one.
    pub num_wires: usize,
    /// Constraints.
    pub num_constraints: usize,
}

impl ZkeyData {
    /// Parses a proving key from memory: a snarkjs `.zkey` (it starts with the magic `zkey`)
    /// or else an `.arkzkey`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ZkError> {
        if bytes.starts_with(b"zkey") {
            Self::from_zkey_bytes(bytes)
        } else {
            arkzkey::parse(bytes)
        }
    }

    /// Parses a snarkjs `.zkey` (Groth16, bn128) from memory.
    pub fn from_zkey_bytes(bytes: &[u8]) -> Result<Self, ZkError> {
        let header = zkey_format::check(bytes)?;
        if header.n_public != PUBLIC_INPUTS as u64 {
            return Err(ZkError::PublicInputCount {
                expected: PUBLIC_INPUTS,
                got: header.n_public as usize,
            });
        }
        let parsed = zkey_format::parse(bytes)?;
        check_public_inputs(&parsed.proving_key.vk)?;
        Ok(Self {
            proving_key: parsed.proving_key,
            num_instance_variables: PUBLIC_INPUTS + 1,
            num_wires: parsed.header.n_vars as usize,
            num_constraints: parsed.num_constraints,
            matrices: [parsed.a, parsed.b, Vec::new()],
        })
    }

    /// Reads a proving key file, snarkjs `.zkey` or `.arkzkey` (see [`Self::from_bytes`]).
    pub fn from_path(path: &Path) -> Result<Self, ZkError> {
        Self::from_bytes(&read(path)?)
    }

    /// The INSECURE development key.
    pub fn dev() -> Result<Self, ZkError> {
        Self::from_bytes(DEV_ZKEY)
    }
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, ZkError> {
    std::fs::read(path).map_err(|source| ZkError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Checks that a verifying key has the RLN circuit's five public inputs.
pub fn check_public_inputs(vk: &VerifyingKey<Bn254>) -> Result<(), ZkError> {
    let got = vk.gamma_abc_g1.len().saturating_sub(1);
    if got != PUBLIC_INPUTS {
        return Err(ZkError::PublicInputCount {
            expected: PUBLIC_INPUTS,
            got,
        });
    }
    Ok(())
}

/// Reads a verifying key from a file: snarkjs JSON if it ends in `.json`, otherwise arkworks
/// serialization (compressed or uncompressed, told apart by length).
pub fn verifying_key_from_path(path: &Path) -> Result<VerifyingKey<Bn254>, ZkError> {
    let bytes = read(path)?;
    if path.extension().is_some_and(|e| e == "json") {
        let text = String::from_utf8(bytes)
            .map_err(|_| ZkError::VerifyingKey(format!("{} is not UTF-8", path.display())))?;
        return snarkjs::verifying_key_from_json(&text);
    }
    verifying_key_from_arkworks(&bytes)
}

/// Parses an arkworks-serialized verifying key, compressed or uncompressed, with point
/// validation.
pub fn verifying_key_from_arkworks(bytes: &[u8]) -> Result<VerifyingKey<Bn254>, ZkError> {
    // Each form must consume the input exactly, so a prefix of one never passes as the other.
    let whole = |compressed: bool| {
        let mut reader = bytes;
        let key = if compressed {
            VerifyingKey::<Bn254>::deserialize_compressed(&mut reader)
        } else {
            VerifyingKey::<Bn254>::deserialize_uncompressed(&mut reader)
        };
        key.ok().filter(|_| reader.is_empty())
    };
    whole(true).or_else(|| whole(false)).ok_or_else(|| {
        ZkError::VerifyingKey(format!(
            "{} bytes are not an arkworks BN254 verifying key (compressed or uncompressed)",
            bytes.len()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_are_no_verifying_key(bytes in proptest::collection::vec(any::<u8>(), 0..900)) {
            prop_assert!(verifying_key_from_arkworks(&bytes).is_err());
        }

        #[test]
        fn arbitrary_json_is_no_verifying_key(text in ".{0,200}") {
            prop_assert!(snarkjs::verifying_key_from_json(&text).is_err());
        }
    }

    #[test]
    fn the_dev_key_reads_as_ark_circom_reads_it() {
        let ours = ZkeyData::dev().unwrap();
        let (proving_key, index) =
            ark_circom::read_zkey(&mut std::io::Cursor::new(DEV_ZKEY)).unwrap();
        assert!(ours.proving_key == proving_key);
        assert!(ours.matrices[0] == index.a && ours.matrices[1] == index.b);
        assert!(ours.matrices[2].is_empty() && index.c.is_empty());
        assert_eq!(ours.num_constraints, index.num_constraints);
        assert_eq!(ours.num_instance_variables, index.num_instance_variables);
    }
}
