//! Test-only generation of records from fuzzer-style entropy, for the property tests.
//!
//! proptest hands us a byte vector; [`Source`] turns it into field values so one
//! strategy covers every record type. Shrinking the bytes shrinks the record.

use bytes::Bytes;

/// Entropy consumed front to back; once exhausted it yields zeros.
pub struct Source<'a> {
    bytes: &'a [u8],
}

impl<'a> Source<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Source { bytes }
    }

    fn byte(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((first, rest)) => {
                self.bytes = rest;
                *first
            }
            None => 0,
        }
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |acc, _| (acc << 8) | u64::from(self.byte()))
    }

    fn small_len(&mut self) -> usize {
        usize::from(self.byte() % 6)
    }
}

/// A value that can be built from a [`Source`].
pub trait Generate {
    fn generate(source: &mut Source<'_>) -> Self;
}

impl Generate for i32 {
    fn generate(source: &mut Source<'_>) -> Self {
        source.u64() as i32
    }
}

impl Generate for i64 {
    fn generate(source: &mut Source<'_>) -> Self {
        source.u64() as i64
    }
}

impl Generate for bool {
    fn generate(source: &mut Source<'_>) -> Self {
        source.byte() & 1 == 1
    }
}

impl Generate for String {
    fn generate(source: &mut Source<'_>) -> Self {
        let len = source.small_len() * 3;
        (0..len).map(|_| char::from(b'!' + source.byte() % 90)).collect::<String>() + "/é"
    }
}

impl Generate for Option<String> {
    fn generate(source: &mut Source<'_>) -> Self {
        bool::generate(source).then(|| String::generate(source))
    }
}

impl Generate for Bytes {
    fn generate(source: &mut Source<'_>) -> Self {
        let len = source.small_len() * 7;
        (0..len).map(|_| source.byte()).collect::<Vec<u8>>().into()
    }
}

impl Generate for Option<Bytes> {
    fn generate(source: &mut Source<'_>) -> Self {
        bool::generate(source).then(|| Bytes::generate(source))
    }
}

impl<T: Generate> Generate for Vec<T> {
    fn generate(source: &mut Source<'_>) -> Self {
        let len = source.small_len();
        (0..len).map(|_| T::generate(source)).collect()
    }
}
