//! The server process itself: how it starts and stops.

mod support;

use support::client::Client;
use support::server::ServerProcess;

/// The server re-executes itself once, in the same process, to give mimalloc its server
/// options (which mimalloc reads only from the environment at load): the process the test
/// started is the one serving, with the option in its environment and its arguments as
/// given.
#[tokio::test]
async fn the_server_restarts_itself_once_with_its_allocator_options() {
    let server = ServerProcess::start("");
    let proc_dir = std::path::PathBuf::from(format!("/proc/{}", server.pid()));
    let environment = std::fs::read(proc_dir.join("environ")).expect("read environ");
    let variables: Vec<&[u8]> = environment.split(|&byte| byte == 0).collect();
    for option in [&b"MIMALLOC_PURGE_DELAY=1000"[..], b"MIMALLOC_ALLOW_THP=0"] {
        assert!(
            variables.contains(&option),
            "the serving process lacks the allocator option {}: {:?}",
            String::from_utf8_lossy(option),
            String::from_utf8_lossy(&environment)
        );
    }
    let status = std::fs::read_to_string(proc_dir.join("status")).expect("read status");
    assert!(
        status.lines().any(|line| line.starts_with("THP_enabled:") && line.ends_with('0')),
        "transparent huge pages are still allowed: {status}"
    );
    let command_line = std::fs::read(proc_dir.join("cmdline")).expect("read cmdline");
    let arguments: Vec<&[u8]> = command_line.split(|&byte| byte == 0).collect();
    let config = server.dir.join("zoo.cfg");
    assert_eq!(arguments[0], env!("CARGO_BIN_EXE_zkrs").as_bytes());
    assert_eq!(arguments[1], b"server");
    assert_eq!(arguments[2], config.to_string_lossy().as_bytes());
    Client::connect(server.address).await.close().await;
    assert_eq!(server.log().matches("serving clients").count(), 1, "{}", server.log());
}

/// Memory a mass delete frees leaves the server's RSS once it has stayed unused for the
/// allocator's purge delay: it goes back with MADV_DONTNEED, where MADV_FREE left it
/// resident (and counted) until the kernel ran short of memory.
#[tokio::test]
async fn memory_a_mass_delete_frees_leaves_the_rss() {
    const NODES: usize = 2_000;
    let server = ServerProcess::start("");
    let mut client = Client::connect(server.address).await;
    let value = vec![7u8; 16 * 1024];
    for node in 0..NODES {
        client.create(&format!("/n{node}"), &value, 0).await.expect("create");
    }
    let loaded = resident_kib(server.pid());
    for node in 0..NODES {
        client.delete(&format!("/n{node}"), -1).await.expect("delete");
    }
    // The allocator purges as it runs: keep it running, for at most a minute.
    let freed_kib = (NODES * value.len() / 1024) as u64;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut resident = resident_kib(server.pid());
    while resident + freed_kib / 2 > loaded && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        client.exists("/zookeeper", false).await.expect("exists");
        resident = resident_kib(server.pid());
    }
    assert!(
        resident + freed_kib / 2 <= loaded,
        "{freed_kib} KiB of data deleted, RSS {loaded} KiB before and {resident} KiB after"
    );
    client.close().await;
}

/// The process's resident set, from /proc.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in status")
}

/// A SIGTERM sent the moment the server says it serves stops it cleanly: the handler is
/// in place before the server listens, so the signal is neither lost (which left the
/// server running) nor left to its default action (which killed it mid-start).
#[test]
fn a_sigterm_as_soon_as_the_server_serves_stops_it_cleanly() {
    for _ in 0..10 {
        let dir = ServerProcess::start("").terminate();
        let _ = std::fs::remove_dir_all(dir);
    }
}
