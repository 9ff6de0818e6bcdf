//! The byte layout of stored values: the payload, then its CRC-32C, checked on both ends.
//! The checksum goes last so a value can be sealed where it was built, without a copy.
//!
//! Log keys are zxids in big-endian, so RocksDB's byte order is zxid order; snapshot keys
//! are the snapshot's zxid followed by a chunk index, the header taking the last index.

use bytes::{BufMut, Bytes, BytesMut};
use jute::writer::{write_i32, write_i64};
use jute::{DecodeError, Reader};

use crate::storage::{LogEntry, SnapshotHeader, StorageError};
use crate::txn::{Txn, TxnDigest, Zxid};

/// The chunk index under which a snapshot's header is stored.
pub const HEADER_INDEX: u32 = u32::MAX;

const SNAPSHOT_MAGIC: i64 = 0x5a4b_5253_534e_4150; // "ZKRSSNAP"
/// The snapshot format written: 3 packs each node's stat (`tree::snapshot`).
const SNAPSHOT_FORMAT: i32 = 3;
/// The snapshot formats read: 2 wrote every stat field at full width.
const SNAPSHOT_FORMATS_READ: std::ops::RangeInclusive<i32> = 2..=SNAPSHOT_FORMAT;

/// The key of a log entry.
pub fn log_key(zxid: Zxid) -> [u8; 8] {
    (zxid.raw() as u64).to_be_bytes()
}

/// The zxid a log key names.
pub fn zxid_of_log_key(key: &[u8]) -> Option<Zxid> {
    Some(Zxid::new(u64::from_be_bytes(key.try_into().ok()?) as i64))
}

/// The key of a snapshot chunk (or, with [`HEADER_INDEX`], of its header).
pub fn snapshot_key(zxid: Zxid, index: u32) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&(zxid.raw() as u64).to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

/// The (zxid, index) a snapshot key names.
pub fn parse_snapshot_key(key: &[u8]) -> Option<(Zxid, u32)> {
    let zxid = Zxid::new(u64::from_be_bytes(key.get(..8)?.try_into().ok()?) as i64);
    let index = u32::from_be_bytes(key.get(8..12)?.try_into().ok()?);
    Some((zxid, index))
}

/// The length of the checksum that ends every stored value.
const CHECKSUM_LEN: usize = 4;

/// A payload followed by its CRC-32C.
pub fn seal(payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + CHECKSUM_LEN);
    out.extend_from_slice(payload);
    seal_in_place(&mut out);
    out.freeze()
}

/// Seals the payload `buffer` holds by appending its CRC-32C.
pub fn seal_in_place(buffer: &mut BytesMut) {
    let crc = crc32c::crc32c(buffer);
    buffer.put_u32(crc);
}

/// The payload of a sealed value, if its checksum holds.
pub fn unseal(value: &Bytes) -> Option<Bytes> {
    let split = value.len().checked_sub(CHECKSUM_LEN)?;
    let checksum = u32::from_be_bytes(value.get(split..)?.try_into().ok()?);
    let payload = value.slice(..split);
    (crc32c::crc32c(&payload) == checksum).then_some(payload)
}

/// The log entry of a txn: its zxid and its sealed encoding.
pub fn encode_entry(txn: &Txn) -> LogEntry {
    let mut value = BytesMut::new();
    encode_entry_into(txn, &mut value);
    LogEntry { zxid: txn.zxid(), value: value.freeze() }
}

/// Appends the value [`encode_entry`] makes to `out`, sealed in place, so that a batch of
/// entries can share one buffer.
pub fn encode_entry_into(txn: &Txn, out: &mut BytesMut) {
    let start = out.len();
    out.reserve(txn.encoded_len() + 4);
    txn.encode_into(out);
    let crc = out.get(start..).map_or(0, crc32c::crc32c);
    out.put_u32(crc);
}

/// The txn in a log entry.
///
/// # Errors
/// [`StorageError::Corrupt`] if the checksum fails, the txn does not decode, or its zxid
/// differs from the key's.
pub fn decode_entry(entry: &LogEntry) -> Result<Txn, StorageError> {
    decode_entry_with_digest(entry).map(|(txn, _)| txn)
}

