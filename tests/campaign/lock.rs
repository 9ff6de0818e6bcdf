//! The lock recipe with a fenced resource. Lockers create an ephemeral sequential node
//! under `/lock`, hold the lock once theirs is the lowest (waiting on a watch of the node
//! before theirs otherwise), and while holding it write their node's sequence number to
//! `/fenced` as a fencing token: the write is refused when `/fenced` holds a later token
//! (the resource's own check, done with setData on the version read), so a holder whose
//! session expired under it cannot clobber its successor's work. Now and then a holder
//! stalls past its session timeout before it writes, so the fence has work to do.
//!
//! Mutual exclusion is checked on holds that ended with the holder deleting its own
//! node: that delete succeeding proves the node lived through the hold, so no other
//! locker could have seen its own node lowest meanwhile. For two such holds with tokens
//! `a < b`, the later one must have been acquired (its lowest-children read completed)
//! only after the earlier was released (its delete invoked).

use std::time::Duration;

use bytes::Bytes;
use jute::records::{
    CreateRequest, CreateResponse, DeleteRequest, ExistsRequest, GetChildrenRequest,
    GetChildrenResponse, GetDataRequest, GetDataResponse, SetDataRequest,
};
use jute::OpCode;
use parking_lot::Mutex;

use crate::pinned::{call, decimal, Pinned};
use crate::support::client::{open_acl, Client};
use crate::support::rng::Rng;

/// ZooKeeper's create mode for an ephemeral sequential node.
const EPHEMERAL_SEQUENTIAL: i32 = 3;

/// One hold of the lock that was released by deleting the holder's node.
#[derive(Debug, Clone, Copy)]
pub struct Hold {
    pub locker: usize,
    pub token: u64,
    /// When the read that showed the node lowest completed.
    pub acquired: u64,
    /// When the delete that released it was invoked.
    pub released: u64,
}

/// What the lockers saw.
#[derive(Debug, Default)]
pub struct Ledger {
    pub holds: Vec<Hold>,
    /// Writes to the resource it refused, since a later token was there.
    pub fenced: usize,
    /// Writes to the resource it accepted.
    pub written: usize,
}

/// Creates `/lock` and `/fenced`.
pub async fn set_up(client: &mut Client) {
    client.create("/lock", b"", 0).await.expect("create /lock");
    client.create("/fenced", b"0", 0).await.expect("create /fenced");
}

/// Runs a locker until the campaign ends.
pub async fn locker(id: usize, pinned: Pinned, seed: u64, ledger: &Mutex<Ledger>) {
    let mut rng = Rng(seed);
    let mut resource = Resource { pinned: pinned.clone(), client: None };
    while !pinned.stopped() {
        let Some(mut client) = pinned.connect().await else { return };
        while !pinned.stopped() {
            let held = hold_once(id, &pinned, &mut client, &mut resource, &mut rng, ledger);
            if held.await.is_none() {
                break;
            }
        }
    }
}

/// The fenced resource as a locker reaches it: over a session of its own, as an outside
/// service would be, so a holder whose lock session expired can still try to write.
struct Resource {
    pinned: Pinned,
    client: Option<Client>,
}

