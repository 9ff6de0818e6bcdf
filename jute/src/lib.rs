//! Jute: the serialization ZooKeeper uses on the wire and in its transaction log.
//!
//! This crate owns the byte layout and nothing else: primitives ([`reader`], [`writer`]),
//! the [`Record`] trait, every record of the client protocol and of the transaction log
//! ([`records`]), the opcodes ([`opcode`]) and error codes ([`code`]). It knows nothing of
//! sockets, sessions or the tree; `zkrs::proto` gives these records their meaning.
//!
//! Decoding never panics and never allocates more than the input could justify: every
//! length prefix is checked against the bytes that remain (see [`Reader::read_len`]).
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::indexing_slicing)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod code;
pub mod error;
pub mod opcode;
pub mod reader;
pub mod records;
pub mod writer;

#[cfg(test)]
mod generate;
#[cfg(test)]
mod roundtrip_test;

use bytes::{Bytes, BytesMut};

pub use code::Code;
pub use error::DecodeError;
pub use opcode::OpCode;
pub use reader::Reader;

/// A request body whose record type varies at run time (a client's `dyn` argument): any
/// record, or [`Empty`].
pub trait RecordRef {
    /// Appends the body.
    fn write_to(&self, out: &mut BytesMut);
}

impl<T: Record> RecordRef for T {
    fn write_to(&self, out: &mut BytesMut) {
        self.write(out);
    }
}

/// The body of requests that have none (ping, closeSession, whoAmI).
pub struct Empty;

impl RecordRef for Empty {
    fn write_to(&self, _out: &mut BytesMut) {}
}

/// A value with a jute encoding: a primitive, a vector, or a generated record.
pub trait Record: Sized {
    /// The fewest bytes one encoded value takes. Vector counts are checked against it
    /// before allocating, so a forged count cannot reserve more than the input's size.
    const MIN_LEN: usize;

    /// Reads one value; `what` names the field in errors.
    ///
    /// # Errors
    /// [`DecodeError`] if the input is truncated or malformed.
    fn read_as(reader: &mut Reader<'_>, what: &'static str) -> Result<Self, DecodeError>;

    /// Appends the encoding of `self`.
    fn write(&self, out: &mut BytesMut);

    /// The bytes [`Record::write`] appends, so that a buffer can be sized once instead
    /// of grown field by field. Exact for every record defined here (the round-trip test
    /// checks it); one that does not say gives [`Record::MIN_LEN`].
    fn size_hint(&self) -> usize {
        Self::MIN_LEN
    }

    /// Reads one value, naming it by its type in errors.
    ///
    /// # Errors
    /// [`DecodeError`] if the input is truncated or malformed.
    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::read_as(reader, std::any::type_name::<Self>())
    }
}

/// Decodes a `T` from the start of `buf`. Trailing bytes are ignored, as ZooKeeper's Java
/// deserializer ignores them (the optional `readOnly` flag of a connect request relies on it).
///
/// # Errors
/// [`DecodeError`] if `buf` does not start with a valid `T`.
pub fn from_bytes<T: Record>(buf: &Bytes) -> Result<T, DecodeError> {
    T::read(&mut Reader::new(buf))
}

/// Encodes `value` into a fresh buffer.
pub fn to_bytes<T: Record>(value: &T) -> Bytes {
    let mut out = BytesMut::with_capacity(value.size_hint());
    value.write(&mut out);
    out.freeze()
}

impl Record for i32 {
    const MIN_LEN: usize = 4;
    fn read_as(reader: &mut Reader<'_>, what: &'static str) -> Result<Self, DecodeError> {
        reader.read_i32(what)
    }
    fn write(&self, out: &mut BytesMut) {
        writer::write_i32(out, *self);
    }
}

impl Record for i64 {
    const MIN_LEN: usize = 8;
    fn read_as(reader: &mut Reader<'_>, what: &'static str) -> Result<Self, DecodeError> {
        reader.read_i64(what)
    }
    fn write(&self, out: &mut BytesMut) {
        writer::write_i64(out, *self);
    }
}

impl Record for bool {
    const MIN_LEN: usize = 1;
    fn read_as(reader: &mut Reader<'_>, what: &'static str) -> Result<Self, DecodeError> {
        reader.read_bool(what)
    }
    fn write(&self, out: &mut BytesMut) {
        writer::write_bool(out, *self);
    }
}

