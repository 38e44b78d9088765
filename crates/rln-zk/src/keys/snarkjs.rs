//! snarkjs JSON forms of verifying keys and proofs (decimal coordinates), so that keys and
//! proofs move between rln-node and the circom tool chain.

use ark_bn254::{Bn254, Fq, Fq2, G1Affine, G2Affine};
use ark_ec::AffineRepr;
use ark_ff::{BigInteger, PrimeField, Zero};
use ark_groth16::VerifyingKey;
use num_bigint::BigUint;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ZkError;
use crate::proof::Groth16Proof;

/// A Groth16 proof as `snarkjs groth16 prove` writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnarkjsProof {
    /// A in G1, projective `[x, y, z]`.
    pub pi_a: Vec<String>,
    /// B in G2, `[[x.c0, x.c1], [y.c0, y.c1], [z.c0, z.c1]]`.
    pub pi_b: Vec<Vec<String>>,
    /// C in G1.
    pub pi_c: Vec<String>,
    /// `groth16` (may be absent).
    #[serde(default = "groth16")]
    pub protocol: String,
    /// `bn128` (may be absent).
    #[serde(default = "bn128")]
    pub curve: String,
}

fn groth16() -> String {
    "groth16".into()
}

fn bn128() -> String {
    "bn128".into()
}

fn fq_from_dec(s: &str) -> Result<Fq, String> {
    let value: BigUint = s
        .parse()
        .map_err(|_| format!("`{s}` is not a decimal integer"))?;
    let modulus: BigUint = Fq::MODULUS.into();
    if value >= modulus {
        return Err(format!("`{s}` is not below the base field modulus"));
    }
    Ok(Fq::from(value))
}

fn fq_to_dec(value: &Fq) -> String {
    BigUint::from_bytes_le(&value.into_bigint().to_bytes_le()).to_string()
}

fn g1_from(coords: &[String]) -> Result<G1Affine, String> {
    let [x, y, z] = coords else {
        return Err(format!(
            "a G1 point has 3 coordinates, got {}",
            coords.len()
        ));
    };
    let (x, y, z) = (fq_from_dec(x)?, fq_from_dec(y)?, fq_from_dec(z)?);
    if z.is_zero() {
        return Ok(G1Affine::zero());
    }
    if z != Fq::from(1u64) {
        return Err("G1 point is not in affine form (z must be 1)".into());
    }
    let point = G1Affine::new_unchecked(x, y);
    if !point.is_on_curve() || !point.is_in_correct_subgroup_assuming_on_curve() {
        return Err("G1 point is not on the curve".into());
    }
    Ok(point)
}

fn fq2_from(pair: &[String]) -> Result<Fq2, String> {
    let [c0, c1] = pair else {
        return Err(format!("an Fq2 element has 2 parts, got {}", pair.len()));
    };
    Ok(Fq2::new(fq_from_dec(c0)?, fq_from_dec(c1)?))
}

fn g2_from(coords: &[Vec<String>]) -> Result<G2Affine, String> {
    let [x, y, z] = coords else {
        return Err(format!(
            "a G2 point has 3 coordinates, got {}",
            coords.len()
        ));
    };
    let (x, y, z) = (fq2_from(x)?, fq2_from(y)?, fq2_from(z)?);
    if z.is_zero() {
        return Ok(G2Affine::zero());
    }
    if z != Fq2::new(Fq::from(1u64), Fq::zero()) {
        return Err("G2 point is not in affine form (z must be 1)".into());
    }
    let point = G2Affine::new_unchecked(x, y);
    if !point.is_on_curve() || !point.is_in_correct_subgroup_assuming_on_curve() {
        return Err("G2 point is not on the curve or not in the prime-order subgroup".into());
    }
    Ok(point)
}

fn g1_to(point: &G1Affine) -> Vec<String> {
    match point.xy() {
        Some((x, y)) => vec![fq_to_dec(&x), fq_to_dec(&y), "1".into()],
        None => vec!["0".into(), "1".into(), "0".into()],
    }
}

fn g2_to(point: &G2Affine) -> Vec<Vec<String>> {
    match point.xy() {
        Some((x, y)) => vec![
            vec![fq_to_dec(&x.c0), fq_to_dec(&x.c1)],
            vec![fq_to_dec(&y.c0), fq_to_dec(&y.c1)],
            vec!["1".into(), "0".into()],
        ],
        None => vec![
            vec!["0".into(), "0".into()],
            vec!["1".into(), "0".into()],
            vec!["0".into(), "0".into()],
        ],
    }
}

impl SnarkjsProof {
    /// The snarkjs form of an arkworks proof.
    pub fn from_proof(proof: &Groth16Proof) -> Self {
        Self {
            pi_a: g1_to(&proof.a),
            pi_b: g2_to(&proof.b),
            pi_c: g1_to(&proof.c),
            protocol: "groth16".into(),
            curve: "bn128".into(),
        }
    }

