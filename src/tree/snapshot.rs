//! The snapshot format: the whole state (every znode with its stat, data and ACL, and the
//! live sessions) as a sequence of self-contained chunks.
//!
//! Snapshots are written while applies go on, one child table at a time, so a snapshot
//! is *fuzzy* as ZooKeeper's are: it holds every change up to the zxid it is labelled
//! with, and possibly some after. Recovery replays the log from that zxid; applying a
//! txn whose effect is already there is harmless (a create finds the node, a delete does
//! not, sets write the same version), exactly as in ZooKeeper.
//!
//! Each chunk carries its own ACL dictionary (at its end, so a chunk is written in one
//! pass) and names the parent of every group of nodes, so chunks decode independently.
//! Checksums belong to the storage layer.
//!
//! A node is written packed as the tree holds it (see [`crate::tree::packed`]), but with its
//! czxid and ctime as steps from the chunk's node before and its ACL by the chunk's own
//! id, so the stat of most nodes takes three or four bytes instead of 64. Chunks of
//! format 2, with every stat field at full width, still load.

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};
use jute::records::{Acl, StatPersisted};
use jute::writer::{write_i32, write_i64, write_ustring};
use jute::{DecodeError, Reader, Record};

use crate::fast_hash::FastHashMap;
use crate::tree::acl::AclId;
use crate::tree::child_walk::ChildWalk;
use crate::tree::data_tree::DataTree;
use crate::tree::node::{self, Node};
use crate::tree::packed;
use crate::txn::{SessionId, Zxid};

/// Chunks are cut once they pass this size (a larger single node makes a larger chunk).
pub const CHUNK_BYTES: usize = 1 << 18;

/// A chunk of nodes with every stat field at full width: what snapshot format 2 wrote.
const KIND_NODES: u8 = 1;
const KIND_SESSIONS: u8 = 2;
/// A chunk of packed nodes: what snapshot format 3 writes.
const KIND_PACKED_NODES: u8 = 3;

/// The fewest bytes a node takes in a chunk of each kind: a bound on a group's count.
const FULL_NODE_LEN_MIN: usize = 4 + 4 + 6 * 8 + 4 * 4;

/// Why a snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A chunk does not decode.
    #[error("snapshot chunk {chunk} is malformed: {source}")]
    Malformed {
        /// Index of the chunk.
        chunk: usize,
        /// What is wrong.
        source: DecodeError,
    },
    /// A chunk is internally inconsistent (unknown kind, ACL, duplicate node).
    #[error("snapshot chunk {chunk} is inconsistent: {reason}")]
    Inconsistent {
        /// Index of the chunk.
        chunk: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

/// What a written snapshot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SnapshotSummary {
    /// Chunks written.
    pub chunks: usize,
    /// Znodes written.
    pub nodes: u64,
    /// Sessions written.
    pub sessions: usize,
    /// Bytes written, before compression.
    pub bytes: u64,
}

/// Builds chunks of nodes, each ending with the ACLs its nodes use. A chunk is built in
/// the buffer it is handed over in: node data is copied once, from the tree.
struct ChunkBuilder {
    chunk: BytesMut,
    acls: FastHashMap<AclId, i32>,
    acl_lists: Vec<(i32, Vec<Acl>)>,
    /// The parent of the group being written, and where its node count sits in `chunk`.
    group: Option<(String, usize, i32)>,
    /// The czxid and ctime of the node written before in this chunk (zeros at its start),
    /// from which the next node's are written as steps.
    previous: packed::Base,
}

impl ChunkBuilder {
    /// A builder writing into `chunk` (cleared first).
    fn new(chunk: BytesMut) -> ChunkBuilder {
        let chunk = start_node_chunk(chunk);
        ChunkBuilder {
            chunk,
            acls: FastHashMap::default(),
            acl_lists: Vec::new(),
            group: None,
            previous: (0, 0),
        }
    }