/// [`decode_entry`], with the tree digest a ZooKeeper leader put after the txn, if any.
///
/// # Errors
/// As [`decode_entry`].
pub fn decode_entry_with_digest(
    entry: &LogEntry,
) -> Result<(Txn, Option<TxnDigest>), StorageError> {
    let payload = unseal(&entry.value).ok_or_else(|| {
        StorageError::Corrupt(format!("log entry 0x{:x} fails its checksum", entry.zxid))
    })?;
    let (txn, digest) = Txn::decode_with_digest(&payload).map_err(|err| {
        StorageError::Corrupt(format!("log entry 0x{:x} does not decode: {err}", entry.zxid))
    })?;
    if txn.zxid() != entry.zxid {
        return Err(StorageError::Corrupt(format!(
            "log entry 0x{:x} holds zxid 0x{:x}",
            entry.zxid,
            txn.zxid()
        )));
    }
    Ok((txn, digest))
}

/// The sealed encoding of a snapshot header.
pub fn encode_header(header: &SnapshotHeader) -> Bytes {
    encode_header_as(header, SNAPSHOT_FORMAT)
}

/// The sealed encoding of a snapshot header claiming `format`: the current one, or
/// another in tests of what a format check accepts.
pub(in crate::storage) fn encode_header_as(header: &SnapshotHeader, format: i32) -> Bytes {
    let mut out = BytesMut::with_capacity(64);
    write_i64(&mut out, SNAPSHOT_MAGIC);
    write_i32(&mut out, format);
    write_i64(&mut out, header.zxid.raw());
    write_i32(&mut out, header.chunks as i32);
    write_i64(&mut out, header.nodes as i64);
    write_i32(&mut out, header.sessions as i32);
    write_i64(&mut out, header.bytes as i64);
    write_i64(&mut out, header.created_ms);
    seal(&out)
}

/// Decodes a sealed snapshot header.
///
/// # Errors
/// [`StorageError::Corrupt`] for a bad checksum, magic or layout;
/// [`StorageError::Incompatible`] for another format version.
pub fn decode_header(value: &Bytes) -> Result<SnapshotHeader, StorageError> {
    let payload = unseal(value)
        .ok_or_else(|| StorageError::Corrupt("snapshot header fails its checksum".into()))?;
    let corrupt = |err: DecodeError| StorageError::Corrupt(format!("snapshot header: {err}"));
    let mut reader = Reader::new(&payload);
    if reader.read_i64("magic").map_err(corrupt)? != SNAPSHOT_MAGIC {
        return Err(StorageError::Corrupt("snapshot header has a wrong magic number".into()));
    }
    let format = reader.read_i32("format").map_err(corrupt)?;
    if !SNAPSHOT_FORMATS_READ.contains(&format) {
        return Err(StorageError::Incompatible(format!(
            "snapshot format {format}, this zkrs reads {SNAPSHOT_FORMATS_READ:?}"
        )));
    }
    Ok(SnapshotHeader {
        zxid: Zxid::new(reader.read_i64("zxid").map_err(corrupt)?),
        chunks: reader.read_i32("chunks").map_err(corrupt)? as u32,
        nodes: reader.read_i64("nodes").map_err(corrupt)? as u64,
        sessions: reader.read_i32("sessions").map_err(corrupt)? as u32,
        bytes: reader.read_i64("bytes").map_err(corrupt)? as u64,
        created_ms: reader.read_i64("created").map_err(corrupt)?,
    })
}

#[cfg(test)]
mod tests {
    use jute::records::{DeleteTxn, TxnHeader};
    use jute::OpCode;

    use super::*;
    use crate::txn::TxnBody;

    fn txn(zxid: Zxid) -> Txn {
        Txn {
            header: TxnHeader {
                client_id: 1,
                cxid: 2,
                zxid: zxid.raw(),
                time: 3,
                op_type: OpCode::Delete.as_i32(),
            },
            body: TxnBody::Delete(DeleteTxn { path: "/x".into() }),
        }
    }

