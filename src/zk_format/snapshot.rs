//! A ZooKeeper snapshot (`snapshot.<zxid>`), as `FileSnap` writes it: the header, the
//! sessions with their timeouts, the ACL cache, every node in pre-order (its path, data,
//! ACL reference and `StatPersisted`) until a lone `/`, then the Adler-32 seal of all of
//! that. ZooKeeper 3.6+ appends the tree's digest and 3.9 the last processed zxid, each
//! sealed again; a snapshot from before them simply ends earlier, and ZooKeeper reads
//! both, as this does.
//!
//! A snapshot is fuzzy: ZooKeeper writes it while it applies txns, so the tree is only
//! right once the log's txns from the snapshot's zxid on are replayed over it.

use std::collections::HashMap;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use jute::records::{Acl, Id, StatPersisted};
use jute::writer::{write_buffer, write_i32, write_i64, write_len, write_ustring};
use jute::{DecodeError, Reader, Record};

use super::{adler32, check_header, read_file, ZkFileError};

/// "ZKSN".
const MAGIC: i32 = 0x5a4b_534e;

/// The ACL reference ZooKeeper keeps for `world:anyone` with every permission, which its
/// ACL cache does not list (`OPEN_UNSAFE_ACL_ID`).
pub const OPEN_ACL_REFERENCE: i64 = -1;

/// What ends a snapshot a leader streams to a learner.
const TRANSFER_SIGNATURE: &str = "BenWasHere";

/// Every permission: read, write, create, delete, admin.
const ALL_PERMISSIONS: i32 = 31;

/// One node as the snapshot holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotNode {
    /// Its full path; the root's is `/`.
    pub path: String,
    /// Its data; `None` for null.
    pub data: Option<Bytes>,
    /// Its ACL.
    pub acl: Vec<Acl>,
    /// Its stat as ZooKeeper persists it (no data length or child count).
    pub stat: StatPersisted,
}

/// Everything a snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The zxid in the file's name: the last txn applied when the snapshot began.
    pub zxid: i64,
    /// Open sessions and their timeouts (ms), by session id.
    pub sessions: Vec<(i64, i32)>,
    /// Every node, parents before their children.
    pub nodes: Vec<SnapshotNode>,
}

/// Reads the snapshot at `path`, whose name gives its zxid and, by its suffix, how
/// `snapshot.compression.method` compressed it (`.gz`, `.snappy`, or none).
///
/// # Errors
/// If the file cannot be read or uncompressed, is not a ZooKeeper snapshot, does not
/// decode, or fails its checksum.
pub fn read_snapshot(path: &Path) -> Result<Snapshot, ZkFileError> {
    let shown = path.display().to_string();
    let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default();
    let zxid = super::zxid_of_file_name(name, "snapshot").unwrap_or(0);
    let bytes = read_file(path)?;
    let bytes = if name.ends_with(".gz") {
        gunzip(&bytes).map_err(|reason| ZkFileError::Compressed { path: shown.clone(), reason })?
    } else if name.ends_with(".snappy") {
        unsnappy(&bytes)
            .map_err(|reason| ZkFileError::Compressed { path: shown.clone(), reason })?
    } else {
        bytes
    };
    decode(&bytes, zxid, &shown)
}

/// Java's `GZIPInputStream`: one gzip member or several, one after the other.
fn gunzip(bytes: &[u8]) -> Result<Bytes, String> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|err| format!("not gzip: {err}"))?;
    Ok(Bytes::from(out))
}

/// The stream snappy-java's `SnappyOutputStream` writes: its 16-byte header (a magic,
/// a version, the oldest version that reads it), then blocks, each a big-endian length
/// and that many bytes of raw Snappy.
fn unsnappy(bytes: &[u8]) -> Result<Bytes, String> {
    const MAGIC: &[u8] = b"\x82SNAPPY\x00";
    const HEADER_LEN: usize = 16;
    if bytes.len() < HEADER_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a snappy-java stream".into());
    }
    let mut decoder = snap::raw::Decoder::new();
    let mut out = Vec::new();
    let mut rest = &bytes[HEADER_LEN..];
    while !rest.is_empty() {
        let (len, after) = rest.split_first_chunk::<4>().ok_or("a block length cut short")?;
        let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|err| err.to_string())?;
        let block = after.get(..len).ok_or("a block cut short")?;
        out.extend(decoder.decompress_vec(block).map_err(|err| format!("bad block: {err}"))?);
        rest = &after[len..];
    }
    Ok(Bytes::from(out))
}

