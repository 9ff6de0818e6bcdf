//! Reads, answered straight from the tree by the connection that received them
//! (ZooKeeper's `FinalRequestProcessor` for non-txn requests).
//!
//! Each read holds a [`ReadView`] while it reads and registers its watch, so no change
//! can fall between the two, and queues its reply before releasing the view, so any
//! notification a later change triggers is queued after it.

use jute::records::{
    Acl, AddWatchRequest, CheckWatchesRequest, ErrorResponse, ExistsRequest, ExistsResponse,
    GetAclResponse, GetAllChildrenNumberResponse, GetChildren2Response, GetChildrenResponse,
    GetDataResponse, GetEphemeralsResponse, Id, MultiOp, MultiRequest, MultiResponse, MultiResult,
    SetSaslResponse, SetWatches2, WhoAmIResponse,
};
use jute::Code;

use crate::proto::reply::{self, WriteRecord};
use crate::proto::Request;
use crate::server::registry::Connection;
use crate::server::stats::ServerStats;
use crate::session::auth::check_acl;
use crate::session::AuthIds;
use crate::tree::acl::{perms, AclList};
use crate::tree::{traffic, EventType, ReadView, WatchEvent, WatchManager, WatcherMode};
use crate::txn::{SessionId, Zxid};

/// Who is reading.
pub struct ReadRequester<'a> {
    /// The connection, whose id is the watcher id and which receives the reply.
    pub connection: &'a Connection,
    /// The connection's session.
    pub session_id: SessionId,
    /// The connection's identities.
    pub auth: &'a AuthIds,
    /// The server's counters, which count the notifications a read fires.
    pub stats: &'a ServerStats,
}

/// Answers a read and queues the reply (and any notifications it causes) on the
/// connection. Returns the zxid the reply carried and the reply's size in bytes.
pub fn answer(
    view: &ReadView<'_>,
    reader: &ReadRequester<'_>,
    xid: i32,
    request: &Request,
) -> (i64, usize) {
    let zxid = view.last_applied_zxid();
    let frame = match execute(view, reader, request) {
        Ok(Some(body)) => reply::ok(xid, zxid, body.as_ref()),
        Ok(None) => reply::status(xid, zxid, Code::Ok),
        Err(code) => reply::status(xid, zxid, code),
    };
    let size = frame.len();
    reader.connection.send(frame);
    (zxid.raw(), size)
}

type Body = Box<dyn WriteRecord>;

fn node_acl(view: &ReadView<'_>, path: &str) -> Result<Vec<Acl>, Code> {
    let tree = view.tree();
    tree.with_node(path, |node, _| tree.acl(node.acl()).to_vec()).ok_or(Code::NoNode)
}

