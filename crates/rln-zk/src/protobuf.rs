//! The few protobuf primitives the Waku messages need: varints, length-delimited fields and
//! a reader that walks a message field by field. Hand-written because the messages are small
//! and fixed, and because every decoding failure must become a typed error.

use crate::error::DecodeError;

/// One field's value as the wire carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

/// Walks the fields of one encoded message.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over an encoded message.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// The next `(field number, value)`, or `None` at the end of the message. Groups (wire
    /// types 3 and 4) and field number 0 are errors.
    pub fn next_field(&mut self) -> Result<Option<(u64, Value<'a>)>, DecodeError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 {
            return Err(DecodeError::Protobuf("field number 0"));
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(u64::from_le_bytes(self.take_array()?)),
            2 => Value::Bytes(self.length_delimited()?),
            5 => Value::Fixed32(u32::from_le_bytes(self.take_array()?)),
            _ => return Err(DecodeError::Protobuf("unsupported wire type")),
        };
        Ok(Some((number, value)))
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for (i, byte) in self.buf.iter().enumerate().take(10) {
            let bits = u64::from(byte & 0x7f);
            if i == 9 && bits > 1 {
                return Err(DecodeError::Protobuf("varint overflows 64 bits"));
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        Err(DecodeError::Protobuf("truncated or overlong varint"))
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (head, rest) = self
            .buf
            .split_first_chunk::<N>()
            .ok_or(DecodeError::Protobuf("truncated field"))?;
        self.buf = rest;
        Ok(*head)
    }

    fn length_delimited(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| DecodeError::Protobuf("length too large"))?;
        if self.buf.len() < len {
            return Err(DecodeError::Protobuf("truncated length-delimited field"));
        }
        let (value, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(value)
    }
}

/// Appends a varint.
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a varint field (wire type 0).
pub fn put_varint_field(out: &mut Vec<u8>, field: u64, value: u64) {
    put_varint(out, field << 3);
    put_varint(out, value);
}

/// Appends a length-delimited field (wire type 2).
pub fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Protobuf's zig-zag encoding of a signed integer (`sint64`).
pub fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// The inverse of [`zigzag`].
pub fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_every_wire_type() {
        let mut out = Vec::new();
        put_varint_field(&mut out, 3, 300);
        put_bytes(&mut out, 1, b"abc");
        out.extend_from_slice(&[(4 << 3) | 1, 1, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&[(5 << 3) | 5, 2, 0, 0, 0]);
        let mut r = Reader::new(&out);
        assert_eq!(r.next_field().unwrap(), Some((3, Value::Varint(300))));
        assert_eq!(r.next_field().unwrap(), Some((1, Value::Bytes(b"abc"))));
        assert_eq!(r.next_field().unwrap(), Some((4, Value::Fixed64(1))));
        assert_eq!(r.next_field().unwrap(), Some((5, Value::Fixed32(2))));
        assert_eq!(r.next_field().unwrap(), None);
    }

    #[test]
    fn rejects_broken_framing() {
        for bad in [
            &[0x0a, 5, 1][..],      // length past the end
            &[0x08, 0x80][..],      // truncated varint
            &[0x00, 1][..],         // field number 0
            &[0x0b][..],            // group
            &[(4 << 3) | 1, 1][..], // truncated fixed64
            &[0x08; 1][..],         // key without value
        ] {
            let mut r = Reader::new(bad);
            assert!(r.next_field().is_err(), "{bad:?}");
        }
        let overflow = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
        ];
        assert!(Reader::new(&overflow).next_field().is_err());
    }

    proptest! {
        #[test]
        fn zigzag_roundtrips(v in any::<i64>()) {
            prop_assert_eq!(unzigzag(zigzag(v)), v);
        }

        #[test]
        fn varint_roundtrips(v in any::<u64>()) {
            let mut out = Vec::new();
            put_varint_field(&mut out, 1, v);
            prop_assert_eq!(Reader::new(&out).next_field().unwrap(), Some((1, Value::Varint(v))));
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&bytes);
            while let Ok(Some(_)) = r.next_field() {}
        }
    }
}
