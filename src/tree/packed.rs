//! The packed node: a znode's name, data, stat and ACL in about the bytes they need.
//!
//! The tree holds every node this way (`tree::node`), one allocation a node, and snapshot
//! chunks write nodes this way (`tree::snapshot`). In order:
//! - the name and the data, each after a variable-length length (the data's one more
//!   than its length, 0 for none), so that a lookup by name reads one byte before it;
//! - a byte of [`differs`] flags: which stat fields differ from a node created once and
//!   never changed, with no owner and the first ACL;
//! - the czxid and ctime as steps from a base: zero in the tree, the node written before
//!   in a snapshot chunk;
//! - each field the flags name: mzxid and pzxid as steps from czxid, mtime from ctime,
//!   the owner at full width, then the versions and the ACL id as they are.
//!
//! Signed numbers are zigzagged. A node created and never changed, named in 10 bytes with
//! 100 bytes of data, takes 124 bytes.

use bytes::BufMut;
use jute::records::StatPersisted;
use jute::DecodeError;

use crate::tree::varint;

/// The bits of the flags byte: which stat fields differ from those of a node created
/// once and never changed, and so follow.
mod differs {
    pub const MZXID: u8 = 1;
    pub const PZXID: u8 = 1 << 1;
    pub const MTIME: u8 = 1 << 2;
    pub const EPHEMERAL_OWNER: u8 = 1 << 3;
    pub const VERSION: u8 = 1 << 4;
    pub const CVERSION: u8 = 1 << 5;
    pub const AVERSION: u8 = 1 << 6;
    pub const ACL: u8 = 1 << 7;
}

/// The most bytes the stat and ACL take: the flags, five steps, the owner and four small
/// numbers (the ACL id, a `u32` or a chunk's `i32`, takes at most five zigzagged).
pub const STAT_LEN_MAX: usize = 1 + 5 * varint::LEN_MAX + 8 + 4 * 5;

/// The fewest bytes a packed node takes: empty name, no data, flags, czxid, ctime.
pub const LEN_MIN: usize = 5;

/// The czxid and ctime a node's are written as steps from.
pub type Base = (i64, i64);

/// A node unpacked; its name and data borrow the bytes it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed<'a> {
    /// The node's name, the last component of its path.
    pub name: &'a [u8],
    /// The data, `None` for null.
    pub data: Option<&'a [u8]>,
    /// The stat as ZooKeeper persists it.
    pub stat: StatPersisted,
    /// The ACL's id: an `AclId`'s number in the tree, a chunk's own id in a snapshot.
    pub acl: i64,
}

/// Appends the name and the data.
pub fn put_name_and_data(out: &mut impl BufMut, name: &[u8], data: Option<&[u8]>) {
    varint::put_u64(out, name.len() as u64);
    out.put_slice(name);
    match data {
        Some(data) => {
            varint::put_u64(out, data.len() as u64 + 1);
            out.put_slice(data);
        }
        None => varint::put_u64(out, 0),
    }
}

/// How many bytes [`put_name_and_data`] writes.
pub fn name_and_data_len(name: &[u8], data: Option<&[u8]>) -> usize {
    let data_len = match data {
        Some(data) => varint::len_u64(data.len() as u64 + 1) + data.len(),
        None => 1,
    };
    varint::len_u64(name.len() as u64) + name.len() + data_len
}

/// Appends the stat and ACL, at most [`STAT_LEN_MAX`] bytes, the czxid and ctime as steps
/// from `base`.
pub fn put_stat(out: &mut impl BufMut, stat: &StatPersisted, acl: i64, base: Base) {
    let (czxid, ctime) = (stat.czxid, stat.ctime);
    let steps = [
        (differs::MZXID, stat.mzxid.wrapping_sub(czxid)),
        (differs::PZXID, stat.pzxid.wrapping_sub(czxid)),
        (differs::MTIME, stat.mtime.wrapping_sub(ctime)),
    ];
    let small = [
        (differs::VERSION, i64::from(stat.version)),
        (differs::CVERSION, i64::from(stat.cversion)),
        (differs::AVERSION, i64::from(stat.aversion)),
        (differs::ACL, acl),
    ];
    let mut flags = if stat.ephemeral_owner == 0 { 0 } else { differs::EPHEMERAL_OWNER };
    for (flag, _) in steps.iter().chain(&small).filter(|(_, value)| *value != 0) {
        flags |= flag;
    }
    out.put_u8(flags);
    varint::put_i64(out, czxid.wrapping_sub(base.0));
    varint::put_i64(out, ctime.wrapping_sub(base.1));
    for (flag, step) in steps {
        if flags & flag != 0 {
            varint::put_i64(out, step);
        }
    }
    if flags & differs::EPHEMERAL_OWNER != 0 {
        out.put_i64(stat.ephemeral_owner);
    }
    for (flag, value) in small {
        if flags & flag != 0 {
            varint::put_i64(out, value);
        }
    }
}

