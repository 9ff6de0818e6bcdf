//! `zkrs import` of what only raw requests can make: Apache ZooKeeper 3.8 gets container
//! and TTL nodes (which kazoo cannot create) beside sequential ones and a deleted child,
//! is killed, and its data directory imported; zkrs must serve every node with the same
//! data and Stat. (`tests/kazoo/test_import.py` covers ACLs, ephemerals, compression
//! and the way back.)

mod support;

use bytes::Bytes;
use jute::records::{CreateRequest, CreateTtlRequest};
use jute::OpCode;
use support::client::{open_acl, result, Client};
use support::server::{scratch_dir, ServerProcess};
use support::zookeeper::ReferenceZooKeeper;

/// ZooKeeper's `CreateMode` flags.
const PERSISTENT_SEQUENTIAL: i32 = 2;
const CONTAINER: i32 = 4;
const PERSISTENT_WITH_TTL: i32 = 5;
const PERSISTENT_SEQUENTIAL_WITH_TTL: i32 = 6;

/// Containers and TTL nodes must stay put while the test looks.
const NO_REAPING: &str = "znode.container.checkIntervalMs=3600000";

async fn make_tree(client: &mut Client) {
    let container = |path: &str| CreateRequest {
        path: path.into(),
        data: Some(Bytes::from_static(b"box")),
        acl: open_acl(),
        flags: CONTAINER,
    };
    result(&client.call(OpCode::CreateContainer, &container("/box")).await).expect("container");
    for i in 0..3 {
        client
            .create("/box/item-", format!("{i}").as_bytes(), PERSISTENT_SEQUENTIAL)
            .await
            .expect("item");
    }
    client.delete("/box/item-0000000001", -1).await.expect("delete");
    for (path, flags) in
        [("/ttl", PERSISTENT_WITH_TTL), ("/ttl-seq-", PERSISTENT_SEQUENTIAL_WITH_TTL)]
    {
        let ttl = CreateTtlRequest {
            path: path.into(),
            data: Some(Bytes::from_static(b"expires")),
            acl: open_acl(),
            flags,
            ttl: 3_600_000,
        };
        result(&client.call(OpCode::CreateTtl, &ttl).await).expect("ttl node");
    }
    client.set_data("/ttl", b"changed", 0).await.expect("set");
}

/// Every node outside `/zookeeper` with its data and Stat.
async fn listing(client: &mut Client) -> Vec<String> {
    let lines = client.dump("/").await;
    lines.into_iter().filter(|line| !line.starts_with("/zookeeper")).collect()
}

#[tokio::test]
async fn containers_and_ttl_nodes_come_through_an_import_with_every_stat() {
    let reference = ReferenceZooKeeper::start("", &[&format!("-D{NO_REAPING}")]).await;
    let mut client = Client::connect(reference.address).await;
    make_tree(&mut client).await;
    let before = listing(&mut client).await;
    client.close().await;
    let zookeeper_data = reference.data_dir.clone();
    drop(reference);

    let target = scratch_dir("import");
    let imported = std::process::Command::new(env!("CARGO_BIN_EXE_zkrs"))
        .arg("import")
        .arg(&zookeeper_data)
        .arg("--to")
        .arg(target.join("data"))
        .output()
        .expect("zkrs import runs");
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));

    let server = ServerProcess::start_in(target, NO_REAPING, false);
    let mut client = Client::connect(server.address).await;
    let after = listing(&mut client).await;
    assert!(before.iter().any(|line| line.starts_with("/ttl-seq-")), "{before:?}");
    assert_eq!(after, before);
}