fn execute(
    view: &ReadView<'_>,
    reader: &ReadRequester<'_>,
    request: &Request,
) -> Result<Option<Body>, Code> {
    let tree = view.tree();
    let watcher = reader.connection.id;
    Ok(Some(match request {
        Request::Ping => return Ok(None),
        Request::Exists(ExistsRequest { path, watch }) => {
            if path.contains('\0') {
                return Err(Code::BadArguments);
            }
            if *watch {
                view.data_watches().add(path, watcher, WatcherMode::Standard);
            }
            let stat = tree.stat(path).ok_or(Code::NoNode)?;
            view.traffic().read(path, 0);
            Box::new(ExistsResponse { stat })
        }
        Request::GetData(request) => {
            Box::new(get_data(view, reader, &request.path, request.watch)?)
        }
        Request::GetChildren(request) => {
            let (children, _) = get_children(view, reader, &request.path, request.watch)?;
            Box::new(GetChildrenResponse { children })
        }
        Request::GetChildren2(request) => {
            let (children, stat) = get_children(view, reader, &request.path, request.watch)?;
            Box::new(GetChildren2Response { children, stat })
        }
        Request::GetAcl(request) => {
            let acl = node_acl(view, &request.path)?;
            check_acl(&acl, perms::READ | perms::ADMIN, reader.auth)?;
            let stat = tree.stat(&request.path).ok_or(Code::NoNode)?;
            let acl = if check_acl(&acl, perms::ADMIN, reader.auth).is_ok() {
                acl
            } else {
                mask_digests(acl)
            };
            Box::new(GetAclResponse { acl, stat })
        }
        Request::GetAllChildrenNumber(request) => {
            let acl = node_acl(view, &request.path)?;
            check_acl(&acl, perms::READ, reader.auth)?;
            let total = tree.descendant_count(&request.path);
            Box::new(GetAllChildrenNumberResponse {
                total_number: i32::try_from(total).unwrap_or(i32::MAX),
            })
        }
        Request::GetEphemerals(request) => {
            let prefix = request.prefix_path.trim();
            let ephemerals = tree
                .ephemerals(reader.session_id)
                .into_iter()
                .filter(|path| {
                    prefix.is_empty() || prefix == "/" || path.starts_with(&request.prefix_path)
                })
                .collect();
            Box::new(GetEphemeralsResponse { ephemerals })
        }
        Request::MultiRead(multi) => Box::new(multi_read(view, reader, multi)),
        Request::CheckWatches(CheckWatchesRequest { path, watcher_type }) => {
            // ZooKeeper walks the path's parents here and fails on a path without '/'.
            if !path.is_empty() && !path.contains('/') {
                return Err(Code::MarshallingError);
            }
            return for_watches(view, *watcher_type, |watches| watches.is_watched(path));
        }
        Request::RemoveWatches(request) => {
            let path = &request.path;
            return for_watches(view, request.watcher_type, |watches| {
                watches.remove(path, watcher)
            });
        }
        Request::SetWatches(watches) => {
            set_watches(view, reader, watches);
            return Ok(None);
        }
        Request::AddWatch(AddWatchRequest { path, mode }) => {
            let mode = WatcherMode::from_add_watch_mode(*mode).ok_or(Code::MarshallingError)?;
            // ZooKeeper 3.8 registers both kinds, recursive ones included (in the child
            // manager a recursive watch still sees deletions, never child-list changes).
            view.data_watches().add(path, watcher, mode);
            view.child_watches().add(path, watcher, mode);
            Box::new(ErrorResponse { err: 0 })
        }
        Request::WhoAmI => Box::new(WhoAmIResponse { client_info: reader.auth.client_infos() }),
        Request::Sasl(_) => Box::new(SetSaslResponse { token: None }),
        _ => return Err(Code::Unimplemented),
    }))
}

/// Applies `check` to the watches a `watcherType` names (1 children, 2 data, 3 both);
/// `NoWatcher` unless one of them answers true.
fn for_watches(
    view: &ReadView<'_>,
    watcher_type: i32,
    check: impl Fn(&WatchManager) -> bool,
) -> Result<Option<Body>, Code> {
    let found = match watcher_type {
        1 => check(view.child_watches()),
        2 => check(view.data_watches()),
        3 => check(view.child_watches()) | check(view.data_watches()),
        _ => return Err(Code::MarshallingError),
    };
    if found {
        Ok(None)
    } else {
        Err(Code::NoWatcher)
    }
}

fn get_data(
    view: &ReadView<'_>,
    reader: &ReadRequester<'_>,
    path: &str,
    watch: bool,
) -> Result<GetDataResponse, Code> {
    let tree = view.tree();
    let acl = node_acl(view, path)?;
    check_acl(&acl, perms::READ, reader.auth)?;
    if watch {
        view.data_watches().add(path, reader.connection.id, WatcherMode::Standard);
    }
    let response = tree
        .with_node(path, |node, children| {
            let (data, stat) = node.data_and_stat(children, tree.extended_types_enabled());
            GetDataResponse { data: data.map(bytes::Bytes::copy_from_slice), stat }
        })
        .ok_or(Code::NoNode)?;
    view.traffic().read(path, response.data.as_ref().map_or(0, |data| data.len() as u64));
    Ok(response)
}

