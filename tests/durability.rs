//! Durability of the real binary: SIGKILL at random moments under write load must lose
//! no acknowledged write and invent none; a restart must restore the tree exactly.
//!
//! `ZKRS_CRASH_KILLS` (default 20) sets the number of kills, `ZKRS_SEED` the seed.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use jute::records::*;
use jute::OpCode;
use parking_lot::Mutex;
use support::client::{open_acl, Client, Handshake};
use support::server::{scratch_dir, ServerProcess};

const CONFIG: &str = "forceSync=yes\nsnapCount=400";

/// What the workers did to one node, in order: acknowledged states and attempted ones.
#[derive(Debug, Default, Clone)]
struct History {
    /// (data, version) of every write whose reply arrived.
    acked: Vec<(Vec<u8>, i32)>,
    /// (data, version) of every write sent, acknowledged or not.
    issued: Vec<(Vec<u8>, i32)>,
}

type Ledger = Arc<Mutex<BTreeMap<String, History>>>;

/// SplitMix64, for reproducible kill times.
fn next(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Creates nodes and rewrites them with versioned sets until the server goes away.
async fn worker(address: std::net::SocketAddr, round: usize, worker: usize, ledger: Ledger) {
    let Ok(mut client) =
        Client::handshake(address, Handshake { timeout_ms: 10_000, ..Handshake::default() }).await
    else {
        return;
    };
    for item in 0.. {
        let path = format!("/crash/r{round}-w{worker}-{item}");
        let data = format!("{path}@0").into_bytes();
        ledger.lock().entry(path.clone()).or_default().issued.push((data.clone(), 0));
        let request = CreateRequest {
            path: path.clone(),
            data: Some(Bytes::from(data.clone())),
            acl: open_acl(),
            flags: 0,
        };
        let xid = client.send(OpCode::Create, &request).await;
        let Ok(reply) = tokio::time::timeout(Duration::from_secs(5), client.try_reply(xid)).await
        else {
            return;
        };
        let Some(reply) = reply else { return };
        assert_eq!(reply.header.err, 0, "create {path}");
        ledger.lock().entry(path.clone()).or_default().acked.push((data, 0));
        for version in 1..=2 {
            let data = format!("{path}@{version}").into_bytes();
            ledger.lock().entry(path.clone()).or_default().issued.push((data.clone(), version));
            let request = SetDataRequest {
                path: path.clone(),
                data: Some(Bytes::from(data.clone())),
                version: version - 1,
            };
            let xid = client.send(OpCode::SetData, &request).await;
            let Ok(Some(reply)) =
                tokio::time::timeout(Duration::from_secs(5), client.try_reply(xid)).await
            else {
                return;
            };
            assert_eq!(reply.header.err, 0, "set {path} to version {version}");
            ledger.lock().entry(path.clone()).or_default().acked.push((data, version));
        }
    }
}

/// Every acknowledged write is there (or a later issued one), nothing unissued is.
async fn verify(address: std::net::SocketAddr, ledger: &Ledger) {
    let mut client = Client::connect(address).await;
    let (children, _) = client.children("/crash", false).await.expect("/crash exists");
    let ledger = ledger.lock().clone();
    for child in &children {
        let path = format!("/crash/{child}");
        assert!(ledger.contains_key(&path), "{path} was never issued");
    }
    for (path, history) in &ledger {
        let found = client.get_data(path, false).await.ok();
        match (history.acked.last(), &found) {
            (Some((_, acked_version)), None) => {
                panic!("{path}: acknowledged version {acked_version} is lost")
            }
            (None, None) => {}
            (_, Some((data, stat))) => {
                let state = (data.as_deref().unwrap_or_default().to_vec(), stat.version);
                assert!(history.issued.contains(&state), "{path}: {state:?} was never written");
                let acked_version = history.acked.last().map_or(-1, |(_, version)| *version);
                assert!(
                    stat.version >= acked_version,
                    "{path}: version {} is older than acknowledged {acked_version}",
                    stat.version
                );
            }
        }
    }
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_write() {
    let kills: usize =
        std::env::var("ZKRS_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let mut seed: u64 = std::env::var("ZKRS_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(7);
    eprintln!("crash test: {kills} kills, seed {seed}");
    let dir = scratch_dir("crash");
    let ledger: Ledger = Arc::default();
    let mut server = ServerProcess::start_in(dir, CONFIG, true);
    Client::connect(server.address).await.create("/crash", b"", 0).await.expect("/crash");
    for round in 0..kills {
        let workers: Vec<_> = (0..4)
            .map(|index| tokio::spawn(worker(server.address, round, index, ledger.clone())))
            .collect();
        let run_ms = 30 + next(&mut seed) % 300;
        tokio::time::sleep(Duration::from_millis(run_ms)).await;
        let dir = server.kill();
        for handle in workers {
            handle.await.expect("worker");
        }
        server = ServerProcess::start_in(dir, CONFIG, true);
        verify(server.address, &ledger).await;
    }
    let acked: usize = ledger.lock().values().map(|history| history.acked.len()).sum();
    assert!(acked > kills * 10, "the workload acknowledged only {acked} writes");
    let dir = server.kill();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn ephemerals_of_sessions_lost_in_a_crash_expire_after_restart() {
    let mut server = ServerProcess::start_in(scratch_dir("expiry"), CONFIG, true);
    let handshake = Handshake { timeout_ms: 2000, ..Handshake::default() };
    let mut client = Client::handshake(server.address, handshake).await.expect("handshake");
    client.create("/orphan", b"", 1).await.expect("ephemeral");
    let dir = server.kill();
    server = ServerProcess::start_in(dir, CONFIG, true);
    let mut observer = Client::connect(server.address).await;
    assert!(
        observer.exists("/orphan", true).await.is_ok(),
        "the session survives the restart for now"
    );
    let started = Instant::now();
    let event = observer.next_event().await;
    assert_eq!((event.event_type, event.path.as_str()), (2, "/orphan"));
    assert!(started.elapsed() < Duration::from_secs(8), "expired within its timeout");
    let dir = server.kill();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_100k_znodes_restores_the_same_tree() {
    let server =
        ServerProcess::start_in(scratch_dir("restart"), "forceSync=no\nsnapCount=30000", true);
    let mut client = Client::connect(server.address).await;
    client.create("/big", b"", 0).await.expect("/big");
    for dir in 0..100 {
        client.create(&format!("/big/d{dir:03}"), b"", 0).await.expect("dir");
        let mut xids = Vec::new();
        for node in 0..1000 {
            let path = format!("/big/d{dir:03}/n{node:04}");
            let request = CreateRequest {
                path,
                data: Some(Bytes::from(vec![b'x'; 100])),
                acl: open_acl(),
                flags: 0,
            };
            xids.push(client.send(OpCode::Create, &request).await);
        }
        for xid in xids {
            assert_eq!(client.reply(xid).await.header.err, 0);
        }
    }
    client.set_data("/big/d007/n0042", b"changed", 0).await.expect("set");
    client.delete("/big/d099/n0999", -1).await.expect("delete");
    let before = client.dump("/big").await;
    assert_eq!(before.len(), 1 + 100 + 100_000 - 1);
    drop(client);
    let server = ServerProcess::start_in(server.terminate(), "forceSync=no\nsnapCount=30000", true);
    let mut client = Client::connect(server.address).await;
    assert_eq!(client.dump("/big").await, before, "after SIGTERM");
    drop(client);
    let server = ServerProcess::start_in(server.kill(), "forceSync=no\nsnapCount=30000", true);
    let mut client = Client::connect(server.address).await;
    assert_eq!(client.dump("/big").await, before, "after SIGKILL");
    assert!(server.log().contains("snapshot loaded"), "recovery started from a snapshot");
    let dir = server.kill();
    let _ = std::fs::remove_dir_all(dir);
}

/// The newest segment of the log in `dir` and where the bytes `needle` start in it.
fn find_in_newest_segment(dir: &std::path::Path, needle: &[u8]) -> (std::path::PathBuf, usize) {
    let log_dir = dir.join("data").join("zkrs-log");
    let newest = std::fs::read_dir(&log_dir)
        .expect("the log directory")
        .filter_map(|item| item.ok().map(|item| item.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("log.") && name.len() == "log.".len() + 16)
        })
        .max()
        .expect("a log segment");
    let bytes = std::fs::read(&newest).expect("the segment");
    let at = bytes.windows(needle.len()).rposition(|window| window == needle).expect("the txn");
    (newest, at)
}

#[tokio::test]
async fn a_torn_log_tail_is_cut_off_at_start_and_every_write_before_it_served() {
    let server = ServerProcess::start_in(scratch_dir("torn"), CONFIG, true);
    let mut client = Client::connect(server.address).await;
    for node in 0..10 {
        let path = format!("/torn{node}");
        client.create(&path, format!("value {node}").as_bytes(), 0).await.expect("create");
    }
    drop(client);
    let dir = server.kill();
    // What a power cut in the middle of writing the last txn leaves.
    let (segment, at) = find_in_newest_segment(&dir, b"value 9");
    let file = std::fs::OpenOptions::new().write(true).open(&segment).expect("the segment");
    std::os::unix::fs::FileExt::write_all_at(&file, b"\xff\xff\xff", at as u64).expect("tear");
    drop(file);

    let mut server = ServerProcess::start_in(dir, CONFIG, true);
    let warning = server.wait_for_line("cutting it off");
    assert!(warning.is_some(), "no warning of the torn tail: {}", server.log());
    let mut client = Client::connect(server.address).await;
    for node in 0..9 {
        let (data, _) = client.get_data(&format!("/torn{node}"), false).await.expect("kept");
        assert_eq!(data.as_deref(), Some(format!("value {node}").as_bytes()));
    }
    assert!(client.exists("/torn9", false).await.is_err(), "the torn txn is gone");
    client.create("/torn9", b"again", 0).await.expect("the log goes on after the cut");
    drop(client);
    let server = ServerProcess::start_in(server.kill(), CONFIG, true);
    let mut client = Client::connect(server.address).await;
    assert_eq!(
        client.get_data("/torn9", false).await.expect("kept").0.as_deref(),
        Some(&b"again"[..])
    );
    let dir = server.kill();
    let _ = std::fs::remove_dir_all(dir);
}
