//! A 3-member ensemble of the real binary on 127.0.0.1: writes through any member reach
//! all of them; the leader killed under load, a follower far behind, two of three members
//! down, a rolling restart — and afterwards every acknowledged write is on every member,
//! whose trees are identical.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use jute::records::{CreateRequest, SyncRequest};
use jute::OpCode;
use support::client::{open_acl, Client, Handshake};
use support::ensemble::{four_letter, Ensemble};
use support::load::{Acked, Load};

/// A handshake that resumes `client`'s session (on another connection).
fn resuming(client: &Client) -> Handshake {
    Handshake {
        timeout_ms: 10_000,
        session_id: client.session_id,
        password: client.password.clone(),
        ..Handshake::default()
    }
}

/// Every member's tree under `root`, after a `sync` on each.
async fn dumps(ensemble: &Ensemble, root: &str) -> Vec<Vec<String>> {
    let mut all = Vec::new();
    for i in 0..ensemble.addresses.len() {
        let mut client = ensemble.connect(i).await;
        let reply = client.call(OpCode::Sync, &SyncRequest { path: root.into() }).await;
        assert_eq!(reply.header.err, 0, "sync on member {}", i + 1);
        all.push(client.dump(root).await);
        client.close().await;
    }
    all
}

/// All members hold the same `/load` tree, with every acknowledged write in it; returns
/// the members' dumps.
async fn assert_consistent(ensemble: &Ensemble, acked: &[Acked]) -> Vec<Vec<String>> {
    let dumps = dumps(ensemble, "/load").await;
    for (i, dump) in dumps.iter().enumerate().skip(1) {
        assert!(dump == &dumps[0], "member {} differs from member 1", i + 1);
    }
    let present: std::collections::BTreeSet<&str> =
        dumps[0].iter().filter_map(|line| line.split(' ').next()).collect();
    for ack in acked {
        assert!(present.contains(ack.path.as_str()), "acknowledged {} is lost", ack.path);
    }
    dumps
}

async fn create_load_root(ensemble: &Ensemble) {
    let mut client = ensemble.connect(0).await;
    client.create("/load", b"", 0).await.expect("/load");
    client.close().await;
}

