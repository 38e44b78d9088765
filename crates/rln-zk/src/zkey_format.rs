//! Structural checks of a snarkjs `.zkey` before `ark-circom` parses it.
//!
//! `ark-circom`'s reader trusts the file: a missing section, a size that does not fit or an
//! out-of-range coefficient index makes it panic or allocate without bound. This module reads
//! the section table and the Groth16 header and checks every size and index against the file,
//! so that a truncated, foreign or corrupted key is a clear error.

use ark_ff::{BigInteger, PrimeField};

/// Bytes of one G1 point in a zkey (two 32-byte coordinates).
const G1: u64 = 64;
/// Bytes of one G2 point.
const G2: u64 = 128;
/// Bytes of one R1CS coefficient entry: matrix, constraint, signal (u32 each) and a value.
const COEFF: u64 = 12 + 32;
/// The largest evaluation domain accepted (2^28 points, far above any RLN circuit).
const MAX_DOMAIN: u64 = 1 << 28;

/// What the Groth16 header of a zkey declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZkeyHeader {
    /// Wires of the circuit, including the constant one.
    pub n_vars: u64,
    /// Public signals (outputs and public inputs).
    pub n_public: u64,
    /// Size of the evaluation domain, a power of two.
    pub domain_size: u64,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
        let n = usize::try_from(n).map_err(|_| "size does not fit in memory".to_string())?;
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len());
        let end = end.ok_or_else(|| {
            format!(
                "truncated: needs {n} bytes at offset {}, file has {}",
                self.at,
                self.bytes.len()
            )
        })?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u64, String> {
        let b = self.take(4)?;
        Ok(u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut w = [0u8; 8];
        w.copy_from_slice(b);
        Ok(u64::from_le_bytes(w))
    }
}

/// Checks the layout of a Groth16 BN254 zkey and returns its header.
pub fn check(bytes: &[u8]) -> Result<ZkeyHeader, crate::error::ZkError> {
    layout(bytes).map_err(crate::error::ZkError::Zkey)
}

fn layout(bytes: &[u8]) -> Result<ZkeyHeader, String> {
    let mut cur = Cursor { bytes, at: 0 };
    if cur.take(4)? != b"zkey" {
        return Err("not a snarkjs zkey (the file does not start with `zkey`)".into());
    }
    let version = cur.u32()?;
    if version != 1 {
        return Err(format!(
            "zkey version {version} is not supported (expected 1)"
        ));
    }
    let n_sections = cur.u32()?;
    // Sections by id, first occurrence only (the reader uses the first).
    let mut sections: [Option<(usize, u64)>; 11] = [None; 11];
    for _ in 0..n_sections {
        let id = cur.u32()?;
        let size = cur.u64()?;
        let start = cur.at;
        cur.take(size)?;
        if let Some(slot) = sections.get_mut(id as usize) {
            slot.get_or_insert((start, size));
        }
    }
    let section = |id: usize| -> Result<Cursor<'_>, String> {
        let (start, size) = sections[id].ok_or(format!("section {id} is missing"))?;
        Ok(Cursor {
            bytes: &bytes[..start + size as usize],
            at: start,
        })
    };
    let size_of = |id: usize| sections[id].map_or(0, |(_, size)| size);

    let protocol = section(1)?.u32()?;
    if protocol != 1 {
        return Err(format!("zkey protocol {protocol} is not Groth16 (1)"));
    }

    let mut h = section(2)?;
    let n8q = h.u32()?;
    if n8q != 32 || h.take(32)? != ark_bn254::Fq::MODULUS.to_bytes_le().as_slice() {
        return Err("the zkey's base field is not BN254's".into());
    }
    let n8r = h.u32()?;
    if n8r != 32 || h.take(32)? != ark_bn254::Fr::MODULUS.to_bytes_le().as_slice() {
        return Err("the zkey's scalar field is not BN254's".into());
    }
    let n_vars = h.u32()?;
    let n_public = h.u32()?;
    let domain_size = h.u32()?;
    h.take(3 * G1 + 3 * G2)?;
    if n_vars < n_public + 2 {
        return Err(format!(
            "{n_vars} wires cannot hold {n_public} public signals"
        ));
    }
    if !domain_size.is_power_of_two() || domain_size > MAX_DOMAIN {
        return Err(format!(
            "domain size {domain_size} is not a power of two up to 2^28"
        ));
    }

    let expect = |id: usize, what: &str, size: u64| -> Result<(), String> {
        if size_of(id) != size {
            return Err(format!(
                "section {id} ({what}) has {} bytes, the header implies {size}",
                size_of(id)
            ));
        }
        Ok(())
    };
    expect(3, "IC", (n_public + 1) * G1)?;
    expect(5, "A", n_vars * G1)?;
    expect(6, "B1", n_vars * G1)?;
    expect(7, "B2", n_vars * G2)?;
    expect(8, "C", (n_vars - n_public - 1) * G1)?;
    expect(9, "H", domain_size * G1)?;

    let mut coeffs = section(4)?;
    let n_coeffs = coeffs.u32()?;
    expect(4, "coefficients", 4 + n_coeffs * COEFF)?;
    let mut max_constraint = 0;
    for _ in 0..n_coeffs {
        let matrix = coeffs.u32()?;
        let constraint = coeffs.u32()?;
        let signal = coeffs.u32()?;
        coeffs.take(32)?;
        if matrix > 1 || constraint >= domain_size || signal >= n_vars {
            return Err(format!(
                "coefficient (matrix {matrix}, constraint {constraint}, signal {signal}) is out of range"
            ));
        }
        max_constraint = max_constraint.max(constraint);
    }
    if max_constraint < n_public {
        return Err("the zkey has no constraints beyond its public inputs".into());
    }
    Ok(ZkeyHeader {
        n_vars,
        n_public,
        domain_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn mutated_headers_never_panic(at in 0usize..1200, byte in any::<u8>(), cut in 0usize..4_000_000) {
            let mut key = crate::keys::DEV_ZKEY.to_vec();
            key[at] = byte;
            key.truncate(cut.max(1));
            let _ = check(&key);
        }
    }

    #[test]
    fn the_dev_key_passes() {
        let header = check(crate::keys::DEV_ZKEY).unwrap();
        assert_eq!(header.n_public, 5);
        assert_eq!(header.domain_size, 8192);
    }

    #[test]
    fn truncations_and_garbage_fail_cleanly() {
        let key = crate::keys::DEV_ZKEY;
        for len in [0, 3, 4, 12, 100, 1000, key.len() / 2, key.len() - 1] {
            assert!(check(&key[..len]).is_err(), "truncated to {len} bytes");
        }
        assert!(check(b"zkey\x01\0\0\0\xff\xff\xff\xff").is_err());
        let mut flipped = key.to_vec();
        flipped[4] = 2;
        assert!(check(&flipped).unwrap_err().to_string().contains("version"));
    }
}
