//! A ZooKeeper snapshot (`snapshot.<zxid>`), as `FileSnap` writes it: the header, the
//! sessions with their timeouts, the ACL cache, every node in pre-order (its path, data,
//! ACL reference and `StatPersisted`) until a lone `/`, then the Adler-32 seal of all of
//! that. ZooKeeper 3.6+ appends the tree's digest and 3.9 the last processed zxid, each
//! sealed again; a snapshot from before them simply ends earlier, and ZooKeeper reads
//! both, as this does.
//!
//! A snapshot is fuzzy: ZooKeeper writes it while it applies txns, so the tree is only
//! right once the log's txns from the snapshot's zxid on are replayed over it.
//!
//! Snapshots are read as a stream ([`stream_snapshot`]): each node is handed over as soon
//! as it is whole, and the seal is checked over the bytes as they pass, so reading a
//! snapshot of any size holds one piece of it at a time.

use std::collections::HashMap;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use jute::records::{Acl, Id, StatPersisted};
use jute::writer::{write_buffer, write_i32, write_i64, write_len, write_ustring};
use jute::{DecodeError, Reader, Record};

use super::{check_header, ZkFileError};

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
/// `snapshot.compression.method` compressed it (`.gz`, `.snappy`, or none), whole.
///
/// # Errors
/// As [`stream_snapshot`].
pub fn read_snapshot(path: &Path) -> Result<Snapshot, ZkFileError> {
    let mut collected = Collected::default();
    let zxid = stream_snapshot(path, &mut |piece| collected.take(piece))?;
    Ok(collected.into_snapshot(zxid))
}

/// Reads the snapshot at `path` (named and compressed as [`read_snapshot`] says) and
/// hands `piece` its sessions and then each node, parents first, as soon as each is
/// whole; returns the snapshot's zxid. A piece `piece` refuses makes the snapshot
/// invalid. Everything handed over before an error is to be discarded: the seal is
/// checked only at the end.
///
/// # Errors
/// If the file cannot be read or uncompressed, is not a ZooKeeper snapshot, does not
/// decode, is no tree, or fails its checksum.
pub fn stream_snapshot(
    path: &Path,
    piece: &mut dyn FnMut(TransferPiece) -> Result<(), String>,
) -> Result<i64, ZkFileError> {
    let shown = path.display().to_string();
    let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default();
    let zxid = super::zxid_of_file_name(name, "snapshot").unwrap_or(0);
    let io = |source| ZkFileError::Io { path: shown.clone(), source };
    let file = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let compressed = |reason| ZkFileError::Compressed { path: shown.clone(), reason };
    if name.ends_with(".gz") {
        let mut input = flate2::read::MultiGzDecoder::new(file);
        read_stream(&mut input, &shown, piece).map_err(|err| gzip_error(err, &shown))?;
    } else if name.ends_with(".snappy") {
        let mut input = SnappyJavaReader::new(file).map_err(compressed)?;
        read_stream(&mut input, &shown, piece)?;
    } else {
        let mut input = file;
        read_stream(&mut input, &shown, piece)?;
    }
    Ok(zxid)
}

/// A gzip stream that fails to inflate is a compression error, not a read error.
fn gzip_error(err: ZkFileError, path: &str) -> ZkFileError {
    match err {
        ZkFileError::Io { source, .. }
            if matches!(
                source.kind(),
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData
            ) =>
        {
            ZkFileError::Compressed { path: path.to_owned(), reason: format!("not gzip: {source}") }
        }
        err => err,
    }
}

/// A snapshot's pieces gathered whole.
#[derive(Default)]
struct Collected {
    sessions: Vec<(i64, i32)>,
    nodes: Vec<SnapshotNode>,
}

impl Collected {
    fn take(&mut self, piece: TransferPiece) -> Result<(), String> {
        match piece {
            TransferPiece::Sessions(sessions) => self.sessions = sessions,
            TransferPiece::Node(node) => self.nodes.push(node),
        }
        Ok(())
    }

    fn into_snapshot(self, zxid: i64) -> Snapshot {
        Snapshot { zxid, sessions: self.sessions, nodes: self.nodes }
    }
}

/// Bytes of a snapshot read at once.
const READ_CHUNK: usize = 1 << 20;
/// Most bytes after a snapshot's nodes: its seals, digest and last processed zxid take
/// a few dozen.
const TAIL_MAX: u64 = 1 << 16;

