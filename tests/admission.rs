//! Admission control as ZooKeeper's: the connection throttle's token bucket
//! (`zookeeper.connection_throttle_*`) refuses handshakes beyond its tokens, closing
//! their connections without a reply, counts them in `mntr`, and leaves the sessions it
//! admitted alone.

mod support;

use support::client::{Client, Handshake};
use support::ensemble::four_letter;
use support::server::ServerProcess;

fn new_session() -> Handshake {
    Handshake { timeout_ms: 10_000, read_only_flag: true, ..Handshake::default() }
}

/// The value of one `mntr` line.
fn mntr(server: &ServerProcess, key: &str) -> String {
    let answer = four_letter(server.address, "mntr").expect("mntr answers");
    answer
        .lines()
        .find_map(|line| line.strip_prefix(&format!("zk_{key}\t")).map(str::to_owned))
        .unwrap_or_else(|| panic!("mntr has no zk_{key}:\n{answer}"))
}

#[tokio::test]
async fn handshakes_beyond_the_throttles_tokens_are_refused_and_counted() {
    let server = ServerProcess::start(
        "4lw.commands.whitelist=*\nzookeeper.connection_throttle_tokens=2\n\
         connection_throttle_fill_time=600000\n",
    );
    let mut first = Client::connect(server.address).await;
    let mut second = Client::connect(server.address).await;
    for _ in 0..3 {
        let refused = Client::handshake(server.address, new_session()).await;
        assert!(refused.is_err(), "a handshake past the bucket was admitted");
    }
    assert_eq!(mntr(&server, "connection_rejected"), "3");
    assert_eq!(mntr(&server, "connection_request_count"), "2");
    assert_eq!(mntr(&server, "max_connection_token_deficit"), "2");
    assert_eq!(first.create("/admitted", b"", 0).await, Ok("/admitted".to_owned()));
    assert!(second.get_data("/admitted", false).await.is_ok());
    assert!(server.log().contains("connection throttled"), "{}", server.log());
}

#[tokio::test]
async fn the_documented_names_do_nothing_in_zoo_cfg_as_in_zookeeper() {
    // ZooKeeper reads only zookeeper.connection_throttle_tokens; connectionMaxTokens in a
    // zoo.cfg sets a property nothing reads (checked against ZooKeeper 3.8).
    let server = ServerProcess::start("4lw.commands.whitelist=*\nconnectionMaxTokens=1\n");
    for _ in 0..3 {
        Client::connect(server.address).await;
    }
    assert_eq!(mntr(&server, "connection_rejected"), "0");
    assert_eq!(mntr(&server, "connection_request_count"), "3");
}
