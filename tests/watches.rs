//! Watch semantics over TCP: one-shot, persistent, recursive, ordering, re-registration.

mod support;

use jute::records::*;
use jute::{Code, OpCode};
use support::client::{result, Client};
use support::server::ServerProcess;

const CREATED: i32 = 1;
const DELETED: i32 = 2;
const CHANGED: i32 = 3;
const CHILDREN: i32 = 4;

fn event(event: &WatcherEvent) -> (i32, &str) {
    (event.event_type, event.path.as_str())
}

#[tokio::test]
async fn one_shot_watches_fire_once_in_zookeeper_order() {
    let server = ServerProcess::start("");
    let mut watcher = Client::connect(server.address).await;
    let mut writer = Client::connect(server.address).await;
    writer.create("/w", b"", 0).await.expect("create");
    assert_eq!(
        watcher.exists("/w/x", true).await,
        Err(Code::NoNode),
        "exists leaves a watch on a missing node"
    );
    watcher.children("/w", true).await.expect("child watch");
    writer.create("/w/x", b"", 0).await.expect("create");
    assert_eq!(event(&watcher.next_event().await), (CREATED, "/w/x"));
    assert_eq!(event(&watcher.next_event().await), (CHILDREN, "/w"));
    watcher.get_data("/w/x", true).await.expect("data watch");
    writer.set_data("/w/x", b"1", -1).await.expect("set");
    writer.set_data("/w/x", b"2", -1).await.expect("set");
    assert_eq!(event(&watcher.next_event().await), (CHANGED, "/w/x"));
    watcher.get_data("/w/x", true).await.expect("data watch");
    watcher.children("/w/x", true).await.expect("child watch");
    writer.delete("/w/x", -1).await.expect("delete");
    assert_eq!(
        event(&watcher.next_event().await),
        (DELETED, "/w/x"),
        "one NodeDeleted for data and child watch"
    );
    let reply =
        watcher.call(OpCode::Exists, &ExistsRequest { path: "/w".into(), watch: false }).await;
    assert_eq!(result(&reply), Ok(()));
    let stray =
        watcher.call(OpCode::Exists, &ExistsRequest { path: "/w".into(), watch: false }).await;
    assert!(!stray.is_notification(), "no second event arrived before this reply");
}

#[tokio::test]
async fn notification_precedes_the_reply_of_a_read_that_sees_the_change() {
    let server = ServerProcess::start("");
    let mut watcher = Client::connect(server.address).await;
    let mut writer = Client::connect(server.address).await;
    writer.create("/o", b"0", 0).await.expect("create");
    for round in 1..=50 {
        watcher.get_data("/o", true).await.expect("watch");
        writer.set_data("/o", round.to_string().as_bytes(), -1).await.expect("set");
        let xid = watcher
            .send(OpCode::GetData, &GetDataRequest { path: "/o".into(), watch: false })
            .await;
        let first = watcher.next_frame().await.expect("frame");
        let second = watcher.next_frame().await.expect("frame");
        let (notification, reply) =
            if first.is_notification() { (first, second) } else { (second, first) };
        assert_eq!(reply.header.xid, xid);
        let data = reply.decode::<GetDataResponse>().data.expect("data");
        if data.as_ref() == round.to_string().as_bytes() {
            assert!(notification.header.xid == -1, "round {round}: event came first");
        }
        assert_eq!(event(&notification.event().expect("event")), (CHANGED, "/o"));
    }
}

#[tokio::test]
async fn persistent_and_recursive_watches() {
    let server = ServerProcess::start("");
    let mut watcher = Client::connect(server.address).await;
    let mut writer = Client::connect(server.address).await;
    writer.create("/p", b"", 0).await.expect("create");
    let add = |path: &str, mode| AddWatchRequest { path: path.into(), mode };
    assert_eq!(result(&watcher.call(OpCode::AddWatch, &add("/p", 0)).await), Ok(()));
    assert_eq!(result(&watcher.call(OpCode::AddWatch, &add("/r", 1)).await), Ok(()));
    writer.set_data("/p", b"1", -1).await.expect("set");
    writer.set_data("/p", b"2", -1).await.expect("set");
    assert_eq!(event(&watcher.next_event().await), (CHANGED, "/p"));
    assert_eq!(event(&watcher.next_event().await), (CHANGED, "/p"), "persistent: still there");
    writer.create("/p/c", b"", 0).await.expect("create");
    assert_eq!(event(&watcher.next_event().await), (CHILDREN, "/p"));
    writer.create("/r", b"", 0).await.expect("create");
    writer.create("/r/a", b"", 0).await.expect("create");
    writer.create("/r/a/b", b"", 0).await.expect("create");
    writer.delete("/r/a/b", -1).await.expect("delete");
    for expected in [(CREATED, "/r"), (CREATED, "/r/a"), (CREATED, "/r/a/b"), (DELETED, "/r/a/b")] {
        assert_eq!(event(&watcher.next_event().await), expected);
    }
    let check = CheckWatchesRequest { path: "/r".into(), watcher_type: 2 };
    assert_eq!(result(&watcher.call(OpCode::CheckWatches, &check).await), Ok(()));
    let remove = RemoveWatchesRequest { path: "/r".into(), watcher_type: 3 };
    assert_eq!(result(&watcher.call(OpCode::RemoveWatches, &remove).await), Ok(()));
    assert_eq!(result(&watcher.call(OpCode::RemoveWatches, &remove).await), Err(Code::NoWatcher));
}

#[tokio::test]
async fn set_watches_fires_what_was_missed() {
    let server = ServerProcess::start("");
    let mut writer = Client::connect(server.address).await;
    writer.create("/s", b"", 0).await.expect("create");
    writer.create("/s/stale", b"", 0).await.expect("create");
    let seen = writer.exists("/s", false).await.expect("stat").pzxid;
    writer.set_data("/s/stale", b"new", -1).await.expect("set");
    writer.create("/s/appeared", b"", 0).await.expect("create");
    let mut client = Client::connect(server.address).await;
    let watches = SetWatches {
        relative_zxid: seen,
        data_watches: vec!["/s/stale".into(), "/s/missing".into()],
        exist_watches: vec!["/s/appeared".into(), "/s/absent".into()],
        child_watches: vec!["/s".into()],
    };
    client.send_with_xid(-8, OpCode::SetWatches, &watches).await;
    let mut events = Vec::new();
    loop {
        let frame = client.next_frame().await.expect("frame");
        match frame.event() {
            Some(event) => events.push((event.event_type, event.path)),
            None => {
                assert_eq!((frame.header.xid, frame.header.err), (-8, 0));
                break;
            }
        }
    }
    events.sort();
    let expected: Vec<(i32, String)> = vec![
        (CREATED, "/s/appeared".into()),
        (DELETED, "/s/missing".into()),
        (CHANGED, "/s/stale".into()),
        (CHILDREN, "/s".into()),
    ];
    let mut expected = expected;
    expected.sort();
    assert_eq!(events, expected);
    writer.create("/s/absent", b"", 0).await.expect("create");
    assert_eq!(
        event(&client.next_event().await),
        (CREATED, "/s/absent"),
        "the unfired exist watch was registered"
    );
}
