//! The reference implementation's `.arkzkey`: a Groth16 proving key and the circuit's
//! constraint matrices in arkworks' uncompressed serialization.
//!
//! Layout: the `ProvingKey` (verifying key — α in G1, β, γ, δ in G2, the `γ_abc` vector —
//! then β and δ in G1 and the `a`, `b` (G1), `b` (G2), `h` and `l` query vectors), then
//! six u64 counts (instance variables, witness variables, constraints, and the non-zero
//! entries of `A`, `B`, `C`), then the three matrices, each a vector of rows of
//! `(coefficient, wire)` pairs. Vectors are a u64 length and their elements; points are
//! uncompressed with arkworks' flag bits, field elements 32 little-endian bytes.
//!
//! Every length is checked against what is left of the file before anything is allocated,
//! every point is checked (on the curve, in the subgroup), every coefficient is canonical and
//! every wire index is below the key's wire count, so a truncated or corrupted file is an
//! error and never a panic or a huge allocation.

use ark_bn254::{Fr, G1Affine, G2Affine};
use ark_groth16::{ProvingKey, VerifyingKey};
use ark_relations::utils::matrix::Matrix;
use ark_serialize::{CanonicalDeserialize, Compress, Validate};
use rayon::prelude::*;

use super::cursor::Cursor;
use super::ZkeyData;
use crate::circuit::PUBLIC_INPUTS;
use crate::error::ZkError;

const G1: usize = 64;
const G2: usize = 128;
const FR: usize = 32;
const ENTRY: usize = FR + 8;

/// The shared bounded cursor, with errors that name the part of the key being read.
struct Reader<'a>(Cursor<'a>);

fn error(message: impl Into<String>) -> ZkError {
    ZkError::Zkey(format!("arkzkey: {}", message.into()))
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ZkError> {
        self.0
            .take(n as u64)
            .map_err(|e| error(format!("{what}: {e}")))
    }

    fn u64(&mut self, what: &str) -> Result<u64, ZkError> {
        self.0.u64().map_err(|e| error(format!("{what}: {e}")))
    }

    /// A vector length whose elements of `size` bytes fit in the rest of the file.
    fn len(&mut self, size: usize, what: &str) -> Result<usize, ZkError> {
        let len = self.u64(what)?;
        let left = self.0.remaining();
        usize::try_from(len)
            .ok()
            .filter(|n| n.checked_mul(size).is_some_and(|bytes| bytes <= left))
            .ok_or_else(|| {
                error(format!(
                    "{what}: {len} elements do not fit in the rest of the file (truncated or corrupt)"
                ))
            })
    }

    fn point<P: CanonicalDeserialize>(&mut self, size: usize, what: &str) -> Result<P, ZkError> {
        value(self.take(size, what)?, what)
    }

    fn points<P: CanonicalDeserialize + Send>(
        &mut self,
        size: usize,
        what: &str,
    ) -> Result<Vec<P>, ZkError> {
        let len = self.len(size, what)?;
        self.take(len * size, what)?
            .par_chunks_exact(size)
            .map(|bytes| value(bytes, what))
            .collect()
    }

    fn matrix(&mut self, rows: usize, wires: usize, what: &str) -> Result<Matrix<Fr>, ZkError> {
        let len = self.len(8, what)?;
        if len != rows {
            return Err(error(format!(
                "{what} has {len} rows for {rows} constraints"
            )));
        }
        let mut matrix = Vec::with_capacity(len);
        for _ in 0..len {
            let entries = self.len(ENTRY, what)?;
            let mut row = Vec::with_capacity(entries);
            for _ in 0..entries {
                let coefficient = value::<Fr>(self.take(FR, what)?, what)?;
                let wire = self.u64(what)?;
                let wire = usize::try_from(wire)
                    .ok()
                    .filter(|w| *w < wires)
                    .ok_or_else(|| error(format!("{what} refers to wire {wire} of {wires}")))?;
                row.push((coefficient, wire));
            }
            matrix.push(row);
        }
        Ok(matrix)
    }
}

/// One arkworks value (point or field element) in uncompressed form, validated.
fn value<P: CanonicalDeserialize>(bytes: &[u8], what: &str) -> Result<P, ZkError> {
    P::deserialize_with_mode(bytes, Compress::No, Validate::Yes)
        .map_err(|e| error(format!("invalid value in {what}: {e}")))
}

