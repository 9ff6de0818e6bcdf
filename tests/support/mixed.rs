//! The smallest mixed ensemble: an Apache ZooKeeper 3.8 member and a zkrs member sharing
//! one zoo.cfg's settings, for checking that the two speak a feature of the peer
//! protocol (TLS, SASL) to each other.

use std::time::{Duration, Instant};

use jute::records::SyncRequest;
use jute::OpCode;

use super::client::Client;
use super::ensemble::four_letter;
use super::server::{scratch_dir, ServerProcess};
use super::zookeeper::{free_port, ReferenceZooKeeper};

/// How long the two may take to form their ensemble.
const WAIT: Duration = Duration::from_secs(60);

/// Starts ZooKeeper as member 1 (with `jvm_flags`) and zkrs as member 2, both with
/// `settings` and fresh `server.N` lines; zkrs, with the higher id, leads. Returns once
/// a node created through ZooKeeper reads back through zkrs.
pub async fn zookeeper_and_zkrs(
    settings: &str,
    jvm_flags: &[&str],
) -> (ReferenceZooKeeper, ServerProcess) {
    let lines = format!(
        "initLimit=10\nsyncLimit=5\n{settings}server.1=127.0.0.1:{}:{}\n\
         server.2=127.0.0.1:{}:{}\n",
        free_port(),
        free_port(),
        free_port(),
        free_port()
    );
    let zookeeper = ReferenceZooKeeper::spawn_member(1, &lines, jvm_flags);
    let dir = scratch_dir("zkrs-mixed-member");
    std::fs::create_dir_all(dir.join("data")).expect("dataDir");
    std::fs::write(dir.join("data/myid"), "2\n").expect("myid");
    let config = format!(
        "tickTime=500\ndataDir={}\nadmin.enableServer=false\nclientPort=0\nclientPortAddress=127.0.0.1\n\
         4lw.commands.whitelist=*\n{lines}",
        dir.join("data").display()
    );
    let zkrs = ServerProcess::start_with_config(dir, &config, false);
    let deadline = Instant::now() + WAIT;
    while !four_letter(zkrs.address, "srvr").unwrap_or_default().contains("Mode: leader") {
        assert!(Instant::now() < deadline, "no leader:\n{}\n{}", zkrs.log(), zookeeper.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    zookeeper.wait_until_serving().await;
    let mut through_zookeeper = Client::connect(zookeeper.address).await;
    let created = through_zookeeper.create("/mixed", b"zookeeper", 0).await;
    assert_eq!(created.as_deref(), Ok("/mixed"));
    let mut through_zkrs = Client::connect(zkrs.address).await;
    through_zkrs.call(OpCode::Sync, &SyncRequest { path: "/mixed".into() }).await;
    let (data, _) = through_zkrs.get_data("/mixed", false).await.expect("replicated");
    assert_eq!(data.as_deref(), Some(&b"zookeeper"[..]));
    (zookeeper, zkrs)
}
