//! snarkjs's binary `.zkey` (Groth16, BN254): its layout checked, then its keys and matrices
//! read.
//!
//! A key file is input: a missing section, a size that does not fit, an out-of-range
//! coefficient index or a point off the curve must be a clear error, never a panic or an
//! unbounded allocation. [`check`] reads the section table and the Groth16 header and checks
//! every size and index against the file; only then are the points read, each checked to be
//! on its curve and in the prime-order subgroup, and every number below its modulus. The
//! values are what `ark-circom`'s reader produces from the same file (the tests compare them
//! where that crate is available), without linking its WebAssembly runtime.

use ark_bn254::{Bn254, Fq, Fq2, Fr, G1Affine, G2Affine};
use ark_ec::short_weierstrass::{Affine, SWCurveConfig};
use ark_ff::{BigInt, BigInteger, PrimeField, Zero};
use ark_groth16::{ProvingKey, VerifyingKey};
use ark_relations::utils::matrix::Matrix;
use rayon::prelude::*;

use super::cursor::Cursor;

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

/// Checks the layout of a Groth16 BN254 zkey and returns its header.
pub fn check(bytes: &[u8]) -> Result<ZkeyHeader, crate::error::ZkError> {
    layout(bytes)
        .map(|(header, _)| header)
        .map_err(crate::error::ZkError::Zkey)
}

/// Where each section of a zkey starts and how long it is, by id (first occurrence).
type Sections = [Option<(usize, u64)>; 11];

fn layout(bytes: &[u8]) -> Result<(ZkeyHeader, Sections), String> {
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
    let mut sections: Sections = [None; 11];
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
    let header = ZkeyHeader {
        n_vars,
        n_public,
        domain_size,
    };
    Ok((header, sections))
}

/// What the prover needs from a zkey: the proving key and the `A` and `B` matrices.
#[derive(Debug)]
pub(crate) struct ParsedZkey {
    pub(crate) header: ZkeyHeader,
    pub(crate) proving_key: ProvingKey<Bn254>,
    /// Rows of `A` and `B`, one per constraint (circom's reduction needs no `C`).
    pub(crate) a: Matrix<Fr>,
    pub(crate) b: Matrix<Fr>,
    /// Constraints, not counting the rows of the public inputs that snarkjs appends.
    pub(crate) num_constraints: usize,
}

/// Parses a Groth16 BN254 zkey whose layout [`check`] accepts, validating every point (on
/// the curve, in the right subgroup) and every number (below its modulus).
pub(crate) fn parse(bytes: &[u8]) -> Result<ParsedZkey, crate::error::ZkError> {
    read(bytes).map_err(crate::error::ZkError::Zkey)
}

