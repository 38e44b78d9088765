//! A bounded reader over a key file in memory: every read is checked against what is left of
//! the file, so a truncated or corrupt file is an error and never a panic.

pub(super) struct Cursor<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) at: usize,
}

impl<'a> Cursor<'a> {
    /// The next `n` bytes.
    pub(super) fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
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

    /// A little-endian u32.
    pub(super) fn u32(&mut self) -> Result<u64, String> {
        let b = self.take(4)?;
        Ok(u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
    }

    /// A little-endian u64.
    pub(super) fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut w = [0u8; 8];
        w.copy_from_slice(b);
        Ok(u64::from_le_bytes(w))
    }

    /// Bytes not read yet.
    pub(super) fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }
}
