//! Admission control as ZooKeeper's: the connection throttle's token bucket
//! (`zookeeper.connection_throttle_*`) refuses handshakes beyond its tokens, closing
//! their connections without a reply, counts them in `mntr`, and leaves the sessions it
//! admitted alone; the request throttle holds requests back and answers THROTTLEDOP
//! past `throttled_op_wait_time`; a large request past its budget closes its
//! connection; and under a flood far past every limit pings are answered, no session
//! expires, memory stays bounded and throughput comes back.

mod support;

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use jute::records::{CreateRequest, ReplyHeader, RequestHeader, SetDataRequest};
use jute::{Code, OpCode, Reader, Record};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};

use support::client::{framed, open_acl, result, Client, Empty, Handshake};
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
    let mut server = ServerProcess::start(
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
    let logged = server.wait_for_line("connection throttled");
    assert!(logged.is_some(), "{}", server.log());
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

fn create_request(path: &str, data: &[u8]) -> CreateRequest {
    CreateRequest {
        path: path.to_owned(),
        data: Some(Bytes::copy_from_slice(data)),
        acl: open_acl(),
        flags: 0,
    }
}

fn set_data_request(path: &str, data: &[u8]) -> SetDataRequest {
    SetDataRequest { path: path.to_owned(), data: Some(Bytes::copy_from_slice(data)), version: -1 }
}

/// Sends `count` copies of one request down a client's connection as fast as the server
/// reads them, and returns the error code of every reply, in order. Requests go out
/// without waiting for replies; the server decides how fast it reads.
async fn flood(client: Client, op: OpCode, body: &impl Record, count: usize) -> Vec<i32> {
    let (read_half, mut write_half) = client.into_stream().into_split();
    let mut frame = BytesMut::new();
    RequestHeader { xid: 1, op_type: op.as_i32() }.write(&mut frame);
    body.write(&mut frame);
    let frame = framed(&frame);
    let writer = tokio::spawn(async move {
        for _ in 0..count {
            if write_half.write_all(&frame).await.is_err() {
                break;
            }
        }
        write_half
    });
    let mut reader = BufReader::new(read_half);
    let mut codes = Vec::with_capacity(count);
    while codes.len() < count {
        let Ok(len) = reader.read_i32().await else {
            break;
        };
        let mut body = vec![0; usize::try_from(len).expect("frame length")];
        if reader.read_exact(&mut body).await.is_err() {
            break;
        }
        let header = ReplyHeader::read(&mut Reader::new(&Bytes::from(body))).expect("reply header");
        if header.xid != -1 {
            codes.push(header.err);
        }
    }
    drop(writer.await);
    codes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_held_at_the_throttle_too_long_is_answered_throttledop() {
    const FLOODS: usize = 16;
    const REQUESTS: usize = 500;
    let server = ServerProcess::start(
        "zookeeper.request_throttle_max_requests=1\nzookeeper.throttled_op_wait_time=1\n",
    );
    let mut setup = Client::connect(server.address).await;
    assert_eq!(setup.create("/busy", b"", 0).await, Ok("/busy".to_owned()));
    // One write in process at a time, and clients that keep requests waiting behind it:
    // a request that arrives waits for each of theirs, far longer than 1 ms.
    let mut floods = Vec::new();
    for _ in 0..FLOODS {
        let client = Client::connect(server.address).await;
        let body = set_data_request("/busy", b"x");
        floods.push(tokio::spawn(
            async move { flood(client, OpCode::SetData, &body, REQUESTS).await },
        ));
    }
    let mut other = Client::connect(server.address).await;
    let mut throttled_path = None;
    for attempt in 0..100 {
        let path = format!("/attempt-{attempt}");
        let xid = other.send(OpCode::Create, &create_request(&path, b"")).await;
        match result(&other.reply(xid).await) {
            Err(Code::ThrottledOp) => {
                throttled_path = Some(path);
                break;
            }
            outcome => assert_eq!(outcome, Ok(()), "{path}"),
        }
    }
    let path = throttled_path.expect("a create that waited its turn was answered THROTTLEDOP");
    let mut throttled = 1;
    for flood in floods {
        let codes = flood.await.expect("flood");
        assert_eq!(codes.len(), REQUESTS, "every request of a flooding client was answered");
        assert!(codes.iter().all(|code| *code == 0 || *code == Code::ThrottledOp.as_i32()));
        throttled += codes.iter().filter(|code| **code == Code::ThrottledOp.as_i32()).count();
    }
    assert_eq!(other.exists(&path, false).await, Err(Code::NoNode), "not carried out");
    assert_eq!(mntr(&server, "throttled_ops"), throttled.to_string());
    assert_ne!(mntr(&server, "request_throttle_wait_count"), "0");
    let pings = other.call(OpCode::Ping, &Empty).await;
    assert_eq!(result(&pings), Ok(()));
}

#[tokio::test]
async fn a_large_request_past_the_budget_closes_only_its_connection() {
    let mut server =
        ServerProcess::start("largeRequestThreshold=100\nzookeeper.largeRequestMaxBytes=500\n");
    let mut bystander = Client::connect(server.address).await;
    let mut client = Client::connect(server.address).await;
    assert_eq!(client.create("/small", &[1; 100], 0).await, Ok("/small".to_owned()));
    assert_eq!(client.create("/large", &[2; 400], 0).await, Ok("/large".to_owned()));
    let xid = client.send(OpCode::SetData, &set_data_request("/large", &[3; 600])).await;
    assert!(client.try_reply(xid).await.is_none(), "a 600-byte frame past 500 was answered");
    assert_eq!(mntr(&server, "large_requests_rejected"), "1");
    let logged = server.wait_for_line("rejecting a large request");
    assert!(logged.is_some(), "{}", server.log());
    let (data, _) = bystander.get_data("/large", false).await.expect("the others go on");
    assert_eq!(data.as_deref(), Some(&[2; 400][..]));
}

/// The peak resident memory of a process so far, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// How many setData requests one client gets answered in `window` pipelined at a time,
/// per second, over `count` requests.
async fn write_rate(address: std::net::SocketAddr, count: usize) -> f64 {
    let mut client = Client::connect(address).await;
    let started = Instant::now();
    let window = 100;
    let body = set_data_request("/load", b"rate");
    for _ in 0..count / window {
        let mut xids = Vec::with_capacity(window);
        for _ in 0..window {
            xids.push(client.send(OpCode::SetData, &body).await);
        }
        for xid in xids {
            assert_eq!(result(&client.reply(xid).await), Ok(()));
        }
    }
    count as f64 / started.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_flood_pings_are_answered_no_session_expires_and_throughput_recovers() {
    const CONNECTIONS: usize = 64;
    const REQUESTS: usize = 3_000;
    let server = ServerProcess::start(
        "zookeeper.request_throttle_max_requests=20\nglobalOutstandingLimit=200\n\
         largeRequestThreshold=8192\n",
    );
    let mut setup = Client::connect(server.address).await;
    assert_eq!(setup.create("/load", b"", 0).await, Ok("/load".to_owned()));
    let before = write_rate(server.address, 2_000).await;

    let mut probe = Client::connect(server.address).await;
    let timeout = Duration::from_millis(u64::try_from(probe.timeout_ms).expect("timeout"));
    let body = set_data_request("/load", &[7; 1024]);
    let mut floods = Vec::new();
    for _ in 0..CONNECTIONS {
        let client = Client::connect(server.address).await;
        let body = body.clone();
        floods.push(tokio::spawn(
            async move { flood(client, OpCode::SetData, &body, REQUESTS).await },
        ));
    }
    let mut slowest_ping = Duration::ZERO;
    let mut pings = 0;
    while !floods.iter().all(tokio::task::JoinHandle::is_finished) {
        let sent = Instant::now();
        let reply = probe.try_call(OpCode::Ping, &Empty, timeout).await;
        assert!(reply.is_some(), "a ping went unanswered for the session timeout {timeout:?}");
        slowest_ping = slowest_ping.max(sent.elapsed());
        pings += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for flood in floods {
        let codes = flood.await.expect("flood");
        assert_eq!(codes.len(), REQUESTS, "a flooding session lost replies");
        assert!(codes.iter().all(|code| *code == 0), "a flooding session got {codes:?}");
    }
    assert!(probe.exists("/load", false).await.is_ok(), "the probe's session is alive");
    let after = write_rate(server.address, 2_000).await;
    let peak_mib = peak_rss_kib(server.pid()) / 1024;
    println!(
        "overload: {} requests from {CONNECTIONS} connections; {pings} pings, slowest {:?} \
         (session timeout {timeout:?}); peak RSS {peak_mib} MiB; pipelined writes {before:.0}/s \
         before, {after:.0}/s after",
        CONNECTIONS * REQUESTS,
        slowest_ping
    );
    assert!(slowest_ping < timeout);
    assert!(peak_mib < 512, "peak RSS {peak_mib} MiB");
    assert_ne!(mntr(&server, "request_throttle_wait_count"), "0", "the flood was held back");
}