/// Reads the name at `at` in `bytes`; returns it and where the data starts.
///
/// # Errors
/// When the bytes end inside it.
pub fn read_name(bytes: &[u8], at: usize) -> Result<(&[u8], usize), DecodeError> {
    let mut at = at;
    let len = read_len(bytes, &mut at, "name")?;
    let name = take(bytes, &mut at, len, "name")?;
    Ok((name, at))
}

/// A node's name, its data, and where its stat starts.
pub type NameAndData<'a> = (&'a [u8], Option<&'a [u8]>, usize);

/// Reads the name and the data at `at` in `bytes`; returns them and where the stat starts.
///
/// # Errors
/// When the bytes end inside them.
pub fn read_name_and_data(bytes: &[u8], at: usize) -> Result<NameAndData<'_>, DecodeError> {
    let (name, mut at) = read_name(bytes, at)?;
    let data = match read_len(bytes, &mut at, "data")? {
        0 => None,
        len_and_one => Some(take(bytes, &mut at, len_and_one - 1, "data")?),
    };
    Ok((name, data, at))
}

/// Reads the czxid of the node at `at` in `bytes`, a step from `base`, and nothing after
/// it: what a snapshot's walk asks of every node.
///
/// # Errors
/// When the bytes end before it.
pub fn read_czxid(bytes: &[u8], at: usize, base: Base) -> Result<i64, DecodeError> {
    let (_, _, flags_at) = read_name_and_data(bytes, at)?;
    let mut at = flags_at + 1;
    Ok(base.0.wrapping_add(varint::read_i64(bytes, &mut at, "czxid")?))
}

/// Reads the node at `at` in `bytes`, its czxid and ctime steps from `base`; returns it
/// and where it ends.
///
/// # Errors
/// When the bytes end inside it, or a version is past 32 bits.
pub fn read(bytes: &[u8], at: usize, base: Base) -> Result<(Packed<'_>, usize), DecodeError> {
    let (name, data, mut at) = read_name_and_data(bytes, at)?;
    let flags = *bytes.get(at).ok_or(DecodeError::Incomplete {
        what: "stat flags",
        offset: at,
        needed: 1,
    })?;
    at += 1;
    let czxid = base.0.wrapping_add(varint::read_i64(bytes, &mut at, "czxid")?);
    let ctime = base.1.wrapping_add(varint::read_i64(bytes, &mut at, "ctime")?);
    let mut step = |flag, base: i64, what| -> Result<i64, DecodeError> {
        Ok(if flags & flag == 0 {
            base
        } else {
            base.wrapping_add(varint::read_i64(bytes, &mut at, what)?)
        })
    };
    let mzxid = step(differs::MZXID, czxid, "mzxid")?;
    let pzxid = step(differs::PZXID, czxid, "pzxid")?;
    let mtime = step(differs::MTIME, ctime, "mtime")?;
    let ephemeral_owner = if flags & differs::EPHEMERAL_OWNER == 0 {
        0
    } else {
        let mut owner = [0u8; 8];
        owner.copy_from_slice(take(bytes, &mut at, 8, "ephemeral owner")?);
        i64::from_be_bytes(owner)
    };
    let version = read_int32(bytes, &mut at, flags & differs::VERSION, "version")?;
    let cversion = read_int32(bytes, &mut at, flags & differs::CVERSION, "cversion")?;
    let aversion = read_int32(bytes, &mut at, flags & differs::AVERSION, "aversion")?;
    let acl =
        if flags & differs::ACL == 0 { 0 } else { varint::read_i64(bytes, &mut at, "acl id")? };
    let stat = persisted_stat(
        [czxid, mzxid, pzxid, ctime, mtime, ephemeral_owner],
        [version, cversion, aversion],
    );
    Ok((Packed { name, data, stat, acl }, at))
}

/// A stat from its `longs` (czxid, mzxid, pzxid, ctime, mtime, ephemeral owner) and its
/// `ints` (version, cversion, aversion), the order snapshot format 2 writes them in.
pub fn persisted_stat(longs: [i64; 6], ints: [i32; 3]) -> StatPersisted {
    let [czxid, mzxid, pzxid, ctime, mtime, ephemeral_owner] = longs;
    let [version, cversion, aversion] = ints;
    StatPersisted {
        czxid,
        mzxid,
        ctime,
        mtime,
        version,
        cversion,
        aversion,
        ephemeral_owner,
        pzxid,
    }
}

/// Reads a version if `present` (its flag), else 0.
fn read_int32(
    bytes: &[u8],
    at: &mut usize,
    present: u8,
    what: &'static str,
) -> Result<i32, DecodeError> {
    if present == 0 {
        return Ok(0);
    }
    let offset = *at;
    let value = varint::read_i64(bytes, at, what)?;
    i32::try_from(value).map_err(|_| DecodeError::Invalid { what, offset, reason: "past 32 bits" })
}

