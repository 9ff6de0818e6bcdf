//! `zkrs server` as a member of ensembles with Apache ZooKeeper 3.8 members, each side
//! running its own unchanged binary with the same `server.N` lines: a zkrs observer
//! joining a running ZooKeeper ensemble, a zkrs follower of a ZooKeeper leader, and a
//! zkrs leader of a ZooKeeper follower. In each, what a client writes on one kind of
//! member is read back on the other.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use jute::records::SyncRequest;
use jute::OpCode;

use support::client::Client;
use support::ensemble::four_letter;
use support::server::{scratch_dir, ServerProcess};
use support::zookeeper::{free_port, ReferenceZooKeeper};

/// How long a member may take to join.
const JOIN_WAIT: Duration = Duration::from_secs(60);

/// The `server.N` lines of an ensemble on 127.0.0.1 whose members are `observers` or
/// not, with fresh ports, and the settings both kinds of member need.
fn ensemble_lines(observers: &[bool]) -> String {
    let mut lines = String::from("initLimit=10\nsyncLimit=5\n");
    for (index, observer) in observers.iter().enumerate() {
        let role = if *observer { ":observer" } else { "" };
        lines.push_str(&format!(
            "server.{}=127.0.0.1:{}:{}{role}\n",
            index + 1,
            free_port(),
            free_port()
        ));
    }
    lines
}

/// Starts `zkrs server` as member `my_id` of the ensemble `lines` describes.
fn start_zkrs(my_id: u64, lines: &str) -> ServerProcess {
    let dir = scratch_dir(&format!("zkrs-member{my_id}"));
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("dataDir");
    std::fs::write(data.join("myid"), format!("{my_id}\n")).expect("myid");
    let config = format!(
        "tickTime=500\ndataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\n\
         maxClientCnxns=0\n4lw.commands.whitelist=*\nextendedTypesEnabled=true\n{lines}",
        data.display()
    );
    ServerProcess::start_with_config(dir, &config, false)
}

/// Waits until the member at `address` reports `mode` (`srvr`'s `Mode:`).
fn wait_for_mode(address: SocketAddr, mode: &str, log: impl Fn() -> String) {
    let deadline = Instant::now() + JOIN_WAIT;
    loop {
        let srvr = four_letter(address, "srvr").unwrap_or_default();
        if srvr.lines().any(|line| line == format!("Mode: {mode}")) {
            return;
        }
        assert!(Instant::now() < deadline, "not {mode}: {srvr}\n{}", log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `mntr` on `address` reports `key` as `value`.
fn wait_for_mntr(address: SocketAddr, key: &str, value: &str) {
    let deadline = Instant::now() + JOIN_WAIT;
    loop {
        let mntr = four_letter(address, "mntr").unwrap_or_default();
        if mntr.lines().any(|line| line == format!("{key}\t{value}")) {
            return;
        }
        assert!(Instant::now() < deadline, "{key} is not {value}: {mntr}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A node's data as the member at `address` serves it, after a `sync`.
async fn read_synced(address: SocketAddr, path: &str) -> Option<Vec<u8>> {
    let mut client = Client::connect(address).await;
    client.call(OpCode::Sync, &SyncRequest { path: path.into() }).await;
    let data = client.get_data(path, false).await.ok().and_then(|(data, _)| data);
    client.close().await;
    data.map(|data| data.to_vec())
}

/// Creates `path` with `data` through the member at `address`.
async fn create(address: SocketAddr, path: &str, data: &[u8]) {
    let mut client = Client::connect(address).await;
    let created = client.create(path, data, 0).await;
    assert_eq!(created.as_deref(), Ok(path), "creating {path} through {address}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zkrs_observer_joins_a_running_zookeeper_ensemble() {
    let lines = ensemble_lines(&[false, false, true]);
    let first = ReferenceZooKeeper::spawn_member(1, &lines, &[]);
    let second = ReferenceZooKeeper::start_member(2, &lines, &[]).await;
    first.wait_until_serving().await;
    create(first.address, "/before", b"written before zkrs joined").await;

    let observer = start_zkrs(3, &lines);
    wait_for_mode(observer.address, "observer", || observer.log());
    let leader = if four_letter(first.address, "srvr").unwrap_or_default().contains("leader") {
        &first
    } else {
        &second
    };
    wait_for_mntr(leader.address, "zk_synced_observers", "1");
    assert_eq!(
        read_synced(observer.address, "/before").await.as_deref(),
        Some(&b"written before zkrs joined"[..]),
        "synced from ZooKeeper's leader"
    );
    create(observer.address, "/through-zkrs", b"forwarded").await;
    assert_eq!(
        read_synced(second.address, "/through-zkrs").await.as_deref(),
        Some(&b"forwarded"[..]),
        "ZooKeeper committed what the zkrs observer forwarded"
    );
    create(second.address, "/after", b"informed").await;
    assert_eq!(
        read_synced(observer.address, "/after").await.as_deref(),
        Some(&b"informed"[..]),
        "the zkrs observer applies ZooKeeper's commits"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zkrs_member_follows_a_zookeeper_leader() {
    // Both start empty: the higher id wins the election, so ZooKeeper (2) leads.
    let lines = ensemble_lines(&[false, false]);
    let follower = start_zkrs(1, &lines);
    let leader = ReferenceZooKeeper::start_member(2, &lines, &[]).await;
    wait_for_mode(follower.address, "follower", || follower.log());
    create(follower.address, "/from-zkrs", b"forwarded").await;
    assert_eq!(read_synced(leader.address, "/from-zkrs").await.as_deref(), Some(&b"forwarded"[..]));
    create(leader.address, "/from-zookeeper", b"proposed").await;
    assert_eq!(
        read_synced(follower.address, "/from-zookeeper").await.as_deref(),
        Some(&b"proposed"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zkrs_member_leads_a_zookeeper_follower() {
    let lines = ensemble_lines(&[false, false]);
    let follower = ReferenceZooKeeper::spawn_member(1, &lines, &[]);
    let leader = start_zkrs(2, &lines);
    wait_for_mode(leader.address, "leader", || leader.log());
    follower.wait_until_serving().await;
    create(follower.address, "/from-zookeeper", b"forwarded").await;
    assert_eq!(
        read_synced(leader.address, "/from-zookeeper").await.as_deref(),
        Some(&b"forwarded"[..])
    );
    create(leader.address, "/from-zkrs", b"proposed").await;
    assert_eq!(
        read_synced(follower.address, "/from-zkrs").await.as_deref(),
        Some(&b"proposed"[..])
    );
}