    /// The arkworks proof, with points checked to be on the curve and in their subgroups.
    pub fn to_proof(&self) -> Result<Groth16Proof, crate::error::DecodeError> {
        let bad = crate::error::DecodeError::MalformedProof;
        if self.protocol != "groth16" || self.curve != "bn128" {
            return Err(bad(format!(
                "a {} proof over {} is not a Groth16 proof over bn128",
                self.protocol, self.curve
            )));
        }
        Ok(Groth16Proof {
            a: g1_from(&self.pi_a).map_err(bad)?,
            b: g2_from(&self.pi_b).map_err(bad)?,
            c: g1_from(&self.pi_c).map_err(bad)?,
        })
    }
}

fn strings(value: &Value, what: &str) -> Result<Vec<String>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("`{what}` is not an array"))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("`{what}` holds a non-string"))
        })
        .collect()
}

fn string_pairs(value: &Value, what: &str) -> Result<Vec<Vec<String>>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("`{what}` is not an array"))?
        .iter()
        .map(|v| strings(v, what))
        .collect()
}

/// Parses a snarkjs `verification_key.json` (Groth16 over bn128).
pub fn verifying_key_from_json(json: &str) -> Result<VerifyingKey<Bn254>, ZkError> {
    let parse = || -> Result<VerifyingKey<Bn254>, String> {
        let v: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let field = |name: &str| v.get(name).ok_or_else(|| format!("`{name}` is missing"));
        if field("protocol")?.as_str() != Some("groth16") {
            return Err("`protocol` is not groth16".into());
        }
        if field("curve")?.as_str() != Some("bn128") {
            return Err("`curve` is not bn128".into());
        }
        let ic = field("IC")?
            .as_array()
            .ok_or("`IC` is not an array")?
            .iter()
            .map(|p| g1_from(&strings(p, "IC")?))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(n) = v.get("nPublic").and_then(Value::as_u64) {
            if n as usize + 1 != ic.len() {
                return Err(format!("`nPublic` is {n} but `IC` has {} points", ic.len()));
            }
        }
        Ok(VerifyingKey {
            alpha_g1: g1_from(&strings(field("vk_alpha_1")?, "vk_alpha_1")?)?,
            beta_g2: g2_from(&string_pairs(field("vk_beta_2")?, "vk_beta_2")?)?,
            gamma_g2: g2_from(&string_pairs(field("vk_gamma_2")?, "vk_gamma_2")?)?,
            delta_g2: g2_from(&string_pairs(field("vk_delta_2")?, "vk_delta_2")?)?,
            gamma_abc_g1: ic,
        })
    };
    parse().map_err(ZkError::VerifyingKey)
}

/// The public signals of a proof as snarkjs writes them (decimal strings).
pub fn public_signals_to_json(inputs: &[ark_bn254::Fr]) -> Vec<String> {
    inputs
        .iter()
        .map(|f| BigUint::from_bytes_le(&f.into_bigint().to_bytes_le()).to_string())
        .collect()
}

/// Reads snarkjs public signals (decimal strings, each below the scalar modulus).
pub fn public_signals_from_json(
    signals: &[String],
) -> Result<Vec<ark_bn254::Fr>, crate::error::DecodeError> {
    let modulus: BigUint = ark_bn254::Fr::MODULUS.into();
    signals
        .iter()
        .map(|s| {
            let bad = |why: &str| crate::error::DecodeError::PublicSignal(format!("`{s}` {why}"));
            let value: BigUint = s.parse().map_err(|_| bad("is not decimal"))?;
            if value >= modulus {
                return Err(bad("is not below the scalar field modulus"));
            }
            Ok(ark_bn254::Fr::from(value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_json_roundtrip() {
        let proof = Groth16Proof {
            a: G1Affine::generator(),
            b: G2Affine::generator(),
            c: (G1Affine::generator() * ark_bn254::Fr::from(5u64)).into(),
        };
        let json = SnarkjsProof::from_proof(&proof);
        assert_eq!(json.to_proof(), Ok(proof));
    }

    #[test]
    fn bad_coordinates_are_refused() {
        let mut json = SnarkjsProof::from_proof(&Groth16Proof {
            a: G1Affine::generator(),
            b: G2Affine::generator(),
            c: G1Affine::generator(),
        });
        json.pi_a[1] = "3".into();
        assert!(json.to_proof().is_err());
        json.pi_a[1] = Fq::MODULUS.to_string();
        assert!(json.to_proof().is_err());
        assert!(matches!(
            verifying_key_from_json("{\"protocol\":\"plonk\"}"),
            Err(ZkError::VerifyingKey(_))
        ));
    }
}
