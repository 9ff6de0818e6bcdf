//! Sessions and operations over TCP against the real binary.

mod support;

use bytes::Bytes;
use jute::records::*;
use jute::{Code, OpCode};
use support::client::{open_acl, result, Client, Empty, Handshake};
use support::server::ServerProcess;

#[tokio::test]
async fn session_timeout_is_negotiated_into_the_tick_range() {
    let server = ServerProcess::start("");
    for (asked, granted) in [(10, 1000), (5000, 5000), (100_000, 10_000)] {
        let handshake = Handshake { timeout_ms: asked, ..Handshake::default() };
        let client = Client::handshake(server.address, handshake).await.expect("handshake");
        assert_eq!(client.timeout_ms, granted, "asked for {asked}");
        assert_ne!(client.session_id, 0);
        assert_eq!(client.password.len(), 16);
    }
}

#[tokio::test]
async fn crud_versions_and_errors() {
    let server = ServerProcess::start("");
    let mut client = Client::connect(server.address).await;
    assert_eq!(client.create("/a", b"one", 0).await, Ok("/a".into()));
    assert_eq!(client.create("/a", b"one", 0).await, Err(Code::NodeExists));
    assert_eq!(client.create("/missing/b", b"", 0).await, Err(Code::NoNode));
    assert_eq!(client.create("relative", b"", 0).await, Err(Code::BadArguments));
    assert_eq!(client.create("/a/", b"", 0).await, Err(Code::BadArguments));
    let (data, stat) = client.get_data("/a", false).await.expect("get");
    assert_eq!(data.as_deref(), Some(&b"one"[..]));
    assert_eq!(
        (stat.version, stat.data_length, stat.czxid, stat.mzxid),
        (0, 3, stat.pzxid, stat.czxid)
    );
    assert_eq!(client.set_data("/a", b"two", 5).await, Err(Code::BadVersion));
    let stat = client.set_data("/a", b"two", 0).await.expect("set");
    assert_eq!(stat.version, 1);
    assert!(stat.mzxid > stat.czxid);
    client.create("/a/child", b"", 0).await.expect("child");
    assert_eq!(client.delete("/a", -1).await, Err(Code::NotEmpty));
    assert_eq!(client.delete("/a/child", 7).await, Err(Code::BadVersion));
    client.delete("/a/child", 0).await.expect("delete child");
    client.delete("/a", -1).await.expect("delete");
    assert_eq!(client.get_data("/a", false).await, Err(Code::NoNode));
    assert_eq!(client.delete("/zookeeper", -1).await, Err(Code::BadArguments));
}

#[tokio::test]
async fn null_data_stays_null() {
    let server = ServerProcess::start("");
    let mut client = Client::connect(server.address).await;
    let request = CreateRequest { path: "/n".into(), data: None, acl: open_acl(), flags: 0 };
    assert_eq!(result(&client.call(OpCode::Create, &request).await), Ok(()));
    let (data, stat) = client.get_data("/n", false).await.expect("get");
    assert_eq!((data, stat.data_length), (None, 0));
}

#[tokio::test]
async fn sequential_names_count_creations_while_cversion_counts_changes() {
    let server = ServerProcess::start("");
    let mut client = Client::connect(server.address).await;
    client.create("/p", b"", 0).await.expect("parent");
    client.create("/p/a", b"", 0).await.expect("a");
    assert_eq!(client.children("/p", false).await.expect("ls").1.cversion, 1);
    client.delete("/p/a", -1).await.expect("delete");
    assert_eq!(client.children("/p", false).await.expect("ls").1.cversion, 2);
    assert_eq!(client.create("/p/s-", b"", 2).await, Ok("/p/s-0000000001".into()));
    assert_eq!(client.create("/p/s-", b"", 3).await, Ok("/p/s-0000000002".into()));
    let (_, root) = client.children("/", false).await.expect("ls /");
    // One creation (/p) and two children: /zookeeper was never created by a txn.
    assert_eq!(root.cversion, 0);
}