/// Parses an `.arkzkey` held in memory.
pub(crate) fn parse(bytes: &[u8]) -> Result<ZkeyData, ZkError> {
    let mut c = Reader(Cursor { bytes, at: 0 });
    let alpha_g1: G1Affine = c.point(G1, "alpha_g1")?;
    let beta_g2: G2Affine = c.point(G2, "beta_g2")?;
    let gamma_g2: G2Affine = c.point(G2, "gamma_g2")?;
    let delta_g2: G2Affine = c.point(G2, "delta_g2")?;
    let gamma_abc_g1 = c.points(G1, "gamma_abc_g1")?;
    let vk = VerifyingKey {
        alpha_g1,
        beta_g2,
        gamma_g2,
        delta_g2,
        gamma_abc_g1,
    };
    super::check_public_inputs(&vk)?;
    let beta_g1 = c.point(G1, "beta_g1")?;
    let delta_g1 = c.point(G1, "delta_g1")?;
    let proving_key = ProvingKey {
        vk,
        beta_g1,
        delta_g1,
        a_query: c.points(G1, "a_query")?,
        b_g1_query: c.points(G1, "b_g1_query")?,
        b_g2_query: c.points(G2, "b_g2_query")?,
        h_query: c.points(G1, "h_query")?,
        l_query: c.points(G1, "l_query")?,
    };
    let num_wires = proving_key.a_query.len();
    let num_instance_variables = c.u64("the instance count")?;
    let _witness_variables = c.u64("the witness count")?;
    let num_constraints = c.u64("the constraint count")?;
    for what in ["A's entry count", "B's entry count", "C's entry count"] {
        c.u64(what)?;
    }
    if num_instance_variables != (PUBLIC_INPUTS + 1) as u64 {
        return Err(error(format!(
            "{num_instance_variables} instance variables; the RLN circuit has {}",
            PUBLIC_INPUTS + 1
        )));
    }
    // Each row takes at least its 8-byte length.
    let rows = usize::try_from(num_constraints)
        .ok()
        .filter(|n| *n <= c.0.remaining() / 8)
        .ok_or_else(|| {
            error(format!(
                "{num_constraints} constraints cannot fit in the file"
            ))
        })?;
    let a = c.matrix(rows, num_wires, "matrix A")?;
    let b = c.matrix(rows, num_wires, "matrix B")?;
    // circom's keys leave C empty (its values follow from A and B on the domain).
    let c_rows = c.len(8, "matrix C")?;
    if c_rows != 0 {
        return Err(error(
            "matrix C is not empty; only circom keys are supported",
        ));
    }
    if c.0.remaining() != 0 {
        return Err(error(format!(
            "{} bytes after the matrices",
            c.0.remaining()
        )));
    }
    Ok(ZkeyData {
        proving_key,
        matrices: [a, b, Vec::new()],
        num_instance_variables: PUBLIC_INPUTS + 1,
        num_wires,
        num_constraints: rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_serialize::CanonicalSerialize;

    /// A minimal file: the dev key's proving key with matrices as given.
    fn file(rows: u64, a: &[(u64, [u8; 32])]) -> Vec<u8> {
        let key = ZkeyData::dev().unwrap();
        let mut out = Vec::new();
        key.proving_key.serialize_uncompressed(&mut out).unwrap();
        for v in [6, 1, rows, a.len() as u64, 0, 0] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&rows.to_le_bytes());
        for r in 0..rows {
            let row: Vec<_> = if r == 0 { a.to_vec() } else { Vec::new() };
            out.extend_from_slice(&(row.len() as u64).to_le_bytes());
            for (wire, value) in row {
                out.extend_from_slice(&value);
                out.extend_from_slice(&wire.to_le_bytes());
            }
        }
        out.extend_from_slice(&rows.to_le_bytes());
        for _ in 0..rows {
            out.extend_from_slice(&0u64.to_le_bytes());
        }
        out.extend_from_slice(&0u64.to_le_bytes());
        out
    }

    #[test]
    fn a_well_formed_file_reads_back() {
        let one = {
            let mut b = [0u8; 32];
            b[0] = 1;
            b
        };
        let key = parse(&file(2, &[(3, one)])).unwrap();
        assert_eq!(key.num_constraints, 2);
        assert_eq!(key.matrices[0][0], vec![(Fr::from(1u64), 3)]);
        assert!(key.proving_key == ZkeyData::dev().unwrap().proving_key);
    }

    #[test]
    fn bad_indices_values_and_truncations_are_errors() {
        let err = parse(&file(1, &[(1 << 40, [0u8; 32])]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("refers to wire"), "{err}");
        let err = parse(&file(1, &[(1, [0xff; 32])])).unwrap_err().to_string();
        assert!(err.contains("invalid value in matrix A"), "{err}");
        let whole = file(2, &[]);
        for cut in [0, 10, 1000, whole.len() / 2, whole.len() - 1] {
            assert!(parse(&whole[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = whole.clone();
        long.push(0);
        assert!(parse(&long)
            .unwrap_err()
            .to_string()
            .contains("after the matrices"));
        // A row count that claims more than the file holds.
        let mut huge = whole;
        let at = huge.len() - (8 * 2 + 8) - (8 * 2 + 8) - 8;
        huge[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(parse(&huge).is_err());
    }
}
