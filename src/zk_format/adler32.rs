//! Adler-32, the checksum ZooKeeper's snapshots and transaction logs carry
//! (`java.util.zip.Adler32`).

/// The largest prime below 2^16.
const MODULUS: u32 = 65_521;
/// Bytes that may be summed before the sums must be reduced without overflowing `u32`.
const CHUNK: usize = 5552;

/// The Adler-32 checksum of `bytes`, as Java's `Adler32.getValue()` returns it.
pub fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in bytes.chunks(CHUNK) {
        for byte in chunk {
            a += u32::from(*byte);
            b += a;
        }
        a %= MODULUS;
        b %= MODULUS;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_values() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
        // A long run exercises the reduction between chunks.
        assert_eq!(adler32(&vec![0xff; 100_000]), 0x149a_302c);
    }
}