fn get_children(
    view: &ReadView<'_>,
    reader: &ReadRequester<'_>,
    path: &str,
    watch: bool,
) -> Result<(Vec<String>, jute::records::Stat), Code> {
    let tree = view.tree();
    let acl = node_acl(view, path)?;
    check_acl(&acl, perms::READ, reader.auth)?;
    let stat = tree.stat(path).ok_or(Code::NoNode)?;
    if watch {
        view.child_watches().add(path, reader.connection.id, WatcherMode::Standard);
    }
    let children = tree.children(path);
    let names: u64 = children.iter().map(|child| traffic::java_length(child)).sum();
    view.traffic().read(path, names);
    Ok((children, stat))
}

/// Clients without ADMIN see digest ids as `user:x` (ZooKeeper 3.8's getACL).
fn mask_digests(acl: Vec<Acl>) -> Vec<Acl> {
    acl.into_iter()
        .map(|entry| {
            if entry.id.scheme != "digest" {
                return entry;
            }
            let user = entry.id.id.split(':').next().unwrap_or("");
            Acl { perms: entry.perms, id: Id { scheme: "digest".into(), id: format!("{user}:x") } }
        })
        .collect()
}

fn multi_read(
    view: &ReadView<'_>,
    reader: &ReadRequester<'_>,
    multi: &MultiRequest,
) -> MultiResponse {
    let results = multi
        .ops
        .iter()
        .map(|op| match op {
            MultiOp::GetChildren(request) => match get_children(view, reader, &request.path, false)
            {
                Ok((children, _)) => MultiResult::GetChildren(children),
                Err(code) => MultiResult::Error(code.as_i32()),
            },
            MultiOp::GetData(request) => match get_data(view, reader, &request.path, false) {
                Ok(GetDataResponse { data, stat }) => MultiResult::GetData { data, stat },
                Err(code) => MultiResult::Error(code.as_i32()),
            },
            _ => MultiResult::Error(Code::MarshallingError.as_i32()),
        })
        .collect();
    MultiResponse { results }
}

/// Re-registers a reconnecting client's watches; a watch whose event it missed since
/// `relative_zxid` fires at once instead (`DataTree.setWatches`).
fn set_watches(view: &ReadView<'_>, reader: &ReadRequester<'_>, watches: &SetWatches2) {
    let tree = view.tree();
    let watcher = reader.connection.id;
    let fire = |event, path: &str| {
        let notification = WatchEvent { event, path: path.to_owned(), acl: AclList::default() };
        let frame = reply::notification(&notification);
        reader.stats.notified(frame.len());
        reader.connection.send(frame);
    };
    let relative = watches.relative_zxid;
    for path in &watches.data_watches {
        match tree.with_node(path, |node, _| node.mzxid()) {
            None => fire(EventType::NodeDeleted, path),
            Some(mzxid) if mzxid > Zxid::new(relative) => fire(EventType::NodeDataChanged, path),
            Some(_) => {
                view.data_watches().add(path, watcher, WatcherMode::Standard);
            }
        }
    }
    for path in &watches.exist_watches {
        if tree.exists(path) {
            fire(EventType::NodeCreated, path);
        } else {
            view.data_watches().add(path, watcher, WatcherMode::Standard);
        }
    }
    for path in &watches.child_watches {
        match tree.with_node(path, |node, _| node.pzxid()) {
            None => fire(EventType::NodeDeleted, path),
            Some(pzxid) if pzxid > Zxid::new(relative) => {
                fire(EventType::NodeChildrenChanged, path)
            }
            Some(_) => {
                view.child_watches().add(path, watcher, WatcherMode::Standard);
            }
        }
    }
    for (paths, mode) in [
        (&watches.persistent_watches, WatcherMode::Persistent),
        (&watches.persistent_recursive_watches, WatcherMode::PersistentRecursive),
    ] {
        for path in paths {
            view.child_watches().add(path, watcher, mode);
            view.data_watches().add(path, watcher, mode);
        }
    }
}