fn read(bytes: &[u8]) -> Result<ParsedZkey, String> {
    let (header, sections) = layout(bytes)?;
    let body = |id: usize| -> Result<&[u8], String> {
        let (start, size) = sections[id].ok_or(format!("section {id} is missing"))?;
        let end = usize::try_from(size)
            .ok()
            .and_then(|size| start.checked_add(size))
            .filter(|end| *end <= bytes.len())
            .ok_or(format!("section {id} runs past the end of the file"))?;
        Ok(&bytes[start..end])
    };
    // The header's points follow the two moduli, the counts and the domain size.
    let mut h = Cursor {
        bytes: body(2)?,
        at: 0,
    };
    h.take(4 + 32 + 4 + 32 + 4 + 4 + 4)?;
    let alpha_g1 = g1(h.take(G1)?, 2)?;
    let beta_g1 = g1(h.take(G1)?, 2)?;
    let beta_g2 = g2(h.take(G2)?, 2)?;
    let gamma_g2 = g2(h.take(G2)?, 2)?;
    let delta_g1 = g1(h.take(G1)?, 2)?;
    let delta_g2 = g2(h.take(G2)?, 2)?;

    let g1s = |id: usize| -> Result<Vec<G1Affine>, String> {
        body(id)?
            .par_chunks_exact(G1 as usize)
            .map(|point| g1(point, id))
            .collect()
    };
    let vk = VerifyingKey {
        alpha_g1,
        beta_g2,
        gamma_g2,
        delta_g2,
        gamma_abc_g1: g1s(3)?,
    };
    let proving_key = ProvingKey {
        vk,
        beta_g1,
        delta_g1,
        a_query: g1s(5)?,
        b_g1_query: g1s(6)?,
        b_g2_query: body(7)?
            .par_chunks_exact(G2 as usize)
            .map(|point| g2(point, 7))
            .collect::<Result<_, _>>()?,
        h_query: g1s(9)?,
        l_query: g1s(8)?,
    };

    // Coefficients: matrix, constraint and signal were range-checked by `layout`.
    let domain_size = header.domain_size as usize;
    let mut matrices: [Matrix<Fr>; 2] =
        [vec![Vec::new(); domain_size], vec![Vec::new(); domain_size]];
    let mut coeffs = Cursor {
        bytes: body(4)?,
        at: 0,
    };
    let n_coeffs = coeffs.u32()?;
    let mut max_constraint = 0;
    for _ in 0..n_coeffs {
        let matrix = coeffs.u32()? as usize;
        let constraint = coeffs.u32()? as usize;
        let signal = coeffs.u32()? as usize;
        // snarkjs stores a coefficient `c` as the Montgomery form of `c·R`: read it as
        // Montgomery limbs, and once more to remove the extra factor.
        let twice = Fr::new_unchecked(below_modulus::<Fr>(coeffs.take(32)?, 4)?);
        let value = Fr::new_unchecked(twice.into_bigint());
        let row = matrices
            .get_mut(matrix)
            .and_then(|m| m.get_mut(constraint))
            .ok_or("a coefficient is out of range")?;
        row.push((value, signal));
        max_constraint = max_constraint.max(constraint);
    }
    let num_constraints = max_constraint - header.n_public as usize;
    let [mut a, mut b] = matrices;
    a.truncate(num_constraints);
    b.truncate(num_constraints);
    Ok(ParsedZkey {
        header,
        proving_key,
        a,
        b,
        num_constraints,
    })
}

/// 32 little-endian bytes as the limbs of an element of `F`, refused at or above its modulus.
fn below_modulus<F: PrimeField<BigInt = BigInt<4>>>(
    bytes: &[u8],
    section: usize,
) -> Result<BigInt<4>, String> {
    let mut limbs = [0u64; 4];
    for (limb, word) in limbs.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        *limb = u64::from_le_bytes(w);
    }
    let value = BigInt(limbs);
    if bytes.len() != 32 || value >= F::MODULUS {
        return Err(format!(
            "a number in section {section} is not below the field's modulus"
        ));
    }
    Ok(value)
}

/// An element of `Fq` in snarkjs's layout: its Montgomery limbs.
fn fq(bytes: &[u8], section: usize) -> Result<Fq, String> {
    Ok(Fq::new_unchecked(below_modulus::<Fq>(bytes, section)?))
}

/// A G1 point (x, y); (0, 0) is the identity.
fn g1(bytes: &[u8], section: usize) -> Result<G1Affine, String> {
    let (x, y) = (fq(&bytes[..32], section)?, fq(&bytes[32..64], section)?);
    if x.is_zero() && y.is_zero() {
        return Ok(G1Affine::identity());
    }
    let point = G1Affine::new_unchecked(x, y);
    valid(point, section)
}

/// A G2 point (x, y) over `Fq2`, each as two `Fq`; all zero is the identity.
fn g2(bytes: &[u8], section: usize) -> Result<G2Affine, String> {
    let f = |at: usize| fq(&bytes[at..at + 32], section);
    let (x, y) = (Fq2::new(f(0)?, f(32)?), Fq2::new(f(64)?, f(96)?));
    if x.is_zero() && y.is_zero() {
        return Ok(G2Affine::identity());
    }
    valid(G2Affine::new_unchecked(x, y), section)
}

/// `point` if it is on the curve and in the prime-order subgroup.
fn valid<C: SWCurveConfig>(point: Affine<C>, section: usize) -> Result<Affine<C>, String> {
    if point.is_on_curve() && point.is_in_correct_subgroup_assuming_on_curve() {
        Ok(point)
    } else {
        Err(format!(
            "a curve point in section {section} is invalid (off the curve or outside the group)"
        ))
    }
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