/// Reads a variable-length length.
fn read_len(bytes: &[u8], at: &mut usize, what: &'static str) -> Result<usize, DecodeError> {
    let offset = *at;
    let len = varint::read_u64(bytes, at, what)?;
    usize::try_from(len).map_err(|_| DecodeError::Invalid { what, offset, reason: "too long" })
}

/// The `len` bytes at `*at`, moving `*at` past them.
fn take<'a>(
    bytes: &'a [u8],
    at: &mut usize,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], DecodeError> {
    let offset = *at;
    let end = offset.checked_add(len).ok_or(DecodeError::Invalid {
        what,
        offset,
        reason: "length overflows",
    })?;
    let taken = bytes.get(offset..end).ok_or(DecodeError::Incomplete {
        what,
        offset,
        needed: end.saturating_sub(bytes.len()),
    })?;
    *at = end;
    Ok(taken)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(czxid: i64, ctime: i64) -> StatPersisted {
        StatPersisted {
            czxid,
            mzxid: czxid,
            ctime,
            mtime: ctime,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: 0,
            pzxid: czxid,
        }
    }

    fn packed(node: &Packed<'_>, base: Base) -> Vec<u8> {
        let mut out = Vec::new();
        put_name_and_data(&mut out, node.name, node.data);
        assert_eq!(out.len(), name_and_data_len(node.name, node.data));
        put_stat(&mut out, &node.stat, node.acl, base);
        out
    }

    #[test]
    fn a_node_never_changed_takes_its_name_data_and_twelve_bytes() {
        let data = [b'x'; 100];
        let node = Packed {
            name: b"n000000123",
            data: Some(&data),
            stat: stat((1 << 32) + 1_000_000, 1_796_000_000_000),
            acl: 0,
        };
        let bytes = packed(&node, (0, 0));
        assert_eq!(bytes.len(), 124);
        assert_eq!(read(&bytes, 0, (0, 0)).expect("decodes"), (node, 124));
    }

    #[test]
    fn every_field_at_its_extreme_round_trips_within_the_bound() {
        let stat = StatPersisted {
            czxid: i64::MIN,
            mzxid: i64::MAX,
            ctime: i64::MAX,
            mtime: i64::MIN,
            version: i32::MIN,
            cversion: i32::MAX,
            aversion: -1,
            ephemeral_owner: i64::MIN,
            pzxid: 1,
        };
        for acl in [i64::from(u32::MAX), i64::from(i32::MIN)] {
            let node = Packed { name: b"", data: None, stat: stat.clone(), acl };
            let bytes = packed(&node, (i64::MAX, 1));
            assert!(bytes.len() - 2 <= STAT_LEN_MAX, "{} bytes", bytes.len());
            assert_eq!(read(&bytes, 0, (i64::MAX, 1)).expect("decodes"), (node, bytes.len()));
        }
    }

    #[test]
    fn a_node_is_read_where_it_starts_and_its_name_alone_without_the_rest() {
        let first = Packed { name: b"a", data: Some(b""), stat: stat(7, 9), acl: 3 };
        let second = Packed { name: b"bb", data: None, stat: stat(8, 9), acl: 0 };
        let mut bytes = packed(&first, (0, 0));
        let second_at = bytes.len();
        bytes.extend(packed(&second, (7, 9)));
        assert_eq!(read(&bytes, 0, (0, 0)).expect("first").0, first);
        assert_eq!(read(&bytes, second_at, (7, 9)).expect("second"), (second, bytes.len()));
        assert_eq!(read_name(&bytes, second_at).expect("name"), (&b"bb"[..], second_at + 3));
        assert_eq!(read_czxid(&bytes, second_at, (7, 9)).expect("czxid"), 8);
    }

    #[test]
    fn truncated_nodes_and_wide_versions_are_errors() {
        let node = Packed { name: b"name", data: Some(b"data"), stat: stat(5, 6), acl: 0 };
        let bytes = packed(&node, (0, 0));
        for len in 0..bytes.len() {
            let err = read(&bytes[..len], 0, (0, 0)).expect_err("truncated");
            assert!(matches!(err, DecodeError::Incomplete { .. }), "{len}: {err}");
        }
        let mut wide = packed(&Packed { name: b"", data: None, stat: stat(0, 0), acl: 0 }, (0, 0));
        wide[2] = differs::VERSION;
        varint::put_i64(&mut wide, i64::from(i32::MAX) + 1);
        let err = read(&wide, 0, (0, 0)).expect_err("version past 32 bits");
        assert!(matches!(err, DecodeError::Invalid { what: "version", .. }), "{err}");
    }
}