/// Pipelines `count` creates through member `i`.
async fn bulk_create(ensemble: &Ensemble, i: usize, prefix: &str, count: usize) {
    let mut client = ensemble.connect(i).await;
    for batch in 0..count.div_ceil(500) {
        let mut xids = Vec::new();
        for item in batch * 500..count.min((batch + 1) * 500) {
            let request = CreateRequest {
                path: format!("/load/{prefix}-{item}"),
                data: Some(Bytes::from_static(b"bulk")),
                acl: open_acl(),
                flags: 0,
            };
            xids.push(client.send(OpCode::Create, &request).await);
        }
        for xid in xids {
            assert_eq!(client.reply(xid).await.header.err, 0);
        }
    }
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_every_member_are_seen_by_every_member() {
    let ensemble = Ensemble::start(3, "");
    let leader = ensemble.wait_until_settled();
    create_load_root(&ensemble).await;
    let mut clients = Vec::new();
    for i in 0..3 {
        clients.push(ensemble.connect(i).await);
    }
    for (i, client) in clients.iter_mut().enumerate() {
        for item in 0..20 {
            client.create(&format!("/load/m{i}-{item}"), b"x", 0).await.expect("create");
        }
    }
    // A member's own write is visible to its next read; another member's after a sync.
    let follower = (leader + 1) % 3;
    clients[leader].set_data("/load/m0-0", b"changed", -1).await.expect("set");
    let reply = clients[follower].call(OpCode::Sync, &SyncRequest { path: "/load".into() }).await;
    assert_eq!(reply.header.err, 0);
    let (data, _) = clients[follower].get_data("/load/m0-0", false).await.expect("get");
    assert_eq!(data.as_deref(), Some(&b"changed"[..]));
    for client in clients {
        client.close().await;
    }
    let leader_mntr = four_letter(ensemble.addresses[leader], "mntr").unwrap_or_default();
    for line in ["zk_server_state\tleader", "zk_learners\t2", "zk_synced_followers\t2"] {
        assert!(leader_mntr.contains(line), "leader mntr lacks {line:?}:\n{leader_mntr}");
    }
    let follower_srvr = four_letter(ensemble.addresses[follower], "srvr").unwrap_or_default();
    assert!(follower_srvr.contains("Mode: follower"), "{follower_srvr}");
    let conf = four_letter(ensemble.addresses[follower], "conf").unwrap_or_default();
    let expected = format!("serverId={}\ninitLimit=10\nsyncLimit=5\nelectionAlg=3\n", follower + 1);
    assert!(conf.contains(&expected), "{conf}");
    assert!(conf.contains("peerType=0\nmembership: \nserver.1=127.0.0.1:"), "{conf}");
    assert!(conf.ends_with(":participant\nversion=0"), "{conf}");
    // /zookeeper/config holds the same membership text, as ZooKeeper's members show it.
    let mut client = ensemble.connect(follower).await;
    let (data, stat) = client.get_data("/zookeeper/config", false).await.expect("config node");
    let membership = String::from_utf8(data.expect("data").to_vec()).expect("text");
    assert!(conf.ends_with(&format!("membership: \n{membership}")), "{membership}\n{conf}");
    assert_eq!(membership.lines().count(), 4, "{membership}");
    assert_eq!((stat.version, stat.aversion, stat.mzxid), (-1, -1, 0), "{stat:?}");
    client.close().await;
    let dumps = assert_consistent(&ensemble, &[]).await;
    assert_eq!(dumps[0].len(), 61);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_global_and_survive_a_move_to_another_member() {
    let ensemble = Ensemble::start(3, "");
    ensemble.wait_until_settled();
    let mut owner = ensemble.connect(0).await;
    owner.create("/owned", b"", 1).await.expect("ephemeral");
    let (session_id, password) = (owner.session_id, owner.password.clone());
    drop(owner);
    let moved = Handshake { timeout_ms: 10_000, session_id, password, ..Handshake::default() };
    let mut resumed = Client::handshake(ensemble.addresses[2], moved).await.expect("connects");
    assert_eq!(resumed.session_id, session_id, "member 3 knows the session member 1 created");
    assert!(resumed.exists("/owned", false).await.is_ok());
    resumed.close().await;
    // The close went through the leader: the ephemeral is gone on every member.
    for i in 0..3 {
        let mut client = ensemble.connect(i).await;
        client.call(OpCode::Sync, &SyncRequest { path: "/".into() }).await;
        assert!(client.exists("/owned", false).await.is_err(), "member {}", i + 1);
        client.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_under_load_loses_no_acknowledged_write() {
    let mut ensemble = Ensemble::start(3, "");
    let leader = ensemble.wait_until_settled();
    create_load_root(&ensemble).await;
    let load = Load::start(&ensemble.members());
    tokio::time::sleep(Duration::from_millis(700)).await;
    let killed = Instant::now();
    ensemble.kill(leader);
    let recovered = load.first_ack_sent_after(killed, Duration::from_secs(30)).await;
    eprintln!("writes succeed again {:?} after the leader was killed", recovered - killed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensemble.restart(leader);
    ensemble.wait_until_settled();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let acked = load.finish().await;
    assert!(acked.iter().any(|ack| ack.sent > killed), "writes went on after the kill");
    assert_consistent(&ensemble, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_killed_under_load_while_snapshotting_lose_no_acknowledged_write() {
    // A follower applies a commit before its own copy is durable, so its snapshots can
    // run ahead of its log: a kill then leaves a log that ends before the snapshot.
    let mut ensemble = Ensemble::start(3, "snapCount=60");
    let leader = ensemble.wait_until_settled();
    let followers = [(leader + 1) % 3, (leader + 2) % 3];
    let rounds = [followers, followers].concat();
    let acked = restart_under_load(&mut ensemble, &rounds, Stop::Kill).await;
    assert_consistent(&ensemble, &acked).await;
    for follower in followers {
        let snapshots = ensemble.log(follower).matches("taking a snapshot").count();
        assert!(snapshots >= 2, "member {} took {snapshots} snapshots", follower + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_catches_up_by_diff_then_by_snapshot() {
    let mut ensemble = Ensemble::start(3, "forceSync=no");
    let leader = ensemble.wait_until_settled();
    create_load_root(&ensemble).await;
    let follower = (leader + 1) % 3;
    ensemble.kill(follower);
    bulk_create(&ensemble, leader, "diff", 300).await;
    ensemble.restart(follower);
    ensemble.wait_until_settled();
    assert_consistent(&ensemble, &[]).await;
    assert!(!ensemble.log(follower).contains("installed the leader's snapshot"), "a DIFF did");
    // Further behind than the leader keeps entries for: a snapshot.
    ensemble.kill(follower);
    bulk_create(&ensemble, leader, "snap", 12_000).await;
    ensemble.restart(follower);
    ensemble.wait_until_settled();
    assert_consistent(&ensemble, &[]).await;
    assert!(ensemble.log(follower).contains("installed the leader's snapshot"));
    // And the snapshot it installed is its state after a restart too.
    ensemble.kill(follower);
    ensemble.restart(follower);
    ensemble.wait_until_settled();
    let dumps = assert_consistent(&ensemble, &[]).await;
    assert_eq!(dumps[follower].len(), 1 + 300 + 12_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_sent_while_writes_go_on_converges_and_loses_none() {
    // The leader walks its tree for the snapshot while it applies the writers' creates,
    // so the snapshot may hold some of the changes after its zxid: the follower's replay
    // of those entries must leave it exactly where the others are.
    let mut ensemble = Ensemble::start(3, "forceSync=no");
    let leader = ensemble.wait_until_settled();
    create_load_root(&ensemble).await;
    let follower = (leader + 1) % 3;
    ensemble.kill(follower);
    bulk_create(&ensemble, leader, "snap", 30_000).await;
    let load = Load::start(&ensemble.members());
    load.first_ack_sent_after(Instant::now(), Duration::from_secs(20)).await;
    ensemble.restart(follower);
    ensemble.wait_until_settled();
    let since = Instant::now();
    load.first_ack_sent_after(since, Duration::from_secs(20)).await;
    let acked = load.finish().await;
    assert!(ensemble.log(follower).contains("installed the leader's snapshot"));
    assert!(ensemble.log(leader).contains("sent a snapshot"));
    assert_consistent(&ensemble, &acked).await;
    ensemble.kill(follower);
    ensemble.restart(follower);
    ensemble.wait_until_settled();
    assert_consistent(&ensemble, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_three_down_acknowledges_nothing_until_they_return() {
    let mut ensemble = Ensemble::start(3, "");
    let leader = ensemble.wait_until_settled();
    create_load_root(&ensemble).await;
    let load = Load::start(&ensemble.members());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let survivor = (leader + 2) % 3;
    ensemble.kill(leader);
    ensemble.kill((leader + 1) % 3);
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let srvr = four_letter(ensemble.addresses[survivor], "srvr").unwrap_or_default();
    assert!(srvr.contains("not currently serving requests"), "alone, it must not serve: {srvr}");
    assert_eq!(four_letter(ensemble.addresses[survivor], "isro").as_deref(), Some("null"));
    let returning = Instant::now();
    // Replies already on their way when the quorum went may arrive a moment later.
    let grace = Duration::from_millis(200);
    let acked_while_down: Vec<Acked> = load
        .ledger
        .lock()
        .iter()
        .filter(|ack| ack.acked > down + grace && ack.acked < returning)
        .cloned()
        .collect();
    assert!(acked_while_down.is_empty(), "acknowledged without a quorum: {acked_while_down:?}");
    ensemble.restart(leader);
    ensemble.restart((leader + 1) % 3);
    ensemble.wait_until_settled();
    load.first_ack_sent_after(returning, Duration::from_secs(30)).await;
    let acked = load.finish().await;
    assert_consistent(&ensemble, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_under_load_loses_no_acknowledged_write() {
    let mut ensemble = Ensemble::start(3, "");
    ensemble.wait_until_settled();
    let acked = restart_under_load(&mut ensemble, &[0, 1, 2], Stop::Terminate).await;
    assert_consistent(&ensemble, &acked).await;
}

/// How [`restart_under_load`] stops a member.
enum Stop {
    Kill,
    Terminate,
}

/// Under write load through every member, stops each of `members` in turn, restarts it
/// and waits for the ensemble to settle; returns the writes acknowledged once writes go
/// through again.
async fn restart_under_load(ensemble: &mut Ensemble, members: &[usize], stop: Stop) -> Vec<Acked> {
    create_load_root(ensemble).await;
    let load = Load::start(&ensemble.members());
    for &member in members {
        tokio::time::sleep(Duration::from_millis(400)).await;
        match stop {
            Stop::Kill => ensemble.kill(member),
            Stop::Terminate => ensemble.terminate(member),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        ensemble.restart(member);
        ensemble.wait_until_settled();
    }
    let settled = Instant::now();
    load.first_ack_sent_after(settled, Duration::from_secs(30)).await;
    load.finish().await
}

/// Member `i`'s `mntr` value for `key`.
fn mntr(ensemble: &Ensemble, i: usize, key: &str) -> String {
    let text = four_letter(ensemble.addresses[i], "mntr").unwrap_or_default();
    let prefix = format!("{key}\t");
    text.lines().find_map(|line| line.strip_prefix(&prefix).map(str::to_owned)).unwrap_or_default()
}

/// Waits (up to 10 s) until member `i`'s `mntr` shows `expected` for `key`: a learner
/// reports its mode as it starts to sync, and the leader counts it once the sync is done.
fn await_mntr(ensemble: &Ensemble, i: usize, key: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let value = mntr(ensemble, i, key);
        if value == expected {
            return;
        }
        assert!(Instant::now() < deadline, "{key} is {value:?}, not {expected:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_sessions_stay_on_their_member_and_cannot_own_ephemerals() {
    let ensemble = Ensemble::start(3, "localSessionsEnabled=true");
    let leader = ensemble.wait_until_settled();
    let follower = (leader + 1) % 3;
    let mut local = ensemble.connect(follower).await;
    assert_eq!(mntr(&ensemble, follower, "zk_local_sessions"), "1");
    assert_eq!(mntr(&ensemble, leader, "zk_global_sessions"), "0", "no txn opened it");
    // Its writes go through the leader like any other.
    local.create("/by-local", b"x", 0).await.expect("a persistent node");
    assert_eq!(local.create("/eph", b"", 1).await, Err(jute::Code::EphemeralOnLocalSession));
    // Another member does not know it.
    let moved = resuming(&local);
    let elsewhere = Client::handshake(ensemble.addresses[leader], moved).await.expect("answers");
    assert_eq!(elsewhere.session_id, 0, "a local session is refused by other members");
    local.close().await;
    assert_eq!(mntr(&ensemble, follower, "zk_local_sessions"), "0");
    let dumps = dumps(&ensemble, "/by-local").await;
    assert!(dumps.iter().all(|dump| dump.len() == 1 && dump == &dumps[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_session_creating_an_ephemeral_becomes_global() {
    let ensemble =
        Ensemble::start(3, "localSessionsEnabled=true\nlocalSessionsUpgradingEnabled=true");
    let leader = ensemble.wait_until_settled();
    let follower = (leader + 1) % 3;
    let mut client = ensemble.connect(follower).await;
    client.create("/upgraded", b"", 1).await.expect("the session is upgraded first");
    assert_eq!(mntr(&ensemble, leader, "zk_global_sessions"), "1");
    let moved = resuming(&client);
    drop(client);
    let mut resumed = Client::handshake(ensemble.addresses[leader], moved).await.expect("answers");
    assert_ne!(resumed.session_id, 0, "a global session moves between members");
    assert!(resumed.exists("/upgraded", false).await.is_ok());
    resumed.close().await;
    let mut observer = ensemble.connect(leader).await;
    observer.call(OpCode::Sync, &SyncRequest { path: "/".into() }).await;
    assert!(observer.exists("/upgraded", false).await.is_err(), "closing removed it");
    observer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_connection_of_a_moved_session_gets_session_moved() {
    let ensemble = Ensemble::start(3, "");
    let leader = ensemble.wait_until_settled();
    let (first, second) = ((leader + 1) % 3, (leader + 2) % 3);
    let mut stale = ensemble.connect(first).await;
    stale.create("/moved", b"old", 0).await.expect("create");
    let moved = resuming(&stale);
    let mut current = Client::handshake(ensemble.addresses[second], moved).await.expect("moves");
    assert_eq!(current.session_id, stale.session_id);
    current.set_data("/moved", b"new", -1).await.expect("the session's new member");
    // The first member still has its connection, but the session lives elsewhere now.
    assert_eq!(stale.set_data("/moved", b"stale", -1).await, Err(jute::Code::SessionMoved));
    let (data, stat) = current.get_data("/moved", false).await.expect("get");
    assert_eq!((data.as_deref(), stat.version), (Some(&b"new"[..]), 1));
    current.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_serves_and_forwards_writes_without_voting() {
    let mut ensemble = Ensemble::start_with_observers(3, 1, "");
    let leader = ensemble.wait_until_settled();
    let observer = 3;
    assert_eq!(ensemble.mode(observer).as_deref(), Some("observer"));
    await_mntr(&ensemble, leader, "zk_synced_observers", "1");
    await_mntr(&ensemble, leader, "zk_synced_followers", "2");
    create_load_root(&ensemble).await;
    bulk_create(&ensemble, observer, "observed", 50).await;
    // Two voters down: the observer cannot make a quorum, so writes stop.
    let (a, b) = ((leader + 1) % 3, (leader + 2) % 3);
    ensemble.kill(a);
    ensemble.kill(b);
    let alone = Handshake { timeout_ms: 10_000, ..Handshake::default() };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let refused = Client::handshake(ensemble.addresses[observer], alone).await;
    assert!(refused.map(|client| client.session_id == 0).unwrap_or(true), "no quorum, no service");
    ensemble.restart(a);
    ensemble.restart(b);
    ensemble.wait_until_settled();
    let dumps = assert_consistent(&ensemble, &[]).await;
    assert_eq!(dumps[observer].len(), 51);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_members_survive_two_failures_including_the_leader() {
    let mut ensemble = Ensemble::start(5, "");
    let leader = ensemble.wait_until_settled();
    create_load_root(&ensemble).await;
    let load = Load::start(&ensemble.members());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = Instant::now();
    ensemble.kill(leader);
    ensemble.kill((leader + 1) % 5);
    load.first_ack_sent_after(killed, Duration::from_secs(30)).await;
    ensemble.restart(leader);
    ensemble.restart((leader + 1) % 5);
    ensemble.wait_until_settled();
    let acked = load.finish().await;
    assert_consistent(&ensemble, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_expires_loses_its_ephemerals_on_every_member() {
    let ensemble = Ensemble::start(3, "");
    let leader = ensemble.wait_until_settled();
    let follower = (leader + 1) % 3;
    // tickTime=200: the shortest timeout is 400 ms.
    let short = Handshake { timeout_ms: 400, ..Handshake::default() };
    let mut doomed =
        Client::handshake(ensemble.addresses[follower], short.clone()).await.expect("session");
    doomed.create("/doomed", b"", 1).await.expect("ephemeral");
    let mut watcher = ensemble.connect(leader).await;
    assert!(watcher.exists("/doomed", true).await.is_ok());
    // The client goes silent without closing: only the leader's expiry can remove it.
    let started = Instant::now();
    let event = tokio::time::timeout(Duration::from_secs(10), watcher.next_event()).await;
    let event = event.expect("the session expired");
    assert_eq!((event.event_type, event.path.as_str()), (2, "/doomed"));
    assert!(started.elapsed() >= Duration::from_millis(300), "not before its timeout");
    drop(doomed);
    // A client that only reads from its member stays alive: the member reports it.
    let mut reader = Client::handshake(ensemble.addresses[follower], short).await.expect("session");
    reader.create("/reader", b"", 1).await.expect("ephemeral");
    for _ in 0..15 {
        assert!(reader.exists("/reader", false).await.is_ok(), "the reading session lives");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    reader.close().await;
    for i in 0..3 {
        let mut client = ensemble.connect(i).await;
        client.call(OpCode::Sync, &SyncRequest { path: "/".into() }).await;
        assert!(client.exists("/doomed", false).await.is_err(), "member {}", i + 1);
        client.close().await;
    }
    watcher.close().await;
}

/// Whether the member closes `stream` (reading to its end) within a few seconds.
async fn closes(stream: &mut tokio::net::TcpStream) -> bool {
    let mut sink = [0u8; 4096];
    loop {
        let read = tokio::io::AsyncReadExt::read(stream, &mut sink);
        match tokio::time::timeout(Duration::from_secs(10), read).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn hostile_peer_connections_are_closed_and_the_ensemble_carries_on() {
    let ensemble = Ensemble::start(3, "");
    let leader = ensemble.wait_until_settled();
    let follower = (leader + 1) % 3;
    let (quorum, _) = ensemble.peer_addresses(leader);
    let (_, election) = ensemble.peer_addresses(follower);
    let mut info = Vec::new();
    info.extend_from_slice(&11i32.to_be_bytes()); // FOLLOWERINFO
    info.extend_from_slice(&0i64.to_be_bytes());
    info.extend_from_slice(&20i32.to_be_bytes()); // LearnerInfo: sid 99, protocol, version
    info.extend_from_slice(&99i64.to_be_bytes());
    info.extend_from_slice(&0x10000i32.to_be_bytes());
    info.extend_from_slice(&0i64.to_be_bytes());
    info.extend_from_slice(&(-1i32).to_be_bytes());
    let mut huge = Vec::new();
    huge.extend_from_slice(&11i32.to_be_bytes());
    huge.extend_from_slice(&0i64.to_be_bytes());
    huge.extend_from_slice(&i32::MAX.to_be_bytes());
    let quorum_attempts: [(&str, Vec<u8>); 3] = [
        ("garbage", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("a packet claiming 2 GiB of data", huge),
        ("FOLLOWERINFO from a member the ensemble lacks", info),
    ];
    let mut unknown = Vec::new();
    unknown.extend_from_slice(&(-65536i64).to_be_bytes());
    unknown.extend_from_slice(&99i64.to_be_bytes());
    let address = b"127.0.0.1:1";
    unknown.extend_from_slice(&i32::try_from(address.len()).expect("short").to_be_bytes());
    unknown.extend_from_slice(address);
    let mut long_list = Vec::new();
    long_list.extend_from_slice(&(-65536i64).to_be_bytes());
    long_list.extend_from_slice(&3i64.to_be_bytes());
    long_list.extend_from_slice(&i32::MAX.to_be_bytes());
    let election_attempts: [(&str, Vec<u8>); 3] = [
        ("an unknown protocol version", (-7i64).to_be_bytes().to_vec()),
        ("an address list of 2 GiB", long_list),
        ("an introduction from a member the ensemble lacks", unknown),
    ];
    let targets = [(quorum, &quorum_attempts), (election, &election_attempts)];
    for (address, attempts) in targets {
        for (what, bytes) in attempts {
            let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
            tokio::io::AsyncWriteExt::write_all(&mut stream, bytes).await.expect("send");
            assert!(closes(&mut stream).await, "{what} to {address}: the connection stays open");
        }
    }
    assert_eq!(ensemble.wait_until_settled(), leader, "no election followed");
    for i in 0..3 {
        let mut client = Client::connect(ensemble.addresses[i]).await;
        let path = format!("/after-hostile-{i}");
        assert_eq!(client.create(&path, b"", 0).await.as_deref(), Ok(path.as_str()));
        client.close().await;
    }
}