/// Reads an uncompressed snapshot file's bytes from `input` (an upload, say; `name`
/// names it in errors), handing `piece` each piece as it comes, and checks every seal;
/// returns the last processed zxid ZooKeeper 3.9 writes after the digest, if there.
///
/// # Errors
/// As [`stream_snapshot`].
pub fn read_stream(
    input: &mut dyn std::io::Read,
    path: &str,
    piece: &mut dyn FnMut(TransferPiece) -> Result<(), String>,
) -> Result<Option<i64>, ZkFileError> {
    let io = |source| ZkFileError::Io { path: path.to_owned(), source };
    let malformed = |source| ZkFileError::Malformed { path: path.to_owned(), source };
    let cut_short = |what| malformed(DecodeError::Incomplete { what, offset: 0, needed: 1 });
    let mut header = [0u8; 16];
    if let Err(err) = input.read_exact(&mut header) {
        return Err(match err.kind() {
            std::io::ErrorKind::UnexpectedEof => cut_short("the file header"),
            _ => io(err),
        });
    }
    check_header(&mut Reader::new(&Bytes::copy_from_slice(&header)), path, "snapshot", MAGIC)?;
    let mut sum = adler2::Adler32::new();
    sum.write_slice(&header);
    let mut state = TransferReader::in_file();
    let mut buffer = vec![0u8; READ_CHUNK];
    let mut pieces = Vec::new();
    let rest = loop {
        let read = input.read(&mut buffer).map_err(io)?;
        if read == 0 {
            return Err(cut_short("the snapshot's nodes"));
        }
        let chunk = &buffer[..read];
        let end = state.feed(chunk, &mut pieces).map_err(|err| match err {
            ZkFileError::Malformed { source, .. } => malformed(source),
            err => err,
        })?;
        for whole in pieces.drain(..) {
            piece(whole)
                .map_err(|reason| ZkFileError::InvalidTree { path: path.to_owned(), reason })?;
        }
        // What follows the nodes ends the chunk: the seal covers what comes before it.
        match end {
            Some(rest) => {
                sum.write_slice(&chunk[..read - rest.len()]);
                break rest;
            }
            None => sum.write_slice(chunk),
        }
    };
    let mut tail = rest.to_vec();
    std::io::Read::read_to_end(&mut std::io::Read::take(input, TAIL_MAX), &mut tail).map_err(io)?;
    let tail = Bytes::from(tail);
    let mut reader = Reader::new(&tail);
    check_seal(&mut reader, &tail, sum, path, "the tree")?;
    // ZooKeeper 3.6+: the tree's digest, sealed again; an older snapshot ends here.
    if reader.remaining() > 0 {
        read_digest(&mut reader).map_err(malformed)?;
        check_seal(&mut reader, &tail, sum, path, "the digest")?;
    }
    // ZooKeeper 3.9: the last processed zxid, sealed again.
    if reader.remaining() == 0 {
        return Ok(None);
    }
    let last_processed = reader.read_i64("last processed zxid").map_err(malformed)?;
    check_seal(&mut reader, &tail, sum, path, "the last processed zxid")?;
    Ok(Some(last_processed))
}

/// The stream snappy-java's `SnappyOutputStream` writes, uncompressed as it is read: its
/// 16-byte header (a magic, a version, the oldest version that reads it), then blocks,
/// each a big-endian length and that many bytes of raw Snappy.
struct SnappyJavaReader<R> {
    input: R,
    decoder: snap::raw::Decoder,
    compressed: Vec<u8>,
    block: Vec<u8>,
    at: usize,
}

impl<R: std::io::Read> SnappyJavaReader<R> {
    /// Reads the stream's header.
    fn new(mut input: R) -> Result<SnappyJavaReader<R>, String> {
        const MAGIC: &[u8] = b"\x82SNAPPY\x00";
        let mut header = [0u8; 16];
        input.read_exact(&mut header).map_err(|_| "not a snappy-java stream".to_owned())?;
        if &header[..MAGIC.len()] != MAGIC {
            return Err("not a snappy-java stream".into());
        }
        let decoder = snap::raw::Decoder::new();
        Ok(SnappyJavaReader { input, decoder, compressed: Vec::new(), block: Vec::new(), at: 0 })
    }

    /// The next block, uncompressed; false at the end of the stream.
    fn next_block(&mut self) -> std::io::Result<bool> {
        let bad = |reason: String| std::io::Error::new(std::io::ErrorKind::InvalidData, reason);
        let mut len = [0u8; 4];
        match self.input.read_exact(&mut len) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(err) => return Err(err),
        }
        let len = usize::try_from(u32::from_be_bytes(len)).map_err(|err| bad(err.to_string()))?;
        self.compressed.resize(len, 0);
        self.input.read_exact(&mut self.compressed)?;
        self.block = self
            .decoder
            .decompress_vec(&self.compressed)
            .map_err(|err| bad(format!("a bad snappy block: {err}")))?;
        self.at = 0;
        Ok(true)
    }
}