/// A `ustring`; a null string (length -1) reads as empty.
impl Record for String {
    const MIN_LEN: usize = 4;
    fn read_as(reader: &mut Reader<'_>, what: &'static str) -> Result<Self, DecodeError> {
        Ok(reader.read_ustring(what)?.unwrap_or_default())
    }
    fn write(&self, out: &mut BytesMut) {
        writer::write_ustring(out, self);
    }
    fn size_hint(&self) -> usize {
        4 + self.len()
    }
}

/// A nullable `ustring`, for the fields where null and empty mean different things.
impl Record for Option<String> {
    const MIN_LEN: usize = 4;
    fn read_as(reader: &mut Reader<'_>, what: &'static str) -> Result<Self, DecodeError> {
        reader.read_ustring(what)
    }
    fn write(&self, out: &mut BytesMut) {
        match self {
            Some(value) => writer::write_ustring(out, value),
            None => writer::write_buffer(out, None),
        }
    }
    fn size_hint(&self) -> usize {
        4 + self.as_ref().map_or(0, String::len)
    }
}

/// A `buffer`; a null buffer reads as empty.
impl Record for Bytes {
    const MIN_LEN: usize = 4;
    fn read_as(reader: &mut Reader<'_>, what: &'static str) -> Result<Self, DecodeError> {
        Ok(reader.read_buffer(what)?.unwrap_or_default())
    }
    fn write(&self, out: &mut BytesMut) {
        writer::write_buffer(out, Some(self));
    }
    fn size_hint(&self) -> usize {
        4 + self.len()
    }
}

/// A nullable `buffer`: znode data keeps the difference, because ZooKeeper returns a
/// node created with null data as null (`-1`) and clients print it as `null`.
impl Record for Option<Bytes> {
    const MIN_LEN: usize = 4;
    fn read_as(reader: &mut Reader<'_>, what: &'static str) -> Result<Self, DecodeError> {
        reader.read_buffer(what)
    }
    fn write(&self, out: &mut BytesMut) {
        writer::write_buffer(out, self.as_deref());
    }
    fn size_hint(&self) -> usize {
        4 + self.as_ref().map_or(0, Bytes::len)
    }
}

/// A `vector<T>`; a null vector reads as empty.
impl<T: Record> Record for Vec<T> {
    const MIN_LEN: usize = 4;
    fn read_as(reader: &mut Reader<'_>, what: &'static str) -> Result<Self, DecodeError> {
        let Some(len) = reader.read_len(what, T::MIN_LEN)? else {
            return Ok(Vec::new());
        };
        let mut items = Vec::with_capacity(len);
        for _ in 0..len {
            items.push(T::read_as(reader, what)?);
        }
        Ok(items)
    }
    fn write(&self, out: &mut BytesMut) {
        writer::write_len(out, self.len());
        for item in self {
            item.write(out);
        }
    }
    fn size_hint(&self) -> usize {
        4 + self.iter().map(Record::size_hint).sum::<usize>()
    }
}

/// Defines a jute record: a struct whose fields are encoded in declaration order.
macro_rules! record {
    ($(#[$meta:meta])* $name:ident { $($(#[$field_meta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        pub struct $name {
            $(
                $(#[$field_meta])*
                #[doc = concat!("`", stringify!($field), "`, as named in `zookeeper.jute`.")]
                pub $field: $ty,
            )*
        }

        impl $crate::Record for $name {
            const MIN_LEN: usize = 0 $(+ <$ty as $crate::Record>::MIN_LEN)*;

            #[allow(unused_variables)]
            fn read_as(
                reader: &mut $crate::Reader<'_>,
                what: &'static str,
            ) -> Result<Self, $crate::DecodeError> {
                Ok($name {
                    $($field: <$ty as $crate::Record>::read_as(
                        reader,
                        concat!(stringify!($name), ".", stringify!($field)),
                    )?,)*
                })
            }

            #[allow(unused_variables)]
            fn write(&self, out: &mut bytes::BytesMut) {
                $($crate::Record::write(&self.$field, out);)*
            }

            fn size_hint(&self) -> usize {
                0 $(+ $crate::Record::size_hint(&self.$field))*
            }
        }

        #[cfg(test)]
        impl $crate::generate::Generate for $name {
            fn generate(source: &mut $crate::generate::Source<'_>) -> Self {
                $name { $($field: $crate::generate::Generate::generate(source),)* }
            }
        }
    };
}
pub(crate) use record;