/// Acquires the lock, writes the resource, releases; `None` when the session or its
/// connection is lost and the locker must start again.
async fn hold_once(
    id: usize,
    pinned: &Pinned,
    client: &mut Client,
    resource: &mut Resource,
    rng: &mut Rng,
    ledger: &Mutex<Ledger>,
) -> Option<()> {
    let create = CreateRequest {
        path: "/lock/n-".into(),
        data: Some(Bytes::new()),
        acl: open_acl(),
        flags: EPHEMERAL_SEQUENTIAL,
    };
    let reply = call(client, OpCode::Create, &create).await?;
    if reply.header.err != 0 {
        return None;
    }
    let path = reply.decode::<CreateResponse>().path;
    let name = path.strip_prefix("/lock/")?.to_owned();
    let token: u64 = name.strip_prefix("n-")?.parse().ok()?;
    let acquired = loop {
        let list = GetChildrenRequest { path: "/lock".into(), watch: false };
        let reply = call(client, OpCode::GetChildren, &list).await?;
        if reply.header.err != 0 {
            return None;
        }
        let completed = pinned.now();
        let mut children = reply.decode::<GetChildrenResponse>().children;
        children.sort();
        let position = children.iter().position(|child| *child == name)?;
        if position == 0 {
            break completed;
        }
        let before = format!("/lock/{}", children[position - 1]);
        let watch = ExistsRequest { path: before, watch: true };
        let reply = call(client, OpCode::Exists, &watch).await?;
        if reply.header.err == 0 {
            // Held by the node before: wait for its deletion (or a session event).
            let deadline =
                Duration::from_millis(u64::from(crate::pinned::SESSION_TIMEOUT_MS.unsigned_abs()));
            client.try_next_event(deadline).await?;
        }
        if pinned.stopped() {
            return None;
        }
    };
    if rng.chance(3) {
        // The holder stalls (a long GC pause, say) past its session timeout: its node
        // may be gone and another locker may hold the lock when it writes.
        let timeout = u64::from(crate::pinned::SESSION_TIMEOUT_MS.unsigned_abs());
        tokio::time::sleep(Duration::from_millis(timeout + 1000)).await;
    }
    if resource.write(token, ledger).await.is_none() {
        resource.client = None;
    }
    tokio::time::sleep(Duration::from_millis(rng.below(20))).await;
    let released = pinned.now();
    let reply = call(client, OpCode::Delete, &DeleteRequest { path, version: -1 }).await?;
    if reply.header.err != 0 {
        return None;
    }
    ledger.lock().holds.push(Hold { locker: id, token, acquired, released });
    Some(())
}

impl Resource {
    /// Writes `token` unless the resource holds a later one; `None` when the outcome is
    /// unknown.
    async fn write(&mut self, token: u64, ledger: &Mutex<Ledger>) -> Option<()> {
        if self.client.is_none() {
            self.client = self.pinned.connect().await;
        }
        let client = self.client.as_mut()?;
        let read = GetDataRequest { path: "/fenced".into(), watch: false };
        let reply = call(client, OpCode::GetData, &read).await?;
        if reply.header.err != 0 {
            return None;
        }
        let current: GetDataResponse = reply.decode();
        let stored = decimal(current.data.as_ref()).unwrap_or(0);
        if stored > token {
            ledger.lock().fenced += 1;
            return Some(());
        }
        let write = SetDataRequest {
            path: "/fenced".into(),
            data: Some(Bytes::from(token.to_string())),
            version: current.stat.version,
        };
        let reply = call(client, OpCode::SetData, &write).await?;
        if reply.header.err == 0 {
            ledger.lock().written += 1;
        }
        Some(())
    }
}

/// Pairs of holds that overlapped although both holders kept their nodes throughout.
pub fn overlaps(ledger: &Ledger) -> Vec<(Hold, Hold)> {
    let mut holds = ledger.holds.clone();
    holds.sort_by_key(|hold| hold.token);
    let mut found = Vec::new();
    for (i, earlier) in holds.iter().enumerate() {
        for later in &holds[i + 1..] {
            if later.acquired <= earlier.released {
                found.push((*earlier, *later));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(token: u64, acquired: u64, released: u64) -> Hold {
        Hold { locker: token as usize, token, acquired, released }
    }

    #[test]
    fn a_hold_acquired_before_the_previous_one_was_released_is_caught() {
        let sequential = Ledger {
            holds: vec![hold(1, 0, 10), hold(2, 11, 20), hold(3, 21, 30)],
            ..Ledger::default()
        };
        assert!(overlaps(&sequential).is_empty());
        let double = Ledger { holds: vec![hold(1, 0, 10), hold(2, 5, 20)], ..Ledger::default() };
        assert_eq!(overlaps(&double).len(), 1, "two holders at once");
    }
}
