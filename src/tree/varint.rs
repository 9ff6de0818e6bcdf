//! Variable-length integers for packed nodes (`tree::packed`): LEB128, seven bits a byte,
//! low bits first, and zigzag for signed values, so that the small numbers a stat mostly
//! holds (a version, the step from one zxid to the next) take a byte.

use bytes::BufMut;
use jute::DecodeError;

/// Most bytes a `u64` takes.
pub const LEN_MAX: usize = 10;

/// Appends `value` as LEB128.
pub fn put_u64(out: &mut impl BufMut, mut value: u64) {
    while value >= 0x80 {
        out.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

/// Appends `value` zigzagged: 0, -1, 1, -2 ... become 0, 1, 2, 3 ...
pub fn put_i64(out: &mut impl BufMut, value: i64) {
    put_u64(out, zigzag(value));
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// How many bytes [`put_u64`] writes for `value`.
pub fn len_u64(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// Reads a LEB128 `u64` at `*at` in `bytes`, moving `*at` past it; refuses one longer
/// than ten bytes or past 64 bits. A value of one byte (a length, a flag's step) is read
/// inline; longer ones in [`read_long_u64`].
///
/// # Errors
/// When the input ends inside it, or it does not fit in 64 bits.
#[inline]
pub fn read_u64(bytes: &[u8], at: &mut usize, what: &'static str) -> Result<u64, DecodeError> {
    match bytes.get(*at) {
        Some(&byte) if byte < 0x80 => {
            *at += 1;
            Ok(u64::from(byte))
        }
        _ => read_long_u64(bytes, at, what),
    }
}

/// [`read_u64`] for a value of more than one byte.
fn read_long_u64(bytes: &[u8], at: &mut usize, what: &'static str) -> Result<u64, DecodeError> {
    let offset = *at;
    let mut value = 0u64;
    for index in 0..LEN_MAX {
        let Some(&byte) = bytes.get(offset + index) else {
            return Err(DecodeError::Incomplete { what, offset, needed: 1 });
        };
        let bits = u64::from(byte & 0x7f);
        if index == LEN_MAX - 1 && bits > 1 {
            break;
        }
        value |= bits << (7 * index);
        if byte & 0x80 == 0 {
            *at = offset + index + 1;
            return Ok(value);
        }
    }
    Err(DecodeError::Invalid { what, offset, reason: "a variable-length integer past 64 bits" })
}

/// Reads a zigzagged `i64`.
///
/// # Errors
/// As [`read_u64`].
#[inline]
pub fn read_i64(bytes: &[u8], at: &mut usize, what: &'static str) -> Result<i64, DecodeError> {
    let zigzag = read_u64(bytes, at, what)?;
    Ok((zigzag >> 1) as i64 ^ -((zigzag & 1) as i64))
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;

    fn encoded(put: impl FnOnce(&mut BytesMut)) -> BytesMut {
        let mut out = BytesMut::new();
        put(&mut out);
        out
    }

    #[test]
    fn unsigned_values_round_trip_in_as_few_bytes_as_they_need() {
        for (value, len) in [(0, 1), (1, 1), (127, 1), (128, 2), (16_383, 2), (16_384, 3)]
            .into_iter()
            .chain([(u64::from(u32::MAX), 5), (u64::MAX, 10)])
        {
            let bytes = encoded(|out| put_u64(out, value));
            assert_eq!(bytes.len(), len, "{value}");
            assert_eq!(len_u64(value), len, "{value}");
            let mut at = 0;
            assert_eq!(read_u64(&bytes, &mut at, "value").expect("decodes"), value);
            assert_eq!(at, len);
        }
    }

    #[test]
    fn signed_values_zigzag_so_small_ones_stay_small() {
        for (value, len) in [(0, 1), (-1, 1), (1, 1), (-64, 1), (64, 2), (i64::MIN, 10)]
            .into_iter()
            .chain([(i64::MAX, 10), (-123_456_789, 4)])
        {
            let bytes = encoded(|out| put_i64(out, value));
            assert_eq!(bytes.len(), len, "{value}");
            assert_eq!(len_u64(zigzag(value)), len, "{value}");
            assert_eq!(read_i64(&bytes, &mut 0, "value").expect("decodes"), value);
        }
    }

    #[test]
    fn reading_starts_where_asked_and_moves_past_the_value() {
        let bytes = [0xff, 0x96, 0x01, 0x07];
        let mut at = 1;
        assert_eq!(read_u64(&bytes, &mut at, "value").expect("decodes"), 150);
        assert_eq!(at, 3);
        assert_eq!(read_u64(&bytes, &mut at, "value").expect("decodes"), 7);
        assert_eq!(at, 4);
    }

    #[test]
    fn truncated_and_overlong_encodings_are_errors() {
        let err = read_u64(&[0x80, 0x80], &mut 0, "value").expect_err("ends inside");
        assert!(matches!(err, DecodeError::Incomplete { .. }), "{err}");
        let err = read_u64(&[0xff; 11], &mut 0, "value").expect_err("too long");
        assert!(matches!(err, DecodeError::Invalid { .. }), "{err}");
        let past_64_bits = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        let err = read_u64(&past_64_bits, &mut 0, "value").expect_err("65 bits");
        assert!(matches!(err, DecodeError::Invalid { .. }), "{err}");
    }
}