/// Decodes a snapshot's bytes (`path` names it in errors).
///
/// # Errors
/// As [`read_snapshot`].
pub fn decode(bytes: &Bytes, zxid: i64, path: &str) -> Result<Snapshot, ZkFileError> {
    let malformed = |source| ZkFileError::Malformed { path: path.to_owned(), source };
    let mut reader = Reader::new(bytes);
    check_header(&mut reader, path, "snapshot", MAGIC)?;
    let sessions = read_sessions(&mut reader).map_err(malformed)?;
    let acls = read_acl_cache(&mut reader).map_err(malformed)?;
    let nodes = read_nodes(&mut reader, &acls, path)?;
    check_seal(&mut reader, bytes, path, "the tree")?;
    // ZooKeeper 3.6+: the tree's digest, sealed again; an older snapshot ends here.
    if reader.remaining() > 0 {
        read_digest(&mut reader).map_err(malformed)?;
        check_seal(&mut reader, bytes, path, "the digest")?;
    }
    // ZooKeeper 3.9: the last processed zxid, sealed again.
    if reader.remaining() > 0 {
        reader.read_i64("last processed zxid").map_err(malformed)?;
        check_seal(&mut reader, bytes, path, "the last processed zxid")?;
    }
    Ok(Snapshot { zxid, sessions, nodes })
}

/// Most bytes one piece of a transferred snapshot may take (the session list, the ACL
/// cache, or one node): a length past it is refused rather than waited for.
const TRANSFER_PIECE_MAX: usize = 256 << 20;

/// A part of a transferred snapshot, as soon as it is whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferPiece {
    /// The open sessions and their timeouts (first).
    Sessions(Vec<(i64, i32)>),
    /// One node, parents before children.
    Node(SnapshotNode),
}

/// Where a transferred snapshot's reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TransferStage {
    Sessions,
    AclCache,
    Nodes,
    Signature,
}

/// Reads the snapshot a ZooKeeper leader streams after SNAP (`LearnerHandler`:
/// `ZKDatabase.serializeSnapshot`, then the string `BenWasHere`: the sessions, the ACL
/// cache and the nodes as in a snapshot file, with no header, seals or digest) as its
/// bytes come, holding only the piece not yet whole, so that a learner can store each
/// node as it arrives instead of holding the whole snapshot.
#[derive(Debug)]
pub struct TransferReader {
    stage: TransferStage,
    acls: HashMap<i64, Vec<Acl>>,
    pending: BytesMut,
}

impl Default for TransferReader {
    fn default() -> Self {
        TransferReader::new()
    }
}

impl TransferReader {
    /// A reader at the start of a transferred snapshot.
    pub fn new() -> TransferReader {
        TransferReader {
            stage: TransferStage::Sessions,
            acls: HashMap::new(),
            pending: BytesMut::new(),
        }
    }

    /// Takes the stream's next `bytes` and appends the pieces they complete to `out`.
    /// Returns `Ok(None)` while the snapshot goes on, then what followed its end (the
    /// stream's next packets).
    ///
    /// # Errors
    /// Bytes that are not such a snapshot, a signature that is not ZooKeeper's, or a
    /// piece longer than 256 MiB.
    pub fn feed(
        &mut self,
        bytes: &[u8],
        out: &mut Vec<TransferPiece>,
    ) -> Result<Option<Bytes>, ZkFileError> {
        const WHAT: &str = "the snapshot a leader sent";
        let malformed = |source| ZkFileError::Malformed { path: WHAT.to_owned(), source };
        self.pending.extend_from_slice(bytes);
        let buffer = std::mem::take(&mut self.pending).freeze();
        let mut reader = Reader::new(&buffer);
        loop {
            let start = reader.position();
            let read = match self.stage {
                TransferStage::Sessions => read_sessions(&mut reader).map(|sessions| {
                    out.push(TransferPiece::Sessions(sessions));
                    self.stage = TransferStage::AclCache;
                }),
                TransferStage::AclCache => read_acl_cache(&mut reader).map(|acls| {
                    self.acls = acls;
                    self.stage = TransferStage::Nodes;
                }),
                TransferStage::Nodes => read_node(&mut reader, &self.acls).map(|node| match node {
                    Some(node) => out.push(TransferPiece::Node(node)),
                    None => self.stage = TransferStage::Signature,
                }),
                TransferStage::Signature => match reader.read_ustring("signature") {
                    Ok(Some(signature)) if signature == TRANSFER_SIGNATURE => {
                        return Ok(Some(buffer.slice(reader.position()..)));
                    }
                    Ok(_) => Err(DecodeError::Invalid {
                        what: "signature",
                        offset: start,
                        reason: "not BenWasHere",
                    }),
                    Err(err) => Err(err),
                },
            };
            match read {
                Ok(()) => {}
                Err(DecodeError::Incomplete { needed, .. }) => {
                    let piece = buffer.len() - start + needed;
                    if piece > TRANSFER_PIECE_MAX {
                        return Err(malformed(DecodeError::Invalid {
                            what: "a piece of the snapshot",
                            offset: start,
                            reason: "longer than 256 MiB",
                        }));
                    }
                    self.pending = BytesMut::from(&buffer[start..]);
                    return Ok(None);
                }
                Err(source) => return Err(malformed(source)),
            }
        }
    }
}

