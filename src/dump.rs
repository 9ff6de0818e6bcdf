//! `zkrs log dump` and `zkrs snapshot dump`: readable listings of what a data directory
//! holds, with every checksum verified (zkrs's zkTxnLogToolkit and zkSnapShotToolkit).

use std::io::Write;
use std::ops::RangeInclusive;

use bytes::Bytes;
use jute::records::{Acl, Stat};
use jute::{Code, OpCode};

use crate::proto::stat_text::stat_lines;
use crate::server::four_letter::java_date;
use crate::storage::record::decode_entry;
use crate::storage::{SnapshotHeader, Storage, StorageError};
use crate::tree::data_tree::{child_path, DataTree};
use crate::tree::snapshot::{load_chunk, Loaded};
use crate::txn::{Txn, TxnBody, Zxid};

fn show_data(data: Option<&Bytes>) -> String {
    match data {
        None => "null".into(),
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) if text.chars().all(|c| !c.is_control()) && text.len() <= 64 => {
                format!("{text:?}")
            }
            _ => format!("{} bytes", bytes.len()),
        },
    }
}

fn show_acl(acl: &[Acl]) -> String {
    let entries: Vec<String> = acl
        .iter()
        .map(|entry| format!("{}:{}:{}", entry.id.scheme, entry.id.id, entry.perms))
        .collect();
    format!("[{}]", entries.join(","))
}

fn describe(body: &TxnBody) -> String {
    match body {
        TxnBody::Create(create) => format!(
            "{} data={} acl={} ephemeral={} parentCVersion={}",
            create.path,
            show_data(create.data.as_ref()),
            show_acl(&create.acl),
            create.ephemeral,
            create.parent_cversion
        ),
        TxnBody::CreateTtl(create) => {
            format!(
                "{} data={} acl={} ttl={}",
                create.path,
                show_data(create.data.as_ref()),
                show_acl(&create.acl),
                create.ttl
            )
        }
        TxnBody::CreateContainer(create) => {
            format!(
                "{} data={} acl={}",
                create.path,
                show_data(create.data.as_ref()),
                show_acl(&create.acl)
            )
        }
        TxnBody::Delete(delete) => delete.path.clone(),
        TxnBody::SetData(set) => {
            format!("{} data={} version={}", set.path, show_data(set.data.as_ref()), set.version)
        }
        TxnBody::SetAcl(set) => {
            format!("{} acl={} version={}", set.path, show_acl(&set.acl), set.version)
        }
        TxnBody::Check(check) => format!("{} version={}", check.path, check.version),
        TxnBody::CreateSession(create) => format!("timeout={}", create.time_out),
        TxnBody::CloseSession(close) => format!("ephemerals={:?}", close.paths_to_delete),
        TxnBody::Error(error) => match Code::from_i32(error.err) {
            Some(code) => format!("{code:?}"),
            None => format!("error {}", error.err),
        },
        TxnBody::Multi(subs) => {
            let parts: Vec<String> = subs
                .iter()
                .map(|sub| format!("{{{:?} {}}}", sub.op_type, describe(&sub.body)))
                .collect();
            parts.join(" ")
        }
    }
}

fn describe_txn(txn: &Txn) -> String {
    let op = OpCode::from_i32(txn.header.op_type)
        .map_or_else(|| txn.header.op_type.to_string(), |op| format!("{op:?}"));
    format!(
        "{} session {} cxid 0x{:x} zxid 0x{:x} {op} {}",
        java_date(u64::try_from(txn.header.time).unwrap_or(0)),
        txn.session_id(),
        txn.header.cxid,
        txn.header.zxid,
        describe(&txn.body)
    )
}

/// Why a dump failed.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// The store cannot be read, or what it holds is damaged.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// No snapshot (`None`), or none at the zxid asked for.
    #[error("{}", match .0 {
        None => "no snapshot in this data directory".to_owned(),
        Some(zxid) => format!("no snapshot at zxid 0x{zxid:x} (see zkrs snapshot list)"),
    })]
    NoSnapshot(Option<Zxid>),
    /// Writing the dump failed.
    #[error("writing the dump: {0}")]
    Output(#[from] std::io::Error),
}

