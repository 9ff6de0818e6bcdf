//! A queue of sequential nodes under `/queue`: producers enqueue items (each with a
//! unique payload), consumers take the lowest item and own it when their delete of it
//! succeeds. Afterwards every acknowledged item was consumed exactly once or is still
//! queued, no item was consumed twice, and nothing was consumed that was not enqueued.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use jute::records::{
    CreateRequest, DeleteRequest, GetChildrenRequest, GetChildrenResponse, GetDataRequest,
    GetDataResponse,
};
use jute::{Code, OpCode};
use parking_lot::Mutex;

use crate::pinned::{call, Pinned};
use crate::support::client::{open_acl, Client};

/// ZooKeeper's create mode for a persistent sequential node.
const PERSISTENT_SEQUENTIAL: i32 = 2;

/// What producers and consumers were told.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Payloads whose enqueue was acknowledged.
    pub enqueued: BTreeSet<String>,
    /// Payloads whose enqueue's outcome is unknown.
    pub maybe_enqueued: BTreeSet<String>,
    /// Payloads consumed (delete acknowledged), with how many times.
    pub consumed: BTreeMap<String, usize>,
    /// Payloads whose delete's outcome is unknown.
    pub maybe_consumed: BTreeSet<String>,
}

/// Creates `/queue`.
pub async fn set_up(client: &mut Client) {
    client.create("/queue", b"", 0).await.expect("create /queue");
}

/// Enqueues items until the campaign ends.
pub async fn producer(id: usize, pinned: Pinned, ledger: &Mutex<Ledger>) {
    let mut client = None;
    let mut n = 0u64;
    while !pinned.stopped() {
        let Some(connected) = client.as_mut() else {
            client = pinned.connect().await;
            continue;
        };
        n += 1;
        let payload = format!("p{id}-{n}");
        let create = CreateRequest {
            path: "/queue/item-".into(),
            data: Some(Bytes::from(payload.clone())),
            acl: open_acl(),
            flags: PERSISTENT_SEQUENTIAL,
        };
        match call(connected, OpCode::Create, &create).await {
            Some(reply) if reply.header.err == 0 => {
                ledger.lock().enqueued.insert(payload);
            }
            Some(_) => {}
            None => {
                ledger.lock().maybe_enqueued.insert(payload);
                client = None;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Takes items until the campaign ends.
pub async fn consumer(pinned: Pinned, ledger: &Mutex<Ledger>) {
    let mut client = None;
    while !pinned.stopped() {
        let Some(connected) = client.as_mut() else {
            client = pinned.connect().await;
            continue;
        };
        if take_one(connected, ledger).await.is_none() {
            client = None;
        }
    }
}

/// Takes the lowest item, if any; `None` when the connection must be made again.
async fn take_one(client: &mut Client, ledger: &Mutex<Ledger>) -> Option<()> {
    let list = GetChildrenRequest { path: "/queue".into(), watch: false };
    let reply = call(client, OpCode::GetChildren, &list).await?;
    if reply.header.err != 0 {
        return None;
    }
    let mut items = reply.decode::<GetChildrenResponse>().children;
    items.sort();
    let Some(lowest) = items.first() else {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        return Some(());
    };
    let path = format!("/queue/{lowest}");
    let read = GetDataRequest { path: path.clone(), watch: false };
    let reply = call(client, OpCode::GetData, &read).await?;
    if reply.header.err != 0 {
        return Some(());
    }
    let payload = reply.decode::<GetDataResponse>().data.unwrap_or_default();
    let payload = String::from_utf8_lossy(&payload).into_owned();
    let delete = DeleteRequest { path, version: -1 };
    let Some(reply) = call(client, OpCode::Delete, &delete).await else {
        ledger.lock().maybe_consumed.insert(payload);
        return None;
    };
    match reply.header.err {
        0 => *ledger.lock().consumed.entry(payload).or_default() += 1,
        // Another consumer took it.
        err if err == Code::NoNode.as_i32() => {}
        _ => return None,
    }
    Some(())
}

/// The payloads still queued, read through `client` after a sync.
pub async fn remaining(client: &mut Client) -> BTreeSet<String> {
    let sync = jute::records::SyncRequest { path: "/queue".into() };
    assert_eq!(client.call(OpCode::Sync, &sync).await.header.err, 0, "sync");
    let (items, _) = client.children("/queue", false).await.expect("list /queue");
    let mut payloads = BTreeSet::new();
    for item in items {
        let (data, _) = client.get_data(&format!("/queue/{item}"), false).await.expect("item");
        payloads.insert(String::from_utf8_lossy(&data.unwrap_or_default()).into_owned());
    }
    payloads
}

/// What is wrong with the queue's history, given what remained queued.
pub fn check(ledger: &Ledger, remaining: &BTreeSet<String>) -> Vec<String> {
    let mut wrong = Vec::new();
    for (payload, times) in &ledger.consumed {
        if *times > 1 {
            wrong.push(format!("{payload} consumed {times} times"));
        }
        if !ledger.enqueued.contains(payload) && !ledger.maybe_enqueued.contains(payload) {
            wrong.push(format!("{payload} consumed but never enqueued"));
        }
        if remaining.contains(payload) {
            wrong.push(format!("{payload} consumed yet still queued"));
        }
    }
    for payload in &ledger.enqueued {
        let taken =
            ledger.consumed.contains_key(payload) || ledger.maybe_consumed.contains(payload);
        if !taken && !remaining.contains(payload) {
            wrong.push(format!("{payload} was enqueued and is gone unconsumed"));
        }
    }
    wrong
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_doubled_and_invented_items_are_caught() {
        let mut ledger = Ledger::default();
        ledger.enqueued.extend(["a".to_owned(), "b".to_owned(), "c".to_owned()]);
        ledger.consumed.insert("a".to_owned(), 1);
        let remaining: BTreeSet<String> = ["c".to_owned()].into();
        assert_eq!(check(&ledger, &remaining), vec!["b was enqueued and is gone unconsumed"]);
        ledger.maybe_consumed.insert("b".to_owned());
        assert!(check(&ledger, &remaining).is_empty(), "b may have been taken");
        ledger.consumed.insert("b".to_owned(), 2);
        ledger.consumed.insert("x".to_owned(), 1);
        let wrong = check(&ledger, &remaining);
        assert!(wrong.contains(&"b consumed 2 times".to_owned()), "{wrong:?}");
        assert!(wrong.contains(&"x consumed but never enqueued".to_owned()), "{wrong:?}");
    }
}