#[tokio::test]
async fn ephemerals_die_with_close_session_immediately() {
    let server = ServerProcess::start("");
    let mut owner = Client::connect(server.address).await;
    let mut observer = Client::connect(server.address).await;
    owner.create("/e", b"", 1).await.expect("ephemeral");
    assert_eq!(owner.create("/e/child", b"", 0).await, Err(Code::NoChildrenForEphemerals));
    let stat = observer.exists("/e", true).await.expect("exists");
    assert_eq!(stat.ephemeral_owner, owner.session_id);
    owner.close().await;
    let event = observer.next_event().await;
    assert_eq!((event.event_type, event.path.as_str()), (2, "/e"));
    assert_eq!(observer.exists("/e", false).await, Err(Code::NoNode));
}

#[tokio::test]
async fn expired_session_loses_ephemerals_and_cannot_resume() {
    let server = ServerProcess::start("");
    let handshake = Handshake { timeout_ms: 1000, ..Handshake::default() };
    let mut doomed = Client::handshake(server.address, handshake).await.expect("handshake");
    doomed.create("/gone", b"", 1).await.expect("ephemeral");
    let (session_id, password) = (doomed.session_id, doomed.password.clone());
    let mut observer = Client::connect(server.address).await;
    observer.exists("/gone", true).await.expect("exists");
    drop(doomed);
    let event = observer.next_event().await;
    assert_eq!((event.event_type, event.path.as_str()), (2, "/gone"));
    let resume = Handshake {
        timeout_ms: 1000,
        session_id,
        password,
        read_only_flag: true,
        ..Handshake::default()
    };
    let mut late = Client::handshake(server.address, resume).await.expect("handshake");
    assert_eq!((late.timeout_ms, late.session_id), (0, 0), "expired: timeOut 0");
    assert!(late.closed_by_server().await);
}

#[tokio::test]
async fn reconnect_keeps_the_session_and_closes_the_old_connection() {
    let server = ServerProcess::start("");
    let mut first = Client::connect(server.address).await;
    first.create("/mine", b"", 1).await.expect("ephemeral");
    let resume = Handshake {
        timeout_ms: 10_000,
        session_id: first.session_id,
        password: first.password.clone(),
        last_zxid_seen: 1,
        read_only_flag: true,
    };
    let mut second = Client::handshake(server.address, resume.clone()).await.expect("resume");
    assert_eq!(second.session_id, first.session_id);
    assert!(first.closed_by_server().await, "the old connection is closed");
    assert_eq!(
        second.exists("/mine", false).await.map(|s| s.ephemeral_owner),
        Ok(first.session_id)
    );
    let wrong = Handshake { password: Bytes::from_static(&[7; 16]), ..resume };
    let refused = Client::handshake(server.address, wrong).await.expect("handshake");
    assert_eq!(refused.timeout_ms, 0);
}

#[tokio::test]
async fn a_client_ahead_of_the_server_is_refused() {
    let server = ServerProcess::start("");
    let handshake = Handshake { timeout_ms: 5000, last_zxid_seen: 1 << 40, ..Handshake::default() };
    let result = Client::handshake(server.address, handshake).await;
    assert!(result.is_err(), "closed without a ConnectResponse");
    Client::connect(server.address).await.close().await;
}

#[tokio::test]
async fn multi_is_atomic_with_per_op_results() {
    let server = ServerProcess::start("");
    let mut client = Client::connect(server.address).await;
    client.create("/m", b"", 0).await.expect("create");
    let create = |path: &str, flags| MultiOp::Create {
        op_type: 1,
        request: CreateRequest { path: path.into(), data: None, acl: open_acl(), flags },
    };
    let ok = MultiRequest {
        ops: vec![
            create("/m/a", 0),
            create("/m/s-", 2),
            MultiOp::SetData(SetDataRequest {
                path: "/m".into(),
                data: Some(Bytes::from_static(b"x")),
                version: 0,
            }),
            MultiOp::Check(CheckVersionRequest { path: "/m".into(), version: 1 }),
        ],
    };
    let reply = client.call(OpCode::Multi, &ok).await;
    assert_eq!(reply.header.err, 0);
    let results = reply.decode::<MultiResponse>().results;
    assert_eq!(results[0], MultiResult::Create("/m/a".into()));
    assert_eq!(results[1], MultiResult::Create("/m/s-0000000001".into()));
    assert!(matches!(&results[2], MultiResult::SetData(stat) if stat.version == 1));
    assert_eq!(results[3], MultiResult::Check);

    let failing = MultiRequest {
        ops: vec![
            create("/m/b", 0),
            MultiOp::Check(CheckVersionRequest { path: "/m".into(), version: 99 }),
            MultiOp::Delete(DeleteRequest { path: "/m/a".into(), version: -1 }),
        ],
    };
    let reply = client.call(OpCode::Multi, &failing).await;
    assert_eq!(reply.header.err, 0, "a failed multi still answers 0 in the header");
    let results = reply.decode::<MultiResponse>().results;
    assert_eq!(results, [MultiResult::Error(0), MultiResult::Error(-103), MultiResult::Error(-2)]);
    assert_eq!(client.exists("/m/b", false).await, Err(Code::NoNode));
    assert!(client.exists("/m/a", false).await.is_ok());
}

