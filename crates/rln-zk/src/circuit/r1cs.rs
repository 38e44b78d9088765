//! circom's binary constraint system (`.r1cs`) and the wire names of its symbol file, as the
//! native witness solver reads them.
//!
//! Layout of `.r1cs` (iden3 format, version 1): the magic `r1cs`, a version and a section
//! count, then sections of `(type u32, size u64, bytes)`. Section 1 is the header (field
//! size, prime, wire and input counts, constraint count); section 2 holds the constraints,
//! each three linear combinations `(term count u32, then (wire u32, coefficient))`. All
//! integers are little-endian and coefficients are canonical field elements.

use ark_ff::{BigInteger, PrimeField};
use rln_core::Fr;

use crate::error::ZkError;

/// One linear combination: `(wire, coefficient)` pairs. Wire 0 is the constant one.
pub type LinearCombination = Vec<(usize, Fr)>;

/// One rank-1 constraint `A · B = C`.
#[derive(Debug, Clone)]
pub struct Constraint {
    /// Left factor.
    pub a: LinearCombination,
    /// Right factor.
    pub b: LinearCombination,
    /// Product.
    pub c: LinearCombination,
}

/// A parsed constraint system.
#[derive(Debug, Clone)]
pub struct R1cs {
    /// Wires including the constant one.
    pub num_wires: usize,
    /// Public outputs (wires `1..=outputs`).
    pub num_public_outputs: usize,
    /// Public inputs (after the outputs).
    pub num_public_inputs: usize,
    /// Private inputs (after the public inputs).
    pub num_private_inputs: usize,
    /// The constraints in file order.
    pub constraints: Vec<Constraint>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ZkError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| circuit_error("the .r1cs file ends early"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, ZkError> {
        let mut le = [0u8; 4];
        le.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(le))
    }

    fn u64(&mut self) -> Result<u64, ZkError> {
        let mut le = [0u8; 8];
        le.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(le))
    }
}

fn circuit_error(message: impl Into<String>) -> ZkError {
    ZkError::Circuit(message.into())
}

const FIELD_BYTES: usize = 32;

impl R1cs {
    /// Parses a circom `.r1cs` file over BN254's scalar field.
    pub fn parse(bytes: &[u8]) -> Result<Self, ZkError> {
        let mut reader = Reader { bytes, at: 0 };
        if reader.take(4)? != b"r1cs" {
            return Err(circuit_error("not a .r1cs file (bad magic)"));
        }
        let version = reader.u32()?;
        if version != 1 {
            return Err(circuit_error(format!(
                "unsupported .r1cs version {version}"
            )));
        }
        let sections = reader.u32()?;
        let mut header = None;
        let mut constraints_at = None;
        for _ in 0..sections {
            let kind = reader.u32()?;
            let size = usize::try_from(reader.u64()?)
                .map_err(|_| circuit_error("a section of the .r1cs file is too large"))?;
            let start = reader.at;
            reader.take(size)?;
            match kind {
                1 => header = Some(start),
                2 => constraints_at = Some(start),
                _ => {}
            }
        }
        let header = header.ok_or_else(|| circuit_error("the .r1cs file has no header"))?;
        let constraints_at =
            constraints_at.ok_or_else(|| circuit_error("the .r1cs file has no constraints"))?;

        let mut reader = Reader { bytes, at: header };
        let field_size = reader.u32()? as usize;
        let prime = reader.take(field_size)?;
        if field_size != FIELD_BYTES || prime != Fr::MODULUS.to_bytes_le().as_slice() {
            return Err(circuit_error(
                "the circuit is not over the BN254 scalar field",
            ));
        }
        let num_wires = reader.u32()? as usize;
        let num_public_outputs = reader.u32()? as usize;
        let num_public_inputs = reader.u32()? as usize;
        let num_private_inputs = reader.u32()? as usize;
        let _labels = reader.u64()?;
        let count = reader.u32()? as usize;
        if 1 + num_public_outputs + num_public_inputs + num_private_inputs > num_wires {
            return Err(circuit_error(
                "the .r1cs header counts more inputs than wires",
            ));
        }

        let mut reader = Reader {
            bytes,
            at: constraints_at,
        };
        let read_combination = |reader: &mut Reader<'_>| -> Result<LinearCombination, ZkError> {
            let terms = reader.u32()? as usize;
            let mut combination = Vec::with_capacity(terms.min(1024));
            for _ in 0..terms {
                let wire = reader.u32()? as usize;
                if wire >= num_wires {
                    return Err(circuit_error(format!(
                        "a constraint names wire {wire} of {num_wires}"
                    )));
                }
                let mut le = [0u8; FIELD_BYTES];
                le.copy_from_slice(reader.take(FIELD_BYTES)?);
                let coefficient = canonical(&le).ok_or_else(|| {
                    circuit_error("a coefficient is not a canonical field element")
                })?;
                combination.push((wire, coefficient));
            }
            Ok(combination)
        };
        let mut constraints = Vec::with_capacity(count.min(1 << 20));
        for _ in 0..count {
            let a = read_combination(&mut reader)?;
            let b = read_combination(&mut reader)?;
            let c = read_combination(&mut reader)?;
            constraints.push(Constraint { a, b, c });
        }
        Ok(Self {
            num_wires,
            num_public_outputs,
            num_public_inputs,
            num_private_inputs,
            constraints,
        })
    }
}

