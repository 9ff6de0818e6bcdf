//! Encoding of jute primitives into a `BytesMut`.

use bytes::{BufMut, BytesMut};

/// Appends a jute `int`.
pub fn write_i32(out: &mut BytesMut, value: i32) {
    out.put_i32(value);
}

/// Appends a jute `long`.
pub fn write_i64(out: &mut BytesMut, value: i64) {
    out.put_i64(value);
}

/// Appends a jute `boolean` as one byte, 0 or 1.
pub fn write_bool(out: &mut BytesMut, value: bool) {
    out.put_u8(u8::from(value));
}

/// Appends a length prefix; lengths beyond `i32::MAX` cannot be represented in jute and
/// never reach here because frames are capped far below that.
pub fn write_len(out: &mut BytesMut, len: usize) {
    out.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
}

/// Appends a jute `buffer`; `None` is written as the null length `-1`.
pub fn write_buffer(out: &mut BytesMut, value: Option<&[u8]>) {
    match value {
        None => out.put_i32(-1),
        Some(bytes) => {
            write_len(out, bytes.len());
            out.put_slice(bytes);
        }
    }
}

/// Appends a jute `ustring`.
pub fn write_ustring(out: &mut BytesMut, value: &str) {
    write_buffer(out, Some(value.as_bytes()));
}