#[tokio::test]
async fn multi_read_answers_each_op() {
    let server = ServerProcess::start("");
    let mut client = Client::connect(server.address).await;
    client.create("/r", b"data", 0).await.expect("create");
    let request = MultiRequest {
        ops: vec![
            MultiOp::GetData(GetDataRequest { path: "/r".into(), watch: false }),
            MultiOp::GetChildren(GetChildrenRequest { path: "/nope".into(), watch: false }),
        ],
    };
    let reply = client.call(OpCode::MultiRead, &request).await;
    let results = reply.decode::<MultiResponse>().results;
    assert!(
        matches!(&results[0], MultiResult::GetData { data: Some(d), .. } if d.as_ref() == b"data")
    );
    assert_eq!(results[1], MultiResult::Error(Code::NoNode.as_i32()));
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let server = ServerProcess::start("");
    let mut client = Client::connect(server.address).await;
    let mut xids = Vec::new();
    for i in 0..200 {
        let path = format!("/p{}", i % 20);
        xids.push(if i % 3 == 0 {
            let request = CreateRequest { path, data: None, acl: open_acl(), flags: 0 };
            client.send(OpCode::Create, &request).await
        } else {
            client.send(OpCode::Exists, &ExistsRequest { path, watch: false }).await
        });
    }
    for xid in xids {
        let frame = client.next_frame().await.expect("reply");
        assert_eq!(frame.header.xid, xid);
    }
    client.send_with_xid(-2, OpCode::Ping, &Empty).await;
    let ping = client.reply(-2).await;
    assert_eq!(ping.header.err, 0);
}

#[tokio::test]
async fn a_read_after_a_write_sees_it() {
    let server = ServerProcess::start("");
    let mut client = Client::connect(server.address).await;
    for i in 0..50 {
        let data = format!("v{i}");
        let request = SetDataRequest {
            path: "/x".into(),
            data: Some(Bytes::from(data.clone())),
            version: -1,
        };
        if i == 0 {
            client.create("/x", b"", 0).await.expect("create");
        }
        client.send(OpCode::SetData, &request).await;
        let xid =
            client.send(OpCode::GetData, &GetDataRequest { path: "/x".into(), watch: false }).await;
        let reply = client.reply(xid).await;
        assert_eq!(reply.decode::<GetDataResponse>().data.as_deref(), Some(data.as_bytes()));
    }
}