impl<R: std::io::Read> std::io::Read for SnappyJavaReader<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.block.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let len = out.len().min(self.block.len() - self.at);
        out[..len].copy_from_slice(&self.block[self.at..self.at + len]);
        self.at += len;
        Ok(len)
    }
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
    /// Reading a snapshot file, where the seal follows the nodes, not a signature.
    in_file: bool,
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
            in_file: false,
        }
    }

    /// A reader of a snapshot file's body, after its header: it returns what follows
    /// the lone `/` that ends the nodes (the file's seals), where a transfer has its
    /// signature.
    fn in_file() -> TransferReader {
        TransferReader { in_file: true, ..TransferReader::new() }
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
                TransferStage::Nodes => match read_node(&mut reader, &self.acls) {
                    Ok(Some(node)) => {
                        out.push(TransferPiece::Node(node));
                        Ok(())
                    }
                    Ok(None) if self.in_file => {
                        return Ok(Some(buffer.slice(reader.position()..)));
                    }
                    Ok(None) => {
                        self.stage = TransferStage::Signature;
                        Ok(())
                    }
                    Err(err) => Err(err),
                },
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
/// `sum` holds the bytes before `tail`, which the seal's reader is in.
fn check_seal(
    reader: &mut Reader<'_>,
    tail: &Bytes,
    sum: adler2::Adler32,
    path: &str,
    what: &str,
) -> Result<(), ZkFileError> {
    let mut sum = sum;
    sum.write_slice(&tail[..reader.position()]);
    let malformed = |source| ZkFileError::Malformed { path: path.to_owned(), source };
    let sealed = reader.read_i64("checksum").map_err(malformed)?;
    reader.read_ustring("seal").map_err(malformed)?;
    if sealed != i64::from(sum.checksum()) {
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
    write_file_header(&mut out);
    write_state(snapshot, &mut out);
    write_nodes_end(&mut out);
    let mut sealing = Sealing::default();
    sealing.seal(&mut out, 0);
    let digest_at = out.len();
    write_empty_digest(&mut out);
    sealing.seal(&mut out, digest_at);
    out
}

/// What a snapshot file begins with: the magic, the version and the database id.
pub fn write_file_header(out: &mut BytesMut) {
    write_i32(out, MAGIC);
    write_i32(out, super::VERSION);
    write_i64(out, -1);
}

/// An empty `ZxidDigest` (zxid 0, version 2, digest 0), which ZooKeeper reads as no
/// digest to compare.
fn write_empty_digest(out: &mut BytesMut) {
    write_i64(out, 0);
    write_i32(out, 2);
    write_i64(out, 0);
}

/// The Adler-32 of a snapshot file's bytes as they are written, which each seal
/// appends (ZooKeeper's `CheckedOutputStream`), so a file can be written in pieces.
#[derive(Default)]
pub struct Sealing {
    checksum: adler2::Adler32,
}

impl Sealing {
    /// Counts bytes written out before the tail.
    pub fn passed(&mut self, bytes: &[u8]) {
        self.checksum.write_slice(bytes);
    }

    /// Counts `out[from..]` and appends the seal of everything counted, counting it too.
    fn seal(&mut self, out: &mut BytesMut, from: usize) {
        self.checksum.write_slice(&out[from..]);
        let at = out.len();
        write_i64(out, i64::from(self.checksum.checksum()));
        write_ustring(out, "/");
        self.checksum.write_slice(&out[at..]);
    }

    /// The end of a ZooKeeper 3.9 snapshot file after the nodes' lone `/`, appended to
    /// `out`, which holds the bytes not yet counted: the seal, an empty digest sealed,
    /// and `last_zxid` (its `lastProcessedZxid`) sealed.
    pub fn finish(mut self, last_zxid: i64, out: &mut BytesMut) {
        self.seal(out, 0);
        let digest_at = out.len();
        write_empty_digest(out);
        self.seal(out, digest_at);
        let zxid_at = out.len();
        write_i64(out, last_zxid);
        self.seal(out, zxid_at);
    }
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
    write_nodes_end(out);
    write_transfer_signature(out);
}

/// The lone `/` that ends the nodes of a snapshot, in a file or transferred.
pub fn write_nodes_end(out: &mut BytesMut) {
    write_ustring(out, "/");
}

/// ZooKeeper's signature after a transferred snapshot's nodes.
pub fn write_transfer_signature(out: &mut BytesMut) {
    write_ustring(out, TRANSFER_SIGNATURE);
}

#[cfg(test)]
#[path = "snapshot_test.rs"]
mod tests;
