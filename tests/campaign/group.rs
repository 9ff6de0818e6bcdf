//! Ephemeral group membership: members join `/group` with an ephemeral node, stay a
//! while, and leave by closing their session or by going silent (their session then
//! expires). Once the campaign's clients have stopped and every session has had time to
//! expire, no member of the ensemble may still list a node of the group.

use std::time::Duration;

use bytes::Bytes;
use jute::records::{CreateRequest, GetChildrenRequest, GetChildrenResponse, SyncRequest};
use jute::OpCode;

use crate::pinned::{call, Pinned};
use crate::support::client::{open_acl, Client, Empty};
use crate::support::rng::Rng;

/// ZooKeeper's create mode for an ephemeral node.
const EPHEMERAL: i32 = 1;

/// Creates `/group`.
pub async fn set_up(client: &mut Client) {
    client.create("/group", b"", 0).await.expect("create /group");
}

/// Joins and leaves the group until the campaign ends; returns how many times it joined.
pub async fn member(id: usize, pinned: Pinned, seed: u64) -> usize {
    let mut rng = Rng(seed);
    let mut joined = 0;
    while !pinned.stopped() {
        let Some(mut client) = pinned.connect().await else { break };
        let create = CreateRequest {
            path: format!("/group/m{id}-{joined}"),
            data: Some(Bytes::new()),
            acl: open_acl(),
            flags: EPHEMERAL,
        };
        if call(&mut client, OpCode::Create, &create).await.is_some_and(|r| r.header.err == 0) {
            joined += 1;
        }
        // Stay a while, heard from by the member through a request now and then.
        for _ in 0..rng.below(10) {
            tokio::time::sleep(Duration::from_millis(100 + rng.below(200))).await;
            let list = GetChildrenRequest { path: "/group".into(), watch: false };
            if call(&mut client, OpCode::GetChildren, &list).await.is_none() {
                break;
            }
        }
        if rng.chance(50) {
            let _ = call(&mut client, OpCode::CloseSession, &Empty).await;
        }
        // Otherwise the connection just goes, and the session expires.
    }
    joined
}

/// The group as member `client` lists it after a sync.
pub async fn listed(client: &mut Client) -> Option<Vec<String>> {
    let sync = SyncRequest { path: "/group".into() };
    call(client, OpCode::Sync, &sync).await.filter(|reply| reply.header.err == 0)?;
    let list = GetChildrenRequest { path: "/group".into(), watch: false };
    let reply = call(client, OpCode::GetChildren, &list).await?;
    (reply.header.err == 0).then(|| reply.decode::<GetChildrenResponse>().children)
}