    fn close_group(&mut self) {
        if let Some((_, count_at, count)) = self.group.take() {
            if let Some(slot) = self.chunk.get_mut(count_at..count_at + 4) {
                slot.copy_from_slice(&count.to_be_bytes());
            }
        }
    }

    fn add(&mut self, tree: &DataTree, parent: &str, node: &Node) {
        if self.group.as_ref().is_none_or(|(group_parent, _, _)| group_parent != parent) {
            self.close_group();
            write_ustring(&mut self.chunk, parent);
            let count_at = self.chunk.len();
            write_i32(&mut self.chunk, 0);
            self.group = Some((parent.to_owned(), count_at, 0));
        }
        let node = node.unpacked();
        let acl = node::acl_of(&node);
        let next_id = i32::try_from(self.acls.len()).unwrap_or(i32::MAX);
        let local_acl = *self.acls.entry(acl).or_insert_with(|| {
            self.acl_lists.push((next_id, tree.acl(acl).to_vec()));
            next_id
        });
        packed::put_name_and_data(&mut self.chunk, node.name, node.data);
        packed::put_stat(&mut self.chunk, &node.stat, i64::from(local_acl), self.previous);
        self.previous = (node.stat.czxid, node.stat.ctime);
        if let Some((_, _, count)) = self.group.as_mut() {
            *count += 1;
        }
    }

    fn is_full(&self) -> bool {
        self.chunk.len() >= CHUNK_BYTES
    }

    fn is_empty(&self) -> bool {
        self.chunk.len() <= 1
    }

    /// Ends the chunk with its ACL dictionary and where that starts, and hands it over;
    /// the builder goes on in `next`.
    fn finish(&mut self, next: BytesMut) -> BytesMut {
        self.close_group();
        let acls_at = u32::try_from(self.chunk.len()).unwrap_or(u32::MAX);
        write_i32(&mut self.chunk, i32::try_from(self.acl_lists.len()).unwrap_or(i32::MAX));
        for (id, list) in self.acl_lists.drain(..) {
            write_i32(&mut self.chunk, id);
            list.write(&mut self.chunk);
        }
        self.chunk.put_u32(acls_at);
        self.acls.clear();
        self.previous = (0, 0);
        std::mem::replace(&mut self.chunk, start_node_chunk(next))
    }
}

/// `chunk` emptied and begun as a node chunk.
fn start_node_chunk(mut chunk: BytesMut) -> BytesMut {
    chunk.clear();
    chunk.put_u8(KIND_PACKED_NODES);
    chunk
}

impl SnapshotSummary {
    /// Counts a chunk about to be handed over.
    fn count(&mut self, chunk: &BytesMut) {
        self.bytes += chunk.len() as u64;
        self.chunks += 1;
    }
}

/// Writes the whole state at `zxid` as chunks, handing each to `emit` as soon as it is
/// full. `sessions` are the live sessions and their timeouts at `zxid`. `emit` may change
/// or take the buffer it is given; its allocation is reused if left.
///
/// # Errors
/// Whatever `emit` returns.
pub fn write_snapshot<E>(
    tree: &DataTree,
    zxid: Zxid,
    sessions: &[(SessionId, i32)],
    mut emit: impl FnMut(&mut BytesMut) -> Result<(), E>,
) -> Result<SnapshotSummary, E> {
    let mut summary = SnapshotSummary::default();
    let mut chunk = BytesMut::new();
    chunk.put_u8(KIND_SESSIONS);
    write_i32(&mut chunk, i32::try_from(sessions.len()).unwrap_or(i32::MAX));
    for (session_id, timeout_ms) in sessions {
        write_i64(&mut chunk, session_id.raw());
        write_i32(&mut chunk, *timeout_ms);
    }
    summary.sessions = sessions.len();
    summary.count(&chunk);
    emit(&mut chunk)?;

    // Chunk buffers are reused: a snapshot of a big tree would otherwise allocate (and
    // page in) a fresh buffer for every chunk.
    let mut builder = ChunkBuilder::new(new_chunk_buffer());
    let mut spare: Vec<BytesMut> = Vec::new();
    let mut full: Vec<BytesMut> = Vec::new();
    let mut parents = tree.parents();
    parents.sort();
    for parent in parents {
        // Each slice of a table is encoded under the table's read lock and stored after
        // it is released, so applies go on meanwhile (see ChildWalk).
        let mut walk = ChildWalk::new(tree, &parent, zxid);
        while walk.step(tree, |nodes| {
            load_into_cache(nodes);
            for node in nodes {
                builder.add(tree, &parent, node);
                summary.nodes += 1;
                if builder.is_full() {
                    let next = spare.pop().unwrap_or_else(new_chunk_buffer);
                    full.push(builder.finish(next));
                }
            }
        }) {
            for mut chunk in full.drain(..) {
                summary.count(&chunk);
                emit(&mut chunk)?;
                spare.push(chunk);
            }
        }
    }
    if !builder.is_empty() {
        let mut chunk = builder.finish(BytesMut::new());
        summary.count(&chunk);
        emit(&mut chunk)?;
    }
    Ok(summary)
}