fn read_sessions(reader: &mut Reader<'_>) -> Result<Vec<(i64, i32)>, DecodeError> {
    let count = reader.read_len("sessions", 12)?.unwrap_or(0);
    (0..count)
        .map(|_| Ok((reader.read_i64("session id")?, reader.read_i32("session timeout")?)))
        .collect()
}

/// The ACL lists the nodes refer to, by reference.
fn read_acl_cache(reader: &mut Reader<'_>) -> Result<HashMap<i64, Vec<Acl>>, DecodeError> {
    let count = reader.read_len("ACL cache", 12)?.unwrap_or(0);
    let mut acls = HashMap::with_capacity(count);
    for _ in 0..count {
        let reference = reader.read_i64("ACL reference")?;
        let list = Vec::<Acl>::read(reader)?;
        acls.insert(reference, list);
    }
    Ok(acls)
}

fn read_nodes(
    reader: &mut Reader<'_>,
    acls: &HashMap<i64, Vec<Acl>>,
    path: &str,
) -> Result<Vec<SnapshotNode>, ZkFileError> {
    let malformed = |source| ZkFileError::Malformed { path: path.to_owned(), source };
    let mut nodes = Vec::new();
    while let Some(node) = read_node(reader, acls).map_err(malformed)? {
        nodes.push(node);
    }
    Ok(nodes)
}

/// The next node, or `None` at the lone `/` that ends them.
fn read_node(
    reader: &mut Reader<'_>,
    acls: &HashMap<i64, Vec<Acl>>,
) -> Result<Option<SnapshotNode>, DecodeError> {
    let node_path = reader.read_ustring("path")?.unwrap_or_default();
    if node_path == "/" {
        return Ok(None);
    }
    let data = reader.read_buffer("data")?;
    let reference = reader.read_i64("ACL reference")?;
    let stat = StatPersisted::read(reader)?;
    let acl = match reference {
        OPEN_ACL_REFERENCE => vec![open_acl()],
        _ => acls.get(&reference).cloned().ok_or(DecodeError::Invalid {
            what: "ACL reference",
            offset: reader.position(),
            reason: "names no ACL in the snapshot's cache",
        })?,
    };
    // The root is written with an empty path.
    let node_path = if node_path.is_empty() { "/".to_owned() } else { node_path };
    Ok(Some(SnapshotNode { path: node_path, data, acl, stat }))
}

/// `world:anyone` with every permission: ZooKeeper's `OPEN_ACL_UNSAFE`.
fn open_acl() -> Acl {
    Acl { perms: ALL_PERMISSIONS, id: Id { scheme: "world".into(), id: "anyone".into() } }
}

/// ZooKeeper's `ZxidDigest`: a zxid, a digest version, and the digest (a hex string
/// before version 2). Read only to reach what follows it.
fn read_digest(reader: &mut Reader<'_>) -> Result<(), DecodeError> {
    reader.read_i64("digest zxid")?;
    let version = reader.read_i32("digest version")?;
    if version < 2 {
        reader.read_ustring("digest")?;
    } else {
        reader.read_i64("digest")?;
    }
    Ok(())
}

/// `SnapStream.checkSealIntegrity`: the Adler-32 of every byte before it, then `/`.
fn check_seal(
    reader: &mut Reader<'_>,
    bytes: &Bytes,
    path: &str,
    what: &str,
) -> Result<(), ZkFileError> {
    let expected = adler32(&bytes[..reader.position()]);
    let malformed = |source| ZkFileError::Malformed { path: path.to_owned(), source };
    let sealed = reader.read_i64("checksum").map_err(malformed)?;
    reader.read_ustring("seal").map_err(malformed)?;
    if sealed != i64::from(expected) {
        return Err(ZkFileError::Checksum { path: path.to_owned(), what: what.to_owned() });
    }
    Ok(())
}