    #[test]
    fn entries_round_trip_and_detect_every_flipped_bit() {
        let entry = encode_entry(&txn(Zxid::new(0x1_0000_0005)));
        assert_eq!(decode_entry(&entry).expect("valid"), txn(Zxid::new(0x1_0000_0005)));
        for byte in 0..entry.value.len() {
            for bit in 0..8 {
                let mut damaged = entry.value.to_vec();
                damaged[byte] ^= 1 << bit;
                let damaged = LogEntry { zxid: entry.zxid, value: damaged.into() };
                assert!(
                    matches!(decode_entry(&damaged), Err(StorageError::Corrupt(_))),
                    "byte {byte} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn entries_encoded_into_a_shared_buffer_match_entries_encoded_alone() {
        let mut shared = BytesMut::from(&b"earlier entries"[..]);
        encode_entry_into(&txn(Zxid::new(7)), &mut shared);
        let value = shared.split_off(15).freeze();
        assert_eq!(value, encode_entry(&txn(Zxid::new(7))).value);
        assert_eq!(
            decode_entry(&LogEntry { zxid: Zxid::new(7), value }).expect("valid"),
            txn(Zxid::new(7))
        );
    }

    #[test]
    fn torn_entries_are_corrupt() {
        let entry = encode_entry(&txn(Zxid::new(9)));
        for len in 0..entry.value.len() {
            let torn = LogEntry { zxid: Zxid::new(9), value: entry.value.slice(..len) };
            assert!(decode_entry(&torn).is_err(), "length {len}");
        }
    }

    #[test]
    fn an_entry_under_the_wrong_key_is_corrupt() {
        let mut entry = encode_entry(&txn(Zxid::new(9)));
        entry.zxid = Zxid::new(10);
        assert!(decode_entry(&entry).is_err());
    }

    #[test]
    fn keys_sort_by_zxid() {
        let mut keys = [
            log_key(Zxid::new(0x2_0000_0001)),
            log_key(Zxid::new(5)),
            log_key(Zxid::new(0x1_ffff_ffff)),
        ];
        keys.sort();
        let zxids: Vec<_> = keys.iter().filter_map(|key| zxid_of_log_key(key)).collect();
        assert_eq!(zxids, [Zxid::new(5), Zxid::new(0x1_ffff_ffff), Zxid::new(0x2_0000_0001)]);
        let key = snapshot_key(Zxid::new(77), HEADER_INDEX);
        assert_eq!(parse_snapshot_key(&key), Some((Zxid::new(77), HEADER_INDEX)));
    }

    #[test]
    fn sealing_in_place_matches_sealing_a_copy() {
        let mut buffer = BytesMut::from(&b"chunk"[..]);
        seal_in_place(&mut buffer);
        assert_eq!(buffer, seal(b"chunk"));
        assert_eq!(unseal(&buffer.freeze()), Some(Bytes::from_static(b"chunk")));
    }

    #[test]
    fn values_shorter_than_a_checksum_are_not_intact() {
        for len in 0..4 {
            assert_eq!(unseal(&Bytes::from(vec![0u8; len])), None, "length {len}");
        }
        assert_eq!(unseal(&seal(b"")), Some(Bytes::new()));
    }

    fn header() -> SnapshotHeader {
        SnapshotHeader {
            zxid: Zxid::new(42),
            chunks: 3,
            nodes: 1000,
            sessions: 7,
            bytes: 123_456,
            created_ms: 99,
        }
    }

    #[test]
    fn headers_round_trip() {
        let header = header();
        assert_eq!(decode_header(&encode_header(&header)).expect("valid"), header);
        let mut damaged = encode_header(&header).to_vec();
        damaged[10] ^= 4;
        assert!(decode_header(&damaged.into()).is_err());
    }

    #[test]
    fn headers_of_format_2_are_read_and_of_a_later_format_refused() {
        let header = header();
        let with_format = |format| encode_header_as(&header, format);
        assert_eq!(decode_header(&with_format(2)).expect("format 2"), header);
        let err = decode_header(&with_format(4)).expect_err("format 4");
        assert!(matches!(err, StorageError::Incompatible(_)), "{err}");
        let err = decode_header(&with_format(1)).expect_err("format 1");
        assert!(matches!(err, StorageError::Incompatible(_)), "{err}");
    }
}