/// Lists the log entries whose zxids are in `range`, checking each checksum; damaged
/// entries are reported and counted.
///
/// # Errors
/// When the store cannot be read or `out` fails.
pub fn dump_log(
    storage: &dyn Storage,
    range: RangeInclusive<Zxid>,
    out: &mut dyn Write,
) -> Result<(), DumpError> {
    let (mut entries, mut damaged) = (0u64, 0u64);
    let mut failure = None;
    let after = if *range.start() > Zxid::ZERO { *range.start() - 1 } else { Zxid::ZERO };
    storage.read_log(after, &mut |entry| {
        if entry.zxid > *range.end() {
            return false;
        }
        entries += 1;
        let line = match decode_entry(&entry) {
            Ok(txn) => describe_txn(&txn),
            Err(err) => {
                damaged += 1;
                format!("zxid 0x{:x} DAMAGED: {err}", entry.zxid)
            }
        };
        if let Err(err) = writeln!(out, "{line}") {
            failure = Some(err);
            return false;
        }
        true
    })?;
    if let Some(err) = failure {
        return Err(DumpError::Output(err));
    }
    writeln!(
        out,
        "{entries} entries, {} checksums verified, {damaged} damaged",
        entries - damaged
    )?;
    Ok(())
}

/// Prints a snapshot — the newest, or the one labelled `zxid` — with its header,
/// sessions, and every znode with its stat, sorted by path.
///
/// # Errors
/// When the store cannot be read, there is no such snapshot, the snapshot is damaged, or
/// `out` fails.
pub fn dump_snapshot(
    storage: &dyn Storage,
    zxid: Option<Zxid>,
    out: &mut dyn Write,
) -> Result<(), DumpError> {
    let snapshots = storage.snapshots()?;
    let chosen = match zxid {
        None => snapshots.into_iter().next(),
        Some(zxid) => snapshots.into_iter().find(|header| header.zxid == zxid),
    };
    let Some(header) = chosen else {
        return Err(DumpError::NoSnapshot(zxid));
    };
    let tree = DataTree::empty(true);
    let mut loaded = Loaded::default();
    storage.read_snapshot(&header, &mut |index, chunk| {
        load_chunk(&tree, index, &chunk, &mut loaded).map_err(StorageError::Snapshot)
    })?;
    write_header(&header, out)?;
    writeln!(out, "Sessions ({}):", loaded.sessions.len())?;
    for (session_id, timeout_ms) in &loaded.sessions {
        writeln!(out, "  {session_id} timeout {timeout_ms} ms")?;
    }
    write_tree(&tree, out)
}

/// Lists the complete snapshots, newest first, one header a line.
///
/// # Errors
/// When the store cannot be read or `out` fails.
pub fn list_snapshots(storage: &dyn Storage, out: &mut dyn Write) -> Result<(), DumpError> {
    let snapshots = storage.snapshots()?;
    for header in &snapshots {
        write_header(header, out)?;
    }
    writeln!(out, "{} snapshots", snapshots.len())?;
    Ok(())
}

fn write_header(header: &SnapshotHeader, out: &mut dyn Write) -> Result<(), DumpError> {
    writeln!(
        out,
        "Snapshot zxid 0x{:x}, {} znodes, {} sessions, {} chunks, {} bytes, written {}",
        header.zxid,
        header.nodes,
        header.sessions,
        header.chunks,
        header.bytes,
        java_date(u64::try_from(header.created_ms).unwrap_or(0))
    )?;
    Ok(())
}

/// Every znode of `tree` with its stat and data, sorted by path.
///
/// # Errors
/// When `out` fails.
pub fn write_tree(tree: &DataTree, out: &mut dyn Write) -> Result<(), DumpError> {
    let mut paths = Vec::new();
    let mut pending = vec!["/".to_owned()];
    while let Some(path) = pending.pop() {
        for child in tree.children(&path) {
            pending.push(child_path(&path, &child));
        }
        paths.push(path);
    }
    paths.sort();
    writeln!(out, "ZNode Details (count={}):", paths.len())?;
    for path in paths {
        let Some(line) = tree.with_node(&path, |node, children| {
            let stat = node.stat(children, tree.extended_types_enabled());
            let data = node.data().map(Bytes::copy_from_slice);
            let stat = Stat { ephemeral_owner: node.ephemeral_owner(), ..stat };
            let lines: String =
                stat_lines(&stat).lines().map(|line| format!("  {line}\n")).collect();
            format!(
                "{path}\n{lines}  data = {}\n  acl = {}",
                show_data(data.as_ref()),
                show_acl(&tree.acl(node.acl())),
            )
        }) else {
            continue;
        };
        writeln!(out, "{line}")?;
    }
    Ok(())
}