/// Encodes `snapshot` as ZooKeeper 3.8 writes a snapshot file (uncompressed, with an
/// empty digest, which ZooKeeper reads as "no digest to compare"), for `zkrs export`.
/// Nodes must come parents first, as [`Snapshot::nodes`] says; ACL lists get references
/// in the order they first appear, `world:anyone` with every permission the implicit -1.
pub fn encode(snapshot: &Snapshot) -> BytesMut {
    let mut out = BytesMut::new();
    write_i32(&mut out, MAGIC);
    write_i32(&mut out, super::VERSION);
    write_i64(&mut out, -1);
    write_state(snapshot, &mut out);
    write_ustring(&mut out, "/");
    seal(&mut out);
    // An empty ZxidDigest (zxid 0, version 2, digest 0), sealed.
    write_i64(&mut out, 0);
    write_i32(&mut out, 2);
    write_i64(&mut out, 0);
    seal(&mut out);
    out
}

/// Encodes `snapshot` as a ZooKeeper leader streams it to a learner after SNAP, which
/// [`TransferReader`] reads.
pub fn encode_transferred(snapshot: &Snapshot) -> BytesMut {
    let mut out = BytesMut::new();
    write_state(snapshot, &mut out);
    write_transfer_end(&mut out);
    out
}

/// The sessions, the ACL cache and the nodes: what a snapshot file and a transferred
/// snapshot share (the lone `/` that ends the nodes follows).
fn write_state(snapshot: &Snapshot, out: &mut BytesMut) {
    let open = vec![open_acl()];
    let mut references: HashMap<&[Acl], i64> = HashMap::new();
    let mut lists: Vec<(i64, &[Acl])> = Vec::new();
    for node in &snapshot.nodes {
        if node.acl != open && !references.contains_key(node.acl.as_slice()) {
            let reference = i64::try_from(lists.len() + 1).unwrap_or(i64::MAX);
            lists.push((reference, &node.acl));
            references.insert(&node.acl, reference);
        }
    }
    write_transfer_head(&snapshot.sessions, &lists, out);
    for node in &snapshot.nodes {
        let reference = references.get(node.acl.as_slice()).copied();
        let reference = reference.unwrap_or(OPEN_ACL_REFERENCE);
        write_transfer_node(out, &node.path, node.data.as_deref(), reference, &node.stat);
    }
}

/// What a transferred snapshot (or a snapshot file, after its header) begins with: the
/// sessions and the ACL cache, each list with the reference its nodes give
/// (`world:anyone` with every permission is [`OPEN_ACL_REFERENCE`] and not listed).
/// With it, [`write_transfer_node`] and [`write_transfer_end`] write a snapshot one
/// node at a time, as a leader walking its tree does.
pub fn write_transfer_head(sessions: &[(i64, i32)], acls: &[(i64, &[Acl])], out: &mut BytesMut) {
    write_len(out, sessions.len());
    for (id, timeout_ms) in sessions {
        write_i64(out, *id);
        write_i32(out, *timeout_ms);
    }
    write_len(out, acls.len());
    for (reference, list) in acls {
        write_i64(out, *reference);
        write_len(out, list.len());
        for acl in *list {
            acl.write(out);
        }
    }
}

/// One node: its path (the root's `/` as the empty path ZooKeeper writes), its data,
/// its ACL reference and its persisted stat. Parents must come before their children.
pub fn write_transfer_node(
    out: &mut BytesMut,
    path: &str,
    data: Option<&[u8]>,
    reference: i64,
    stat: &StatPersisted,
) {
    write_ustring(out, if path == "/" { "" } else { path });
    write_buffer(out, data);
    write_i64(out, reference);
    stat.write(out);
}

/// The end of a transferred snapshot: the lone `/` after the nodes, and ZooKeeper's
/// signature.
pub fn write_transfer_end(out: &mut BytesMut) {
    write_ustring(out, "/");
    write_ustring(out, TRANSFER_SIGNATURE);
}

fn seal(out: &mut BytesMut) {
    let checksum = adler32(out);
    write_i64(out, i64::from(checksum));
    write_ustring(out, "/");
}

#[cfg(test)]
#[path = "snapshot_test.rs"]
mod tests;
