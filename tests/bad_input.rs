//! Hostile and broken clients: each gets an error or a closed connection, a log line, and
//! nothing else; the server and its other sessions carry on.

mod support;

use std::time::Duration;

use bytes::BytesMut;
use jute::records::*;
use jute::{Code, OpCode, Record};
use support::client::{framed, Client};
use support::server::ServerProcess;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection; false on a timeout.
async fn closes(stream: &mut TcpStream) -> bool {
    let mut sink = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(15), stream.read(&mut sink)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

async fn healthy(server: &ServerProcess) {
    let mut client = Client::connect(server.address).await;
    client.create("/healthy", b"", 1).await.expect("the server still serves");
    client.close().await;
}

#[tokio::test]
async fn oversized_and_negative_handshake_frames_close_the_connection() {
    let mut server = ServerProcess::start("jute.maxbuffer=1000");
    for length in [1001i32, -5, i32::MAX] {
        let mut stream = TcpStream::connect(server.address).await.expect("connect");
        stream.write_all(&length.to_be_bytes()).await.expect("send");
        assert!(closes(&mut stream).await, "length {length}");
    }
    healthy(&server).await;
    assert!(server.wait_for_line("Len error").is_some(), "a log line says why");
}

#[tokio::test]
async fn oversized_request_frame_closes_only_that_connection() {
    let server = ServerProcess::start("jute.maxbuffer=1000");
    let mut bystander = Client::connect(server.address).await;
    let mut client = Client::connect(server.address).await;
    let request =
        SetDataRequest { path: "/x".into(), data: Some(vec![0u8; 2000].into()), version: -1 };
    client.send(OpCode::SetData, &request).await;
    assert!(client.closed_by_server().await);
    bystander.create("/still-here", b"", 0).await.expect("other sessions are unaffected");
}

#[tokio::test]
async fn garbage_handshake_and_truncated_frames() {
    let server = ServerProcess::start("");
    let cases: Vec<Vec<u8>> = vec![
        framed(b"\x01\x02"),
        framed(&[0xff; 40]),
        b"\x00\x00\x00\x10short".to_vec(),
        framed(&[]),
    ];
    for bytes in cases {
        let mut stream = TcpStream::connect(server.address).await.expect("connect");
        stream.write_all(&bytes).await.expect("send");
        let _ = stream.shutdown().await;
        assert!(closes(&mut stream).await);
    }
    healthy(&server).await;
}

#[tokio::test]
async fn garbage_after_the_handshake() {
    let server = ServerProcess::start("");
    let mut client = Client::connect(server.address).await;
    client.send_raw(&framed(b"\x00\x00")).await;
    assert!(client.closed_by_server().await, "a frame shorter than a header");
    let mut client = Client::connect(server.address).await;
    let mut body = BytesMut::new();
    RequestHeader { xid: 9, op_type: OpCode::Create.as_i32() }.write(&mut body);
    body.extend_from_slice(&[0, 0, 0, 50, b'/']);
    client.send_raw(&framed(&body)).await;
    let reply = client.reply(9).await;
    assert_eq!(
        reply.header.err,
        Code::MarshallingError.as_i32(),
        "a malformed body gets MarshallingError"
    );
    client.create("/after", b"", 0).await.expect("and the session carries on");
}

#[tokio::test]
async fn unknown_opcode_gets_unimplemented_and_a_close() {
    let server = ServerProcess::start("");
    let mut client = Client::connect(server.address).await;
    let mut body = BytesMut::new();
    RequestHeader { xid: 4, op_type: 999 }.write(&mut body);
    client.send_raw(&framed(&body)).await;
    let reply = client.next_frame().await.expect("reply");
    assert_eq!((reply.header.xid, reply.header.err), (4, Code::Unimplemented.as_i32()));
    assert!(client.closed_by_server().await);
    healthy(&server).await;
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_handshake_timeout() {
    let server = ServerProcess::start("");
    let mut stream = TcpStream::connect(server.address).await.expect("connect");
    assert!(closes(&mut stream).await, "no handshake within 10 s");
}

/// Connections open on the server, as `mntr` counts them (its own included).
fn alive_connections(server: &ServerProcess) -> Option<u32> {
    let mntr = support::ensemble::four_letter(server.address, "mntr")?;
    let line = mntr.lines().find(|line| line.starts_with("zk_num_alive_connections"))?;
    line.split('\t').nth(1)?.trim().parse().ok()
}

#[tokio::test]
async fn a_client_that_stops_reading_holds_up_only_itself() {
    let server = ServerProcess::start("");
    let mut bystander = Client::connect(server.address).await;
    bystander.create("/big", &vec![7u8; 512 * 1024], 0).await.expect("create");
    let mut greedy = Client::connect(server.address).await;
    // 80 MiB of replies asked for and none read: more than the socket's buffers and the
    // server's 64 MiB limit for one client take. The server cuts this one off past the
    // limit; nothing else waits.
    for _ in 0..160 {
        greedy.send(OpCode::GetData, &GetDataRequest { path: "/big".into(), watch: false }).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    bystander.create("/after", b"", 0).await.expect("other sessions are unaffected");
    healthy(&server).await;
    assert!(greedy.closed_by_server().await, "the client that stopped reading is cut off");
    drop(greedy);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while alive_connections(&server) != Some(2) {
        assert!(tokio::time::Instant::now() < deadline, "the stalled connection lingers");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bystander.close().await;
}

#[tokio::test]
async fn many_idle_connections_do_not_hurt() {
    let server = ServerProcess::start("");
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(TcpStream::connect(server.address).await.expect("connect"));
    }
    let mut sessions = Vec::new();
    for _ in 0..50 {
        sessions.push(Client::connect(server.address).await);
    }
    healthy(&server).await;
    drop(idle);
    for session in sessions {
        session.close().await;
    }
}

#[tokio::test]
async fn per_ip_connection_limit() {
    let server = ServerProcess::start("maxClientCnxns=3");
    let mut kept = Vec::new();
    for _ in 0..3 {
        kept.push(Client::connect(server.address).await);
    }
    let mut stream = TcpStream::connect(server.address).await.expect("connect");
    assert!(closes(&mut stream).await, "the fourth connection from 127.0.0.1 is refused");
    kept.pop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fourth = None;
    for _ in 0..50 {
        if let Ok(client) = Client::handshake(
            server.address,
            support::client::Handshake { timeout_ms: 5000, ..Default::default() },
        )
        .await
        {
            fourth = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(fourth.is_some(), "room again once one closed");
}

#[tokio::test]
async fn invalid_paths_and_acls_get_error_codes() {
    let server = ServerProcess::start("");
    let mut client = Client::connect(server.address).await;
    client.create("/a", b"", 0).await.expect("parent");
    // As in ZooKeeper, the parent is looked up before the whole path is validated.
    let cases = [
        ("", Code::BadArguments),
        ("x", Code::BadArguments),
        ("/a/", Code::BadArguments),
        ("/a/.", Code::BadArguments),
        ("/a/..", Code::BadArguments),
        ("/\u{1}", Code::BadArguments),
        ("/a\0b", Code::BadArguments),
        ("/a//b", Code::NoNode),
    ];
    for (path, code) in cases {
        assert_eq!(client.create(path, b"", 0).await, Err(code), "{path:?}");
    }
    let bad_acl = vec![Acl { perms: 31, id: Id { scheme: "digest".into(), id: "nocolon".into() } }];
    let request = CreateRequest { path: "/acl".into(), data: None, acl: bad_acl, flags: 0 };
    assert_eq!(
        support::client::result(&client.call(OpCode::Create, &request).await),
        Err(Code::InvalidAcl)
    );
    let request = CreateRequest {
        path: "/flags".into(),
        data: None,
        acl: support::client::open_acl(),
        flags: 42,
    };
    assert_eq!(
        support::client::result(&client.call(OpCode::Create, &request).await),
        Err(Code::BadArguments)
    );
}