/// Reads one byte of every cache line of the nodes' data before any of it is copied. The
/// reads are independent, so the processor has many of these cache misses in flight at
/// once; the copies then find the data in cache instead of waiting for each line in turn.
fn load_into_cache(nodes: &[&Node]) {
    const CACHE_LINE_BYTES: usize = 64;
    let mut sum = 0u8;
    for node in nodes {
        for byte in node.data().iter().flat_map(|data| data.iter().step_by(CACHE_LINE_BYTES)) {
            sum ^= byte;
        }
    }
    std::hint::black_box(sum);
}

/// A buffer with room for a full chunk and what storage appends to it.
fn new_chunk_buffer() -> BytesMut {
    BytesMut::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 16)
}

/// The state a snapshot restores.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Live sessions and their timeouts.
    pub sessions: Vec<(SessionId, i32)>,
    /// Znodes loaded.
    pub nodes: u64,
}

/// Loads one chunk into `tree` (which started [`DataTree::empty`]).
///
/// # Errors
/// [`SnapshotError`] if the chunk does not decode or contradicts itself.
pub fn load_chunk(
    tree: &DataTree,
    index: usize,
    chunk: &Bytes,
    loaded: &mut Loaded,
) -> Result<(), SnapshotError> {
    let malformed = |source| SnapshotError::Malformed { chunk: index, source };
    let inconsistent = |reason| SnapshotError::Inconsistent { chunk: index, reason };
    let mut reader = Reader::new(chunk);
    match reader.read_u8("chunk kind").map_err(malformed)? {
        KIND_SESSIONS => {
            let count = reader.read_len("sessions", 12).map_err(malformed)?.unwrap_or(0);
            for _ in 0..count {
                let session_id = SessionId::new(reader.read_i64("session id").map_err(malformed)?);
                let timeout_ms = reader.read_i32("session timeout").map_err(malformed)?;
                loaded.sessions.push((session_id, timeout_ms));
            }
            Ok(())
        }
        kind @ (KIND_NODES | KIND_PACKED_NODES) => {
            let (groups, acl_table) = split_node_chunk(chunk).ok_or(inconsistent(
                "the ACL table of a node chunk is not where the chunk says it is",
            ))?;
            let mut acl_reader = Reader::new(&acl_table);
            let acl_count = acl_reader.read_len("acls", 8).map_err(malformed)?.unwrap_or(0);
            // Each of the chunk's ACL lists, interned, with the number of nodes using it.
            let mut acls = HashMap::with_capacity(acl_count);
            for _ in 0..acl_count {
                let local = acl_reader.read_i32("acl id").map_err(malformed)?;
                let list = Vec::<Acl>::read(&mut acl_reader).map_err(malformed)?;
                acls.insert(local, (tree.intern_acl(&list), 0));
            }
            let result = if acl_reader.remaining() > 0 {
                Err(inconsistent("bytes after the ACL table"))
            } else {
                let packed = kind == KIND_PACKED_NODES;
                load_groups(tree, &mut Reader::new(&groups), packed, &mut acls, loaded, index)
            };
            for (acl, uses) in acls.into_values() {
                tree.acquire_acl(acl, uses);
                tree.release_acl(acl);
            }
            result
        }
        _ => Err(inconsistent("unknown chunk kind")),
    }
}

