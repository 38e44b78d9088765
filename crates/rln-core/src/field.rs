//! The BN254 scalar field and its wire encoding: 32 bytes, little-endian, canonical.

use ark_ff::{BigInteger, PrimeField};

pub use ark_bn254::Fr;

use crate::error::FieldError;

/// Bytes in one encoded field element.
pub const FR_BYTES: usize = 32;

/// Encodes `value` as 32 little-endian bytes.
pub fn fr_to_le_bytes(value: &Fr) -> [u8; FR_BYTES] {
    let mut out = [0u8; FR_BYTES];
    out.copy_from_slice(&value.into_bigint().to_bytes_le());
    out
}

/// Decodes 32 little-endian bytes, refusing values at or above the modulus.
pub fn fr_from_le_bytes(bytes: &[u8; FR_BYTES]) -> Result<Fr, FieldError> {
    let mut limbs = [0u64; 4];
    for (limb, chunk) in limbs.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        *limb = u64::from_le_bytes(word);
    }
    Fr::from_bigint(ark_ff::BigInt::new(limbs)).ok_or(FieldError::NonCanonical)
}

/// Decodes a slice that must be exactly 32 canonical little-endian bytes.
pub fn fr_from_le_slice(bytes: &[u8]) -> Result<Fr, FieldError> {
    let array: &[u8; FR_BYTES] = bytes
        .try_into()
        .map_err(|_| FieldError::WrongLength(bytes.len()))?;
    fr_from_le_bytes(array)
}

/// Reads up to 32 bytes as a little-endian integer reduced modulo r. Only for values whose
/// definition says "mod r" (hash outputs); wire decoding uses [`fr_from_le_bytes`].
pub fn fr_from_le_bytes_mod_order(bytes: &[u8]) -> Fr {
    Fr::from_le_bytes_mod_order(bytes)
}

/// Encodes a `u64` as a field element (used for limits, message ids, epochs).
pub fn fr_from_u64(value: u64) -> Fr {
    Fr::from(value)
}

/// The one text form of a field element in logs, the CLI and the REST API: `0x` and 64 hex
/// digits of the number, most significant first (as Ethereum tools and the contract's events
/// show it). The wire keeps its 32 little-endian bytes; only text reads big-endian.
pub fn fr_to_hex(value: &Fr) -> String {
    let mut bytes = fr_to_le_bytes(value);
    bytes.reverse();
    let mut out = String::with_capacity(2 + 2 * FR_BYTES);
    out.push_str("0x");
    for b in bytes {
        out.push(HEX_DIGITS[usize::from(b >> 4)] as char);
        out.push(HEX_DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Reads the text form of [`fr_to_hex`]: `0x` and exactly 64 hex digits (either case),
/// refusing values at or above the modulus.
pub fn fr_from_hex(text: &str) -> Result<Fr, FieldError> {
    let digits = text.strip_prefix("0x").ok_or(FieldError::NotHex)?;
    if digits.len() != 2 * FR_BYTES {
        return Err(FieldError::WrongLength(digits.len() / 2));
    }
    let mut le = [0u8; FR_BYTES];
    for (i, pair) in digits.as_bytes().chunks_exact(2).enumerate() {
        let nibble = |c: u8| (c as char).to_digit(16).ok_or(FieldError::NotHex);
        let byte = (nibble(pair[0])? << 4 | nibble(pair[1])?) as u8;
        le[FR_BYTES - 1 - i] = byte;
    }
    fr_from_le_bytes(&le)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// r in little-endian bytes.
    fn modulus_le() -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&Fr::MODULUS.to_bytes_le());
        out
    }

    #[test]
    fn modulus_and_above_are_refused() {
        let r = modulus_le();
        assert_eq!(fr_from_le_bytes(&r), Err(FieldError::NonCanonical));
        assert_eq!(fr_from_le_bytes(&[0xff; 32]), Err(FieldError::NonCanonical));
        let mut r_minus_one = r;
        r_minus_one[0] -= 1;
        assert_eq!(fr_from_le_bytes(&r_minus_one), Ok(-Fr::from(1u64)));
    }

    #[test]
    fn wrong_lengths_are_refused() {
        assert_eq!(
            fr_from_le_slice(&[0u8; 31]),
            Err(FieldError::WrongLength(31))
        );
        assert_eq!(
            fr_from_le_slice(&[0u8; 33]),
            Err(FieldError::WrongLength(33))
        );
        assert_eq!(
            fr_from_le_slice(&[1u8; 32]).map(|f| fr_to_le_bytes(&f)),
            Ok([1u8; 32])
        );
    }

    #[test]
    fn small_values_are_little_endian() {
        let bytes = fr_to_le_bytes(&fr_from_u64(0x0102));
        assert_eq!(&bytes[..3], &[0x02, 0x01, 0x00]);
    }

    #[test]
    fn text_form_is_big_endian_with_0x_and_refuses_bad_input() {
        let text = fr_to_hex(&fr_from_u64(0x0102));
        assert_eq!(text.len(), 66);
        assert!(text.starts_with("0x0000"));
        assert!(text.ends_with("0102"));
        assert_eq!(fr_from_hex(&text), Ok(fr_from_u64(0x0102)));
        assert_eq!(
            fr_from_hex(&text.to_uppercase().replace("0X", "0x")),
            Ok(fr_from_u64(0x0102))
        );
        assert_eq!(fr_from_hex(&text[2..]), Err(FieldError::NotHex));
        assert_eq!(fr_from_hex("0x0102"), Err(FieldError::WrongLength(2)));
        assert_eq!(
            fr_from_hex(&format!("0x{}", "g".repeat(64))),
            Err(FieldError::NotHex)
        );
        assert_eq!(
            fr_from_hex(&format!("0x{}", "f".repeat(64))),
            Err(FieldError::NonCanonical)
        );
    }

    proptest! {
        #[test]
        fn text_form_roundtrips(limbs in any::<[u64; 4]>()) {
            let value = Fr::from_le_bytes_mod_order(&ark_ff::BigInt::new(limbs).to_bytes_le());
            prop_assert_eq!(fr_from_hex(&fr_to_hex(&value)), Ok(value));
        }

        #[test]
        fn decode_never_panics_and_roundtrips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(value) = fr_from_le_slice(&bytes) {
                prop_assert_eq!(&fr_to_le_bytes(&value)[..], &bytes[..]);
            }
        }

        #[test]
        fn encode_decode_roundtrip(limbs in any::<[u64; 4]>()) {
            let value = Fr::from_le_bytes_mod_order(&ark_ff::BigInt::new(limbs).to_bytes_le());
            prop_assert_eq!(fr_from_le_bytes(&fr_to_le_bytes(&value)), Ok(value));
        }
    }
}
