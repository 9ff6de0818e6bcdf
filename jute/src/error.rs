//! The one error type of the crate: what went wrong while decoding, and where.

/// Why a byte sequence could not be decoded into a record.
///
/// `Incomplete` means the bytes seen so far are a valid prefix: a stream reader should
/// wait for more. Inside a complete frame it means the frame is truncated, which the
/// caller treats as invalid input. `Invalid` means no amount of further input can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended inside `what`, which needed `needed` bytes at `offset`.
    #[error("input ends inside {what} at offset {offset} ({needed} more bytes needed)")]
    Incomplete {
        /// The field being read.
        what: &'static str,
        /// Byte offset where the field starts.
        offset: usize,
        /// How many bytes the field still needed.
        needed: usize,
    },
    /// The input holds a value that no valid encoding produces.
    #[error("invalid {what} at offset {offset}: {reason}")]
    Invalid {
        /// The field being read.
        what: &'static str,
        /// Byte offset where the field starts.
        offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
}