#[tokio::test]
async fn acls_digest_auth_and_masking() {
    let server = ServerProcess::start(
        "DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=",
    );
    let mut alice = Client::connect(server.address).await;
    let auth = |user: &str| AuthPacket {
        auth_type: 0,
        scheme: "digest".into(),
        auth: Bytes::from(user.to_owned()),
    };
    assert_eq!(result(&alice.call(OpCode::Auth, &auth("alice:secret")).await), Ok(()));
    let auth_acl = vec![Acl { perms: 3, id: Id { scheme: "auth".into(), id: String::new() } }];
    let request = CreateRequest { path: "/secret".into(), data: None, acl: auth_acl, flags: 0 };
    assert_eq!(result(&alice.call(OpCode::Create, &request).await), Ok(()));
    let acl = alice
        .call(OpCode::GetAcl, &GetAclRequest { path: "/secret".into() })
        .await
        .decode::<GetAclResponse>();
    assert_eq!(acl.acl[0].id.id, "alice:x", "no ADMIN permission: digest masked");
    assert_eq!(alice.set_data("/secret", b"ok", -1).await.map(|s| s.version), Ok(1));

    let mut mallory = Client::connect(server.address).await;
    assert_eq!(mallory.get_data("/secret", false).await, Err(Code::NoAuth));
    assert_eq!(mallory.set_data("/secret", b"no", -1).await, Err(Code::NoAuth));
    let no_auth_acl = vec![Acl { perms: 31, id: Id { scheme: "auth".into(), id: String::new() } }];
    let request = CreateRequest { path: "/x".into(), data: None, acl: no_auth_acl, flags: 0 };
    assert_eq!(result(&mallory.call(OpCode::Create, &request).await), Err(Code::InvalidAcl));

    let mut root = Client::connect(server.address).await;
    root.call(OpCode::Auth, &auth("super:test")).await;
    assert!(root.get_data("/secret", false).await.is_ok(), "super passes every ACL");
    let who = root.call(OpCode::WhoAmI, &Empty).await.decode::<WhoAmIResponse>();
    let schemes: Vec<_> = who.client_info.iter().map(|info| info.auth_scheme.as_str()).collect();
    assert!(schemes.contains(&"super") && schemes.contains(&"ip") && schemes.contains(&"digest"));

    let mut stranger = Client::connect(server.address).await;
    let bad = AuthPacket { auth_type: 0, scheme: "kerberos".into(), auth: Bytes::new() };
    let reply = stranger.call(OpCode::Auth, &bad).await;
    assert_eq!(result(&reply), Err(Code::AuthFailed));
    assert!(stranger.closed_by_server().await);
}

#[tokio::test]
async fn system_nodes_exist_as_in_zookeeper() {
    let server = ServerProcess::start("");
    let mut client = Client::connect(server.address).await;
    assert_eq!(client.children("/zookeeper", false).await.expect("ls").0, ["config", "quota"]);
    assert_eq!(client.set_data("/zookeeper/config", b"x", -1).await, Err(Code::NoAuth));
    let count = client
        .call(OpCode::GetAllChildrenNumber, &GetAllChildrenNumberRequest { path: "/".into() })
        .await;
    assert_eq!(count.decode::<GetAllChildrenNumberResponse>().total_number, 3);
}

#[tokio::test]
async fn ephemerals_and_descendant_counts() {
    let server = ServerProcess::start("");
    let mut client = Client::connect(server.address).await;
    client.create("/t", b"", 0).await.expect("t");
    client.create("/t/a", b"", 0).await.expect("a");
    client.create("/t/a/b", b"", 0).await.expect("b");
    client.create("/t/e1", b"", 1).await.expect("e1");
    client.create("/u", b"", 1).await.expect("u");
    let count = client
        .call(OpCode::GetAllChildrenNumber, &GetAllChildrenNumberRequest { path: "/t".into() })
        .await;
    assert_eq!(count.decode::<GetAllChildrenNumberResponse>().total_number, 3);
    let all =
        client.call(OpCode::GetEphemerals, &GetEphemeralsRequest { prefix_path: "/".into() }).await;
    assert_eq!(all.decode::<GetEphemeralsResponse>().ephemerals, ["/t/e1", "/u"]);
    let some = client
        .call(OpCode::GetEphemerals, &GetEphemeralsRequest { prefix_path: "/t".into() })
        .await;
    assert_eq!(some.decode::<GetEphemeralsResponse>().ephemerals, ["/t/e1"]);
}

