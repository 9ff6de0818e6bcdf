//! Decoding of jute primitives from a `Bytes` buffer, with every length checked before use.

use bytes::Bytes;

use crate::DecodeError;

/// A cursor over one encoded buffer.
///
/// Buffers are returned as zero-copy slices of the input, so decoding a request does not
/// copy its payload. Every length prefix is checked against the bytes that remain before
/// anything is allocated, so a hostile length can cost at most the size of the input.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a Bytes,
    position: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the first byte of `buf`.
    pub fn new(buf: &'a Bytes) -> Self {
        Reader { buf, position: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.position
    }

    /// The unconsumed rest of the buffer, without consuming it.
    pub fn rest(&self) -> Bytes {
        self.buf.slice(self.position..)
    }

    /// Reads a value in an encoding jute does not know (zkrs's packed nodes) with
    /// `decode`, zero-copy: it gets the whole buffer and the position to start at, and
    /// returns the value and the position after it.
    ///
    /// # Errors
    /// What `decode` returns, or `Invalid` if the position it returns is not between the
    /// start and the buffer's end.
    pub fn read_foreign<T>(
        &mut self,
        what: &'static str,
        decode: impl FnOnce(&'a [u8], usize) -> Result<(T, usize), DecodeError>,
    ) -> Result<T, DecodeError> {
        let start = self.position;
        let (value, end) = decode(self.buf, start)?;
        if end < start || end > self.buf.len() {
            return Err(DecodeError::Invalid {
                what,
                offset: start,
                reason: "decoded past its end",
            });
        }
        self.position = end;
        Ok(value)
    }

    fn take(&mut self, what: &'static str, len: usize) -> Result<&'a [u8], DecodeError> {
        let start = self.position;
        let Some(end) = start.checked_add(len) else {
            return Err(DecodeError::Invalid { what, offset: start, reason: "length overflows" });
        };
        match self.buf.get(start..end) {
            Some(bytes) => {
                self.position = end;
                Ok(bytes)
            }
            None => {
                Err(DecodeError::Incomplete { what, offset: start, needed: end - self.buf.len() })
            }
        }
    }

    fn take_array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(what, N)?;
        let mut array = [0u8; N];
        array.copy_from_slice(bytes);
        Ok(array)
    }

    /// Reads a jute `int`: 4 bytes, big-endian.
    pub fn read_i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.take_array(what)?))
    }

    /// Reads a jute `long`: 8 bytes, big-endian.
    pub fn read_i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.take_array(what)?))
    }

    /// Reads one raw byte (not a jute type; used by formats built on jute primitives).
    pub fn read_u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        let [byte] = self.take_array::<1>(what)?;
        Ok(byte)
    }

    /// Reads `len` raw bytes as a slice of the input (not a jute type; used by formats
    /// built on jute primitives that prefix lengths their own way).
    pub fn read_bytes(&mut self, what: &'static str, len: usize) -> Result<Bytes, DecodeError> {
        let start = self.position;
        self.take(what, len)?;
        Ok(self.buf.slice(start..start + len))
    }

    /// Reads a jute `boolean`: one byte, any non-zero value is true (as Java's readBoolean).
    pub fn read_bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        let [byte] = self.take_array::<1>(what)?;
        Ok(byte != 0)
    }

    /// Reads a length prefix: `-1` is null (`None`), other negatives are invalid, and a
    /// positive length must fit in what remains (each element taking at least
    /// `element_len_min` bytes) before the caller allocates for it.
    pub fn read_len(
        &mut self,
        what: &'static str,
        element_len_min: usize,
    ) -> Result<Option<usize>, DecodeError> {
        let offset = self.position;
        let len = self.read_i32(what)?;
        if len == -1 {
            return Ok(None);
        }
        let Ok(len) = usize::try_from(len) else {
            return Err(DecodeError::Invalid { what, offset, reason: "negative length" });
        };
        let bytes_needed = len.saturating_mul(element_len_min.max(1));
        if bytes_needed > self.remaining() {
            return Err(DecodeError::Incomplete {
                what,
                offset,
                needed: bytes_needed - self.remaining(),
            });
        }
        Ok(Some(len))
    }

    /// Reads a jute `buffer`: a length (`-1` for null) and that many bytes.
    pub fn read_buffer(&mut self, what: &'static str) -> Result<Option<Bytes>, DecodeError> {
        let Some(len) = self.read_len(what, 1)? else {
            return Ok(None);
        };
        self.read_bytes(what, len).map(Some)
    }

    /// Reads a jute `ustring`: a length (`-1` for null) and UTF-8 bytes. Invalid UTF-8 is
    /// replaced as Java's `new String(bytes, UTF_8)` does, so both servers see the same path.
    pub fn read_ustring(&mut self, what: &'static str) -> Result<Option<String>, DecodeError> {
        let Some(len) = self.read_len(what, 1)? else {
            return Ok(None);
        };
        let bytes = self.take(what, len)?;
        Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_decoder_reads_from_the_position_and_moves_it_on() {
        let buf = Bytes::from_static(&[1, 2, 3, 4]);
        let mut reader = Reader::new(&buf);
        assert_eq!(reader.read_u8("first"), Ok(1));
        let pair = reader.read_foreign("pair", |bytes, at| Ok((bytes.get(at..at + 2), at + 2)));
        assert_eq!(pair, Ok(Some(&[2, 3][..])));
        assert_eq!(reader.remaining(), 1);
        let overrun = reader.read_foreign("past the end", |_, at| Ok(((), at + 2)));
        assert!(matches!(overrun, Err(DecodeError::Invalid { what: "past the end", .. })));
        assert_eq!(reader.remaining(), 1, "a failed read consumes nothing");
    }
}
