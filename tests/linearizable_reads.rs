//! `zkrs.linearizableReads` on a 3-member ensemble of the real binary, whose members
//! reach each other through proxies the test can pause.
//!
//! A follower cut off from its leader keeps serving reads until its own timeout tells it
//! the leader is gone (`syncLimit` ticks). In ZooKeeper's read mode, which zkrs keeps by
//! default, such a read returns the value from before a write the leader has already
//! acknowledged to another client: a stale read. Under `zkrs.linearizableReads=true` the
//! read waits for a confirmation round the partitioned follower cannot complete, so its
//! client gets the new value or loses the connection, never the old value.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use jute::records::GetDataRequest;
use jute::OpCode;
use support::client::Client;
use support::ensemble::{Ensemble, Kind};
use support::network::{Fault, Network};

/// What a read of `path` through `client` came to.
#[derive(Debug, PartialEq, Eq)]
enum Read {
    Value(Option<Bytes>),
    Error(i32),
    /// The connection closed or went quiet: the client would retry elsewhere.
    NoAnswer,
}

async fn read(client: &mut Client, path: &str) -> Read {
    let request = GetDataRequest { path: path.into(), watch: false };
    let Ok(xid) = client.try_send(OpCode::GetData, &request).await else {
        return Read::NoAnswer;
    };
    match client.try_reply(xid).await {
        Some(reply) if reply.header.err == 0 => {
            Read::Value(reply.decode::<jute::records::GetDataResponse>().data)
        }
        Some(reply) => Read::Error(reply.header.err),
        None => Read::NoAnswer,
    }
}

/// An ensemble whose follower `follower` holds `/x` = `old`, then is cut off from the
/// other two by paused links while the leader sets `/x` to `new`; returns what a read on
/// the cut-off follower answered, and the ensemble with its network healed.
async fn read_on_a_cut_off_follower(extra: &str) -> (Read, Ensemble, Network, usize) {
    let mut network = Network::new();
    let ensemble = Ensemble::start_partitionable(Kind::Zkrs, 3, extra, &mut network);
    let leader = ensemble.wait_until_settled();
    let follower = (leader + 1) % 3;
    let mut writer = ensemble.connect(leader).await;
    let mut reader = ensemble.connect(follower).await;
    writer.create("/x", b"old", 0).await.expect("create /x");
    let deadline = Instant::now() + Duration::from_secs(10);
    while read(&mut reader, "/x").await != Read::Value(Some(Bytes::from_static(b"old"))) {
        assert!(Instant::now() < deadline, "the follower never saw /x");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    network.isolate(follower, Fault::Paused);
    writer.set_data("/x", b"new", -1).await.expect("the leader and the other follower commit");
    let answer = read(&mut reader, "/x").await;
    network.heal();
    writer.close().await;
    (answer, ensemble, network, follower)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_a_cut_off_follower_answers_a_stale_read_as_zookeeper_does() {
    let (answer, ensemble, _network, follower) = read_on_a_cut_off_follower("").await;
    assert_eq!(
        answer,
        Read::Value(Some(Bytes::from_static(b"old"))),
        "ZooKeeper's read mode answers from the follower's own state; log:\n{}",
        ensemble.log(follower)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_linearizable_reads_a_cut_off_follower_never_answers_a_stale_read() {
    let extra = "zkrs.linearizableReads=true";
    let (answer, ensemble, _network, follower) = read_on_a_cut_off_follower(extra).await;
    let stale = Read::Value(Some(Bytes::from_static(b"old")));
    assert!(
        matches!(answer, Read::NoAnswer | Read::Value(_)) && answer != stale,
        "a stale or failed read: {answer:?}; log:\n{}",
        ensemble.log(follower)
    );
    // Healed, the follower serves linearizable reads again.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut reader = ensemble.connect(follower).await;
        if read(&mut reader, "/x").await == Read::Value(Some(Bytes::from_static(b"new"))) {
            break;
        }
        assert!(Instant::now() < deadline, "the healed follower does not serve /x");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Under linearizable reads, a read on any member that starts after a write was
/// acknowledged (through another member) sees it, every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_linearizable_reads_every_member_sees_every_acknowledged_write() {
    let mut network = Network::new();
    let ensemble =
        Ensemble::start_partitionable(Kind::Zkrs, 3, "zkrs.linearizableReads=true", &mut network);
    ensemble.wait_until_settled();
    let mut clients = Vec::new();
    for i in 0..3 {
        clients.push(ensemble.connect(i).await);
    }
    clients[0].create("/seen", b"", 0).await.expect("create /seen");
    for n in 0..300 {
        let writer = n % 3;
        let path = format!("/seen/n{n}");
        clients[writer].create(&path, b"", 0).await.expect("create");
        for reader in (0..3).filter(|reader| *reader != writer) {
            let answer = read(&mut clients[reader], &path).await;
            assert_eq!(
                answer,
                Read::Value(Some(Bytes::new())),
                "member {} read {path}",
                reader + 1
            );
        }
    }
}