#[tokio::test]
async fn containers_and_ttl_nodes_are_reaped() {
    let server = ServerProcess::start("znode.container.checkIntervalMs=100");
    let mut client = Client::connect(server.address).await;
    let container = CreateRequest { path: "/c".into(), data: None, acl: open_acl(), flags: 4 };
    assert_eq!(result(&client.call(OpCode::CreateContainer, &container).await), Ok(()));
    let never_used =
        CreateRequest { path: "/unused".into(), data: None, acl: open_acl(), flags: 4 };
    client.call(OpCode::CreateContainer, &never_used).await;
    client.create("/c/child", b"", 0).await.expect("child");
    let ttl =
        CreateTtlRequest { path: "/ttl".into(), data: None, acl: open_acl(), flags: 5, ttl: 200 };
    assert_eq!(result(&client.call(OpCode::CreateTtl, &ttl).await), Ok(()));
    client.exists("/c", true).await.expect("watch");
    client.exists("/ttl", true).await.expect("watch");
    client.delete("/c/child", -1).await.expect("delete child");
    let mut deleted = vec![client.next_event().await.path, client.next_event().await.path];
    deleted.sort();
    assert_eq!(deleted, ["/c", "/ttl"]);
    assert!(client.exists("/unused", false).await.is_ok(), "never-used containers stay");
    let zero_ttl =
        CreateTtlRequest { path: "/t0".into(), data: None, acl: open_acl(), flags: 5, ttl: 0 };
    assert_eq!(result(&client.call(OpCode::CreateTtl, &zero_ttl).await), Err(Code::BadArguments));
}

#[tokio::test]
async fn ttl_needs_extended_types() {
    let dir_config = "extendedTypesEnabled=false";
    let server = ServerProcess::start(dir_config);
    let mut client = Client::connect(server.address).await;
    let ttl =
        CreateTtlRequest { path: "/ttl".into(), data: None, acl: open_acl(), flags: 5, ttl: 1000 };
    assert_eq!(result(&client.call(OpCode::CreateTtl, &ttl).await), Err(Code::Unimplemented));
}

#[tokio::test]
async fn reconfig_answers_as_a_standalone_server() {
    let request = ReconfigRequest {
        joining_servers: None,
        leaving_servers: None,
        new_members: None,
        cur_config_id: -1,
    };
    let server = ServerProcess::start("");
    let mut client = Client::connect(server.address).await;
    assert_eq!(result(&client.call(OpCode::Reconfig, &request).await), Err(Code::ReconfigDisabled));
    let server = ServerProcess::start("reconfigEnabled=true");
    let mut client = Client::connect(server.address).await;
    assert_eq!(result(&client.call(OpCode::Reconfig, &request).await), Err(Code::Unimplemented));
}

#[tokio::test]
async fn sync_answers_with_its_path() {
    let server = ServerProcess::start("");
    let mut client = Client::connect(server.address).await;
    let reply = client.call(OpCode::Sync, &SyncRequest { path: "/any".into() }).await;
    assert_eq!(reply.decode::<SyncResponse>().path, "/any");
}

#[tokio::test]
async fn srvr_answers_with_zookeepers_lines() {
    let server = ServerProcess::start("");
    let answer = support::ensemble::four_letter(server.address, "srvr").expect("srvr answers");
    let labels: Vec<&str> =
        answer.lines().filter_map(|line| line.split_once(": ")).map(|(label, _)| label).collect();
    // ZooKeeper 3.8's `srvr`, label for label.
    let zookeeper = [
        "Zookeeper version",
        "Latency min/avg/max",
        "Received",
        "Sent",
        "Connections",
        "Outstanding",
        "Zxid",
        "Mode",
        "Node count",
    ];
    assert_eq!(labels, zookeeper, "{answer}");
}

#[tokio::test]
async fn stat_lists_its_own_connection_with_the_word_it_received() {
    let server = ServerProcess::start("");
    let mut client = Client::connect(server.address).await;
    client.create("/a", b"", 0).await.expect("create");
    let stat = support::ensemble::four_letter(server.address, "stat").expect("stat answers");
    // As ZooKeeper 3.8 lists them: the stat connection has received its word and sent
    // nothing yet; the session's received its handshake and create.
    let clients: Vec<&str> = stat.lines().filter(|line| line.starts_with(" /")).collect();
    assert_eq!(clients.len(), 2, "{stat}");
    assert!(clients.iter().any(|line| line.ends_with("[0](queued=0,recved=1,sent=0)")), "{stat}");
    assert!(clients.iter().any(|line| line.ends_with("[1](queued=0,recved=2,sent=2)")), "{stat}");
}
