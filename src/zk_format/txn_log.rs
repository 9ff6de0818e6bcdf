//! A ZooKeeper transaction log file (`log.<first zxid>`), as `FileTxnLog` writes it: the
//! header, then one record per txn — the txn's Adler-32, its bytes (`TxnHeader`, the txn
//! record, and since 3.6 the tree's digest) as a jute buffer, and the byte `B` — then
//! zeros up to the preallocated size.
//!
//! Read as ZooKeeper's `FileTxnIterator` reads it: an empty record (the preallocated
//! zeros) or a record cut short (a crash mid-write) ends the file; a record whose bytes
//! fail their checksum stops the read, as it stops ZooKeeper's start. Written as
//! `FileTxnLog.append` writes it, without the preallocated zeros, which ZooKeeper reads
//! the same as the file's end.

use std::path::Path;

use bytes::{BufMut, Bytes, BytesMut};
use jute::writer::{write_buffer, write_i32, write_i64};
use jute::{DecodeError, Reader};

use super::{adler32, check_header, read_file, ZkFileError};

/// "ZKLG".
const MAGIC: i32 = 0x5a4b_4c47;

/// The byte that ends every record.
const END_OF_RECORD: u8 = b'B';

/// One transaction as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedTxn {
    /// Its zxid, from its `TxnHeader`.
    pub zxid: i64,
    /// `TxnHeader`, the txn record and, from ZooKeeper 3.6, a digest.
    pub bytes: Bytes,
}

/// What one log file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    /// Its transactions, in the order written.
    pub txns: Vec<LoggedTxn>,
    /// The file ended in a record cut short (ZooKeeper logs "Last transaction was
    /// partial" and reads on from the next file).
    pub partial_tail: bool,
}

/// Reads the log file at `path`.
///
/// # Errors
/// If it cannot be read, is not a ZooKeeper log, or a record fails its checksum.
pub fn read_log(path: &Path) -> Result<LogFile, ZkFileError> {
    let bytes = read_file(path)?;
    decode(&bytes, &path.display().to_string())
}

/// Decodes a log file's bytes (`path` names it in errors).
///
/// # Errors
/// As [`read_log`].
pub fn decode(bytes: &Bytes, path: &str) -> Result<LogFile, ZkFileError> {
    let mut reader = Reader::new(bytes);
    check_header(&mut reader, path, "transaction log", MAGIC)?;
    let mut txns = Vec::new();
    loop {
        let (checksum, txn) = match next_record(&mut reader)
            .map_err(|source| ZkFileError::Malformed { path: path.to_owned(), source })?
        {
            Record::Txn { checksum, bytes } => (checksum, bytes),
            Record::End => return Ok(LogFile { txns, partial_tail: false }),
            Record::Partial => return Ok(LogFile { txns, partial_tail: true }),
        };
        if checksum != i64::from(adler32(&txn)) {
            return Err(ZkFileError::Checksum {
                path: path.to_owned(),
                what: format!("the transaction after zxid 0x{:x}", last_zxid(&txns)),
            });
        }
        let zxid = zxid_of(&txn)
            .map_err(|source| ZkFileError::Malformed { path: path.to_owned(), source })?;
        txns.push(LoggedTxn { zxid, bytes: txn });
    }
}

/// Encodes a log file holding `txns` (each a `TxnHeader` and its txn record, as
/// [`LoggedTxn::bytes`]), in order, as ZooKeeper writes one: for `zkrs export`, the txns
/// after the snapshot, which ZooKeeper replays at start and can truncate when a leader
/// says they were never committed.
pub fn encode<'a>(txns: impl IntoIterator<Item = &'a [u8]>) -> BytesMut {
    let mut out = BytesMut::new();
    write_i32(&mut out, MAGIC);
    write_i32(&mut out, super::VERSION);
    write_i64(&mut out, 0);
    for txn in txns {
        write_i64(&mut out, i64::from(adler32(txn)));
        write_buffer(&mut out, Some(txn));
        out.put_u8(END_OF_RECORD);
    }
    out
}

/// The zxid in a txn's `TxnHeader` (after the client id and cxid).
fn zxid_of(txn: &Bytes) -> Result<i64, DecodeError> {
    let mut header = Reader::new(txn);
    header.read_i64("client id")?;
    header.read_i32("cxid")?;
    header.read_i64("zxid")
}

fn last_zxid(txns: &[LoggedTxn]) -> i64 {
    txns.last().map_or(0, |txn| txn.zxid)
}

enum Record {
    Txn {
        checksum: i64,
        bytes: Bytes,
    },
    /// The preallocated zeros, or the end of the file.
    End,
    /// A record cut short.
    Partial,
}

/// `FileTxnIterator.next` with `Util.readTxnBytes`: a record, the end, or a record cut
/// short; a length no buffer may have is an error, as ZooKeeper's "Unreasonable length".
fn next_record(reader: &mut Reader<'_>) -> Result<Record, DecodeError> {
    let Ok(checksum) = reader.read_i64("checksum") else {
        return Ok(Record::End);
    };
    let bytes = match reader.read_buffer("txn") {
        Ok(Some(bytes)) if !bytes.is_empty() => bytes,
        Ok(_) => return Ok(Record::End),
        Err(DecodeError::Incomplete { .. }) => return Ok(Record::Partial),
        Err(err) => return Err(err),
    };
    match reader.read_u8("end of record") {
        Ok(END_OF_RECORD) => Ok(Record::Txn { checksum, bytes }),
        _ => Ok(Record::Partial),
    }
}

#[cfg(test)]
#[path = "txn_log_test.rs"]
mod tests;