/// A node chunk's node groups and its ACL table: the chunk's last four bytes say where
/// the table starts (after the kind byte and the groups).
fn split_node_chunk(chunk: &Bytes) -> Option<(Bytes, Bytes)> {
    let end = chunk.len().checked_sub(4)?;
    let acls_at = u32::from_be_bytes(chunk.get(end..)?.try_into().ok()?) as usize;
    (1..=end).contains(&acls_at).then(|| (chunk.slice(1..acls_at), chunk.slice(acls_at..end)))
}

fn load_groups(
    tree: &DataTree,
    reader: &mut Reader<'_>,
    packed: bool,
    acls: &mut HashMap<i32, (AclId, u64)>,
    loaded: &mut Loaded,
    index: usize,
) -> Result<(), SnapshotError> {
    let malformed = |source| SnapshotError::Malformed { chunk: index, source };
    let inconsistent = |reason| SnapshotError::Inconsistent { chunk: index, reason };
    let node_len_min = if packed { packed::LEN_MIN } else { FULL_NODE_LEN_MIN };
    // The interned ACL of a chunk's id, counting one more use of it.
    let mut use_acl = |local: Option<i32>| {
        let (acl, uses) = local
            .and_then(|local| acls.get_mut(&local))
            .ok_or(inconsistent("a node names an ACL the chunk lacks"))?;
        *uses += 1;
        Ok::<AclId, SnapshotError>(*acl)
    };
    let mut previous = (0, 0);
    while reader.remaining() > 0 {
        let parent = String::read(reader).map_err(malformed)?;
        let count = reader.read_len("nodes", node_len_min).map_err(malformed)?.unwrap_or(0);
        let mut nodes = Vec::with_capacity(count);
        for _ in 0..count {
            let node = if packed {
                let node = reader
                    .read_foreign("packed node", |bytes, at| packed::read(bytes, at, previous))
                    .map_err(malformed)?;
                previous = (node.stat.czxid, node.stat.ctime);
                let acl = use_acl(i32::try_from(node.acl).ok())?;
                let name = String::from_utf8_lossy(node.name);
                Node::from_persisted(&name, node.data, acl, &node.stat)
            } else {
                let (name, data, stat, local_acl) = read_full_node(reader).map_err(malformed)?;
                Node::from_persisted(&name, data.as_deref(), use_acl(Some(local_acl))?, &stat)
            };
            nodes.push(node);
        }
        tree.load_nodes(&parent, nodes).map_err(|_| inconsistent("a node appears twice"))?;
        loaded.nodes += count as u64;
    }
    Ok(())
}

/// A node of format 2 as a chunk holds it: name, data, stat, and the chunk's id of its ACL.
type FullNode = (String, Option<Bytes>, StatPersisted, i32);

/// Reads a node of format 2: name, data, then every stat field at full width.
fn read_full_node(reader: &mut Reader<'_>) -> Result<FullNode, DecodeError> {
    let name = reader.read_ustring("name")?.unwrap_or_default();
    let data = reader.read_buffer("data")?;
    let mut longs = [0i64; 6];
    for value in &mut longs {
        *value = reader.read_i64("stat")?;
    }
    let mut ints = [0i32; 4];
    for value in &mut ints {
        *value = reader.read_i32("stat")?;
    }
    let [version, cversion, aversion, local_acl] = ints;
    Ok((name, data, packed::persisted_stat(longs, [version, cversion, aversion]), local_acl))
}

#[cfg(test)]
#[path = "snapshot_test.rs"]
mod tests;