fn canonical(le: &[u8; FIELD_BYTES]) -> Option<Fr> {
    let value = Fr::from_le_bytes_mod_order(le);
    (value.into_bigint().to_bytes_le().as_slice() == le.as_slice()).then_some(value)
}

/// Evaluates a linear combination on an assignment.
pub fn evaluate(combination: &[(usize, Fr)], assignment: &[Fr]) -> Fr {
    combination
        .iter()
        .map(|(wire, coefficient)| assignment[*wire] * coefficient)
        .sum()
}

/// Wire names from circom's symbol file, reduced to `wire,name` lines for the wires that
/// survive simplification (`make circuits` writes `circuits/build/rln.wires`). Index 0, the
/// constant one, is named `one`.
pub fn parse_wire_names(text: &str, num_wires: usize) -> Result<Vec<String>, ZkError> {
    let mut names = vec![String::new(); num_wires];
    if let Some(first) = names.first_mut() {
        *first = "one".into();
    }
    for (number, line) in text.lines().enumerate() {
        let (wire, name) = line
            .split_once(',')
            .ok_or_else(|| circuit_error(format!("wire names, line {}: no comma", number + 1)))?;
        let wire: usize = wire.parse().map_err(|_| {
            circuit_error(format!("wire names, line {}: bad wire number", number + 1))
        })?;
        let slot = names.get_mut(wire).ok_or_else(|| {
            circuit_error(format!(
                "wire names, line {}: wire {wire} is beyond the circuit's {num_wires}",
                number + 1
            ))
        })?;
        *slot = name.to_string();
    }
    if let Some(unnamed) = names.iter().position(String::is_empty) {
        return Err(circuit_error(format!("wire {unnamed} has no name")));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_circuit_parses_with_its_published_counts() {
        let r1cs = R1cs::parse(crate::keys::RLN_R1CS).unwrap();
        assert_eq!(r1cs.num_wires, 5839);
        assert_eq!(r1cs.constraints.len(), 5816);
        assert_eq!(
            (
                r1cs.num_public_outputs,
                r1cs.num_public_inputs,
                r1cs.num_private_inputs
            ),
            (3, 2, 43)
        );
        let names = parse_wire_names(crate::keys::RLN_WIRES, r1cs.num_wires).unwrap();
        assert_eq!(names[1], "main.y");
        assert_eq!(names[8], "main.messageId");
    }

    #[test]
    fn damaged_files_are_errors() {
        let good = crate::keys::RLN_R1CS;
        for cut in [0, 3, 11, 40, good.len() / 2, good.len() - 1] {
            assert!(R1cs::parse(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = good.to_vec();
        bad[0] = b'x';
        assert!(matches!(R1cs::parse(&bad), Err(ZkError::Circuit(_))));
        assert!(parse_wire_names("1,a\nx,b", 3).is_err());
        assert!(parse_wire_names("1,a\n9,b", 3).is_err());
        assert!(parse_wire_names("1,a", 3).is_err(), "wire 2 unnamed");
    }
}
