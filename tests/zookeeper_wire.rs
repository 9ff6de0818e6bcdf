//! zkrs's side of ZooKeeper's own peer protocol (`zkrs::ensemble::zookeeper`) against a
//! running Apache ZooKeeper 3.8. Two tests play an observer of its ensemble with nothing
//! but zkrs's encoders and decoders, on the election port and on the quorum port: the
//! handshake, a snapshot, committed txns, pings and forwarded requests. Three more put
//! zkrs's replication core itself (`zab::Zab`) behind the translators: as an observer it
//! learns the leader from ZooKeeper's notification, syncs from its snapshot and applies
//! what ZooKeeper commits; as one of two voters it elects ZooKeeper, follows it and
//! acknowledges the write ZooKeeper cannot commit without it; and as the other it is
//! elected, leads ZooKeeper, and ZooKeeper applies the txn it proposes, or installs the
//! snapshot it streams (`zk_format::snapshot::encode_transferred`) and serves it.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use jute::records::{CreateRequest, CreateTxn, Id, Stat, TxnHeader};
use jute::{OpCode, Record};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Decoder, Framed};

use support::client::{open_acl, Client, Handshake};
use support::zookeeper::{free_port, ReferenceZooKeeper};
use zkrs::config::Config;
use zkrs::ensemble::zookeeper::election::{self, ElectionCodec, InitialMessage, WireNotification};
use zkrs::ensemble::zookeeper::leader::{LeaderSide, Outgoing};
use zkrs::ensemble::zookeeper::learner::LearnerSide;
use zkrs::ensemble::zookeeper::packet::{
    self, LearnerInfo, PacketCodec, PacketType, QuorumPacket, PROTOCOL_VERSION,
};
use zkrs::ensemble::zookeeper::sessions::{self, Forwarded};
use zkrs::storage::record::{seal, unseal};
use zkrs::storage::Epochs;
use zkrs::txn::{SessionId, Txn, TxnBody, Zxid};
use zkrs::zab::{
    Action, Entry, History, Input, Message, Notification, PeerState, Restored, Role, ServerId,
    Vote, Zab, ZabConfig,
};
use zkrs::zk_format::snapshot::{
    encode_transferred, read_snapshot, Snapshot, TransferPiece, TransferReader,
};

/// How long the leader may take to send what it owes.
const PATIENCE: Duration = Duration::from_secs(10);

/// The observer's id, and the session id a ZooKeeper learner with that id would give
/// its first client (the id in the top byte).
const OBSERVER: u64 = 2;
const SESSION: SessionId = SessionId::new((OBSERVER as i64) << 56 | 1);

struct Ports {
    quorum: u16,
    election: u16,
    observer_quorum: u16,
    observer_election: u16,
}

/// ZooKeeper as the only voter of an ensemble whose server.2, an observer, the test plays.
async fn leader() -> (ReferenceZooKeeper, Ports) {
    let ports = Ports {
        quorum: free_port(),
        election: free_port(),
        observer_quorum: free_port(),
        observer_election: free_port(),
    };
    let servers = format!(
        "standaloneEnabled=false\ninitLimit=10\nsyncLimit=5\n\
         server.1=127.0.0.1:{}:{}:participant\nserver.2=127.0.0.1:{}:{}:observer\n",
        ports.quorum, ports.election, ports.observer_quorum, ports.observer_election
    );
    (ReferenceZooKeeper::start_member(1, &servers, &[]).await, ports)
}

/// The membership text zkrs makes of the same zoo.cfg.
fn membership_text(zookeeper: &ReferenceZooKeeper) -> String {
    let config = Config::load(&zookeeper.config).expect("zkrs reads ZooKeeper's zoo.cfg");
    config.membership.to_zookeeper_text()
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Sends ZooKeeper's election port the observer's initial message and a vote for
/// itself, and returns ZooKeeper's answer. A ZooKeeper member answers a non-voter's
/// notification with its own vote once it has read it: an answer means it understood.
async fn exchange_votes(ports: &Ports, text: &str) -> WireNotification {
    let mut stream = TcpStream::connect(local(ports.election)).await.expect("election port");
    let mut out = BytesMut::new();
    let hello = InitialMessage {
        server_id: OBSERVER,
        addresses: vec![format!("127.0.0.1:{}", ports.observer_election)],
    };
    hello.encode(&mut out);
    let ours = Notification {
        round: 1,
        vote: Vote { epoch: 0, zxid: Zxid::ZERO, leader: OBSERVER },
        state: PeerState::Looking,
    };
    tokio_util::codec::Encoder::encode(
        &mut ElectionCodec,
        &WireNotification::new(&ours, text),
        &mut out,
    )
    .expect("encode");
    stream.write_all(&out).await.expect("send");
    let mut buf = BytesMut::new();
    let payload = tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(payload) = ElectionCodec.decode(&mut buf).expect("a frame") {
                return payload;
            }
            assert!(stream.read_buf(&mut buf).await.expect("read") > 0, "closed");
        }
    })
    .await
    .expect("ZooKeeper answered in time");
    election::decode(&payload).expect("a notification")
}

#[tokio::test]
async fn zookeeper_answers_a_notification_and_says_what_zkrs_would_say() {
    let (zookeeper, ports) = leader().await;
    let text = membership_text(&zookeeper);
    let theirs = exchange_votes(&ports, &text).await;
    assert_eq!((theirs.state, theirs.leader, theirs.version), (PeerState::Leading, 1, 2));
    assert_eq!(theirs.config.as_deref(), Some(text.as_str()), "membership text");
    assert!(theirs.notification().expect("meaningful").vote.epoch >= 1);
}

type Quorum = Framed<TcpStream, PacketCodec>;

async fn next(quorum: &mut Quorum) -> QuorumPacket {
    loop {
        let packet = tokio::time::timeout(PATIENCE, quorum.next())
            .await
            .expect("the leader sent in time")
            .expect("the connection is open")
            .expect("a packet zkrs decodes");
        if packet.kind != PacketType::Ping {
            return packet;
        }
        // A learner answers every ping with the sessions its clients kept alive.
        let touched = sessions::touches(&[(SESSION, 30_000)]);
        let reply = QuorumPacket::with_data(PacketType::Ping, packet.zxid, touched);
        quorum.send(&reply).await.expect("pong");
    }
}

/// Reads the snapshot that follows `SNAP` on the stream.
async fn transferred_snapshot(quorum: &mut Quorum, zxid: i64) -> Snapshot {
    // What the packet codec read past SNAP is the snapshot's start; the rest comes from
    // the socket, piece by piece, and what follows its end goes back to the codec.
    let mut reader = TransferReader::new();
    let mut pieces = Vec::new();
    let mut bytes = quorum.read_buffer_mut().split().freeze();
    let rest = loop {
        if let Some(rest) = reader.feed(&bytes, &mut pieces).expect("a snapshot") {
            break rest;
        }
        let mut more = BytesMut::new();
        let read = tokio::time::timeout(PATIENCE, quorum.get_mut().read_buf(&mut more))
            .await
            .expect("the snapshot came in time")
            .expect("read");
        assert!(read > 0, "the leader closed the connection inside the snapshot");
        bytes = more.freeze();
    };
    quorum.read_buffer_mut().extend_from_slice(&rest);
    let mut snapshot = Snapshot { zxid, sessions: Vec::new(), nodes: Vec::new() };
    for piece in pieces {
        match piece {
            TransferPiece::Sessions(sessions) => snapshot.sessions = sessions,
            TransferPiece::Node(node) => snapshot.nodes.push(node),
        }
    }
    snapshot
}

/// The observer's client's request `op` with xid `cxid`, forwarded.
fn request(cxid: i32, op: OpCode, body: &[u8]) -> QuorumPacket {
    let mut frame = BytesMut::new();
    frame.extend_from_slice(&cxid.to_be_bytes());
    frame.extend_from_slice(&op.as_i32().to_be_bytes());
    frame.extend_from_slice(body);
    let auth = vec![Id { scheme: "ip".into(), id: "127.0.0.1".into() }];
    Forwarded { session_id: SESSION, frame: frame.freeze(), auth }.packet()
}

#[tokio::test]
async fn an_observer_speaking_zkrs_codecs_syncs_follows_and_forwards() {
    let (zookeeper, ports) = leader().await;
    let text = membership_text(&zookeeper);
    let mut writer = Client::connect(zookeeper.address).await;
    writer.create("/before", b"in the snapshot", 0).await.expect("create");

    let stream = TcpStream::connect(local(ports.quorum)).await.expect("quorum port");
    let mut quorum = Framed::new(stream, PacketCodec::new(1 << 20));
    let info =
        LearnerInfo { server_id: OBSERVER, protocol_version: PROTOCOL_VERSION, config_version: 0 };
    quorum
        .send(&QuorumPacket::with_data(PacketType::ObserverInfo, 0, info.encode()))
        .await
        .expect("send");
    let leader_info = next(&mut quorum).await;
    assert_eq!(leader_info.kind, PacketType::LeaderInfo);
    assert_eq!(
        packet::read_int_payload(leader_info.data.as_ref(), "version").ok(),
        Some(PROTOCOL_VERSION)
    );
    let epoch = Zxid::new(leader_info.zxid).epoch();
    assert!(epoch >= 1 && Zxid::new(leader_info.zxid).counter() == 0);
    quorum
        .send(&QuorumPacket::with_data(PacketType::AckEpoch, 0, packet::int_payload(0)))
        .await
        .expect("ack epoch");

    // An empty learner gets the whole state.
    let snap = next(&mut quorum).await;
    assert_eq!(snap.kind, PacketType::Snap);
    let snapshot = transferred_snapshot(&mut quorum, snap.zxid).await;
    let before = snapshot.nodes.iter().find(|node| node.path == "/before").expect("/before");
    assert_eq!(before.data.as_deref(), Some(&b"in the snapshot"[..]));
    assert!(snapshot.nodes.iter().any(|node| node.path == "/zookeeper/quota"));

    let new_leader = next(&mut quorum).await;
    assert_eq!(new_leader.kind, PacketType::NewLeader);
    assert_eq!(Zxid::new(new_leader.zxid), Zxid::epoch_start(epoch));
    assert_eq!(new_leader.data.as_deref(), Some(text.as_bytes()), "membership text");
    quorum.send(&QuorumPacket::bare(PacketType::Ack, new_leader.zxid)).await.expect("ack");
    assert_eq!(next(&mut quorum).await.kind, PacketType::UpToDate);

    // A write on the leader reaches the observer as an INFORM of the txn.
    writer.create("/after", b"informed", 0).await.expect("create");
    let inform = next(&mut quorum).await;
    assert_eq!(inform.kind, PacketType::Inform);
    let txn = Txn::decode(inform.data.as_ref().expect("a txn")).expect("zkrs decodes it");
    let TxnBody::Create(create) = &txn.body else { panic!("a create: {txn:?}") };
    assert_eq!((create.path.as_str(), create.data.as_deref()), ("/after", Some(&b"informed"[..])));

    // The observer forwards its client's new session and write; the leader commits both.
    quorum.send(&Forwarded::create_session(SESSION, 30_000).packet()).await.expect("send");
    let session = Txn::decode(next(&mut quorum).await.data.as_ref().expect("a txn")).expect("txn");
    assert_eq!(session.session_id(), SESSION);
    assert!(
        matches!(session.body, TxnBody::CreateSession(ref created) if created.time_out == 30_000)
    );
    let mut body = BytesMut::new();
    CreateRequest {
        path: "/forwarded".into(),
        data: Some(Bytes::from_static(b"by zkrs")),
        acl: open_acl(),
        flags: 1,
    }
    .write(&mut body);
    quorum.send(&request(1, OpCode::Create, &body)).await.expect("send");
    let created = Txn::decode(next(&mut quorum).await.data.as_ref().expect("a txn")).expect("txn");
    assert_eq!((created.session_id(), created.header.cxid), (SESSION, 1));
    // ZooKeeper informs observers as it commits, a moment before it applies the txn.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let (data, stat) = loop {
        match writer.get_data("/forwarded", false).await {
            Ok(found) => break found,
            Err(code) if tokio::time::Instant::now() > deadline => panic!("not applied: {code:?}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    assert_eq!(data.as_deref(), Some(&b"by zkrs"[..]));
    assert_eq!(stat.ephemeral_owner, SESSION.raw(), "an ephemeral of the observer's session");

    // A client resumes the session here: ZooKeeper says it is alive; an unknown one is not.
    let unknown = SessionId::new(SESSION.raw() + 1);
    for (session_id, alive) in [(SESSION, true), (unknown, false)] {
        quorum.send(&sessions::revalidate(session_id, 30_000)).await.expect("send");
        let answer = next(&mut quorum).await;
        assert_eq!(answer.kind, PacketType::Revalidate);
        assert_eq!(sessions::read_revalidated(&answer).ok(), Some((session_id, alive)));
    }
}

/// The core's end of the quorum connection with the ZooKeeper member.
enum QuorumEnd {
    /// The core learns: it dials ZooKeeper's quorum port.
    Learner { side: LearnerSide, address: SocketAddr },
    /// The core leads: ZooKeeper dials its quorum port.
    Leader { side: LeaderSide, listener: TcpListener },
}

/// What the test does for the core, as a shell would: carries its votes on the
/// election connection with ZooKeeper and its other messages on the quorum connection,
/// through the translator of its end; reports appends durable at once; keeps what it
/// applies, the snapshots it is sent and the role it announces.
struct CoreShell {
    core: Zab,
    /// The ZooKeeper member the core talks to.
    zookeeper: ServerId,
    /// The membership text votes carry.
    membership: String,
    end: QuorumEnd,
    quorum: Option<Quorum>,
    election: Option<Framed<TcpStream, ElectionCodec>>,
    /// Where ZooKeeper dials the core's election port, when its id is the higher.
    election_listener: Option<TcpListener>,
    applied: Vec<Entry>,
    snapshots: Vec<Snapshot>,
    /// What the core's state is as ZooKeeper's snapshot, for a SNAP it leads with.
    state: Option<Snapshot>,
    /// Client requests a ZooKeeper learner forwarded to the core's shell.
    forwarded: Vec<Forwarded>,
    role: Role,
}

/// What woke the test's loop.
enum Event {
    Dialled(TcpStream),
    LearnerDialled(TcpStream),
    Vote(Bytes),
    Packet(QuorumPacket),
    Tick,
}

impl CoreShell {
    fn new(core: Zab, zookeeper: ServerId, end: QuorumEnd, membership: String) -> Self {
        CoreShell {
            core,
            zookeeper,
            membership,
            end,
            quorum: None,
            election: None,
            election_listener: None,
            applied: Vec::new(),
            snapshots: Vec::new(),
            state: None,
            forwarded: Vec::new(),
            role: Role::Looking,
        }
    }

    /// Steps the core with `input` and carries out everything that follows from it.
    async fn step(&mut self, input: Input) {
        let mut inputs = vec![input];
        while let Some(input) = inputs.pop() {
            for action in self.core.step(input) {
                match action {
                    Action::Send { message, .. } | Action::SendAfterPersist { message, .. } => {
                        self.send(message).await;
                    }
                    Action::Append(entries) => {
                        let zxid = entries.last().map_or(Zxid::ZERO, |entry| entry.zxid);
                        inputs.push(Input::Persisted { zxid });
                    }
                    Action::Apply(entries) => self.applied.extend(entries),
                    Action::Role(role) => self.role = role,
                    _ => {}
                }
            }
        }
    }

    async fn send(&mut self, message: Message) {
        if let Message::Notification(vote) = &message {
            // Without an election connection the vote is lost; the core sends it again.
            if let Some(election) = &mut self.election {
                let wire = WireNotification::new(vote, &self.membership);
                election.send(&wire).await.expect("send a vote");
            }
            return;
        }
        let items = match &mut self.end {
            QuorumEnd::Learner { side, address } => {
                if self.quorum.is_none() {
                    self.quorum = Some(dial_quorum(*address).await);
                }
                let mut packets = Vec::new();
                side.outgoing(&message, &mut packets).expect("a learner's packets");
                packets.into_iter().map(Outgoing::Packet).collect()
            }
            QuorumEnd::Leader { side, .. } => {
                let mut out = Vec::new();
                side.outgoing(message, &mut out).expect("a leader's packets");
                out
            }
        };
        // A leader's messages for a learner that has not connected go nowhere.
        let Some(quorum) = &mut self.quorum else { return };
        for item in items {
            match item {
                Outgoing::Packet(packet) => quorum.send(&packet).await.expect("send a packet"),
                // The snapshot follows its SNAP on the stream, as ZooKeeper's leader writes it.
                Outgoing::Snapshot(zxid) => {
                    let state = self.state.as_ref().expect("a state to send");
                    assert_eq!(Zxid::new(state.zxid), zxid, "the state the core snapshots");
                    let bytes = encode_transferred(state);
                    quorum.get_mut().write_all(&bytes).await.expect("send the snapshot");
                }
            }
        }
    }

    /// Runs the core until `done` holds: ZooKeeper's votes and packets in, ticks of
    /// 20 ms, the core's messages out.
    async fn run_until(&mut self, done: impl Fn(&CoreShell) -> bool) {
        let mut ticks = tokio::time::interval(Duration::from_millis(20));
        let deadline = tokio::time::Instant::now() + 3 * PATIENCE;
        while !done(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the core got no further: {:?}",
                self.role
            );
            let learners = match &self.end {
                QuorumEnd::Leader { listener, .. } if self.quorum.is_none() => Some(listener),
                _ => None,
            };
            let event = tokio::select! {
                dialled = accept(self.election_listener.as_ref()) => Event::Dialled(dialled),
                dialled = accept(learners) => Event::LearnerDialled(dialled),
                vote = next_of(&mut self.election) => Event::Vote(vote.expect("a notification frame")),
                packet = next_of(&mut self.quorum) => Event::Packet(packet.expect("a packet zkrs decodes")),
                _ = ticks.tick() => Event::Tick,
            };
            match event {
                Event::Dialled(stream) => self.election = Some(election_connection(stream).await),
                Event::LearnerDialled(stream) => {
                    self.quorum = Some(Framed::new(stream, PacketCodec::new(1 << 20)));
                }
                Event::Vote(payload) => {
                    let vote = election::decode(&payload)
                        .expect("a vote")
                        .notification()
                        .expect("meaningful");
                    let from = self.zookeeper;
                    self.step(Input::Message { from, message: Message::Notification(vote) }).await;
                }
                Event::Packet(packet) => self.take_packet(packet).await,
                Event::Tick => self.step(Input::Tick).await,
            }
        }
    }

    /// Takes ZooKeeper's packet to the core; a snapshot after SNAP is read off the
    /// stream first, as the shell does.
    async fn take_packet(&mut self, packet: QuorumPacket) {
        let messages = match &mut self.end {
            QuorumEnd::Learner { side, .. } => {
                if packet.kind == PacketType::Snap {
                    let quorum = self.quorum.as_mut().expect("the packet came on it");
                    self.snapshots.push(transferred_snapshot(quorum, packet.zxid).await);
                }
                let mut messages = Vec::new();
                side.incoming(packet, &mut messages).expect("a packet the translator takes");
                messages
            }
            QuorumEnd::Leader { side, .. } => {
                if packet.kind == PacketType::Request {
                    self.forwarded.push(Forwarded::read(&packet).expect("a forwarded request"));
                }
                side.incoming(packet).expect("a learner's packet").into_iter().collect()
            }
        };
        for message in messages {
            self.step(Input::Message { from: self.zookeeper, message }).await;
        }
    }

    /// Whether the core applied a create of `path`.
    fn applied_create(&self, path: &str) -> bool {
        self.applied.iter().any(|entry| {
            let txn = unseal(&entry.payload).and_then(|txn| Txn::decode(&txn).ok());
            matches!(txn.map(|txn| txn.body), Some(TxnBody::Create(create)) if create.path == path)
        })
    }
}

/// Reads `path` from the ZooKeeper at `address` as soon as it serves and has it, with a
/// session of its own (the core forwards no requests), and then dumps its whole tree.
fn read_once_there(
    address: SocketAddr,
    path: &'static str,
) -> tokio::task::JoinHandle<(Option<Bytes>, Stat, Vec<String>)> {
    tokio::spawn(async move {
        loop {
            let handshake = Handshake { timeout_ms: 5000, ..Handshake::default() };
            if let Ok(mut client) = Client::handshake(address, handshake).await {
                if let Ok((data, stat)) = client.get_data(path, false).await {
                    return (data, stat, client.dump("/").await);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

/// An election connection to the ZooKeeper member at `address`, dialled by the core
/// `id`, whose election port is `port`: the higher id dials, as ZooKeeper drops a
/// connection from a lower one and dials back.
async fn dial_election(
    address: SocketAddr,
    id: ServerId,
    port: u16,
) -> Framed<TcpStream, ElectionCodec> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut stream = loop {
        match TcpStream::connect(address).await {
            Ok(stream) => break stream,
            Err(err) if tokio::time::Instant::now() > deadline => panic!("election port: {err}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let mut hello = BytesMut::new();
    InitialMessage { server_id: id, addresses: vec![format!("127.0.0.1:{port}")] }
        .encode(&mut hello);
    stream.write_all(&hello).await.expect("send the initial message");
    Framed::new(stream, ElectionCodec)
}

/// A connection to a ZooKeeper leader's quorum port, which it opens a moment after it
/// has won its election.
async fn dial_quorum(address: SocketAddr) -> Quorum {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match TcpStream::connect(address).await {
            Ok(stream) => return Framed::new(stream, PacketCodec::new(1 << 20)),
            Err(err) if tokio::time::Instant::now() > deadline => panic!("quorum port: {err}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The next connection `listener` takes, or never.
async fn accept(listener: Option<&TcpListener>) -> TcpStream {
    match listener {
        Some(listener) => listener.accept().await.expect("accept").0,
        None => std::future::pending().await,
    }
}

/// The next item of `stream`, or never when there is none; a closed stream fails the test.
async fn next_of<S, T, E>(stream: &mut Option<S>) -> Result<T, E>
where
    S: futures_util::Stream<Item = Result<T, E>> + Unpin,
{
    match stream {
        Some(stream) => stream.next().await.expect("ZooKeeper kept the connection open"),
        None => std::future::pending().await,
    }
}

/// An election connection ZooKeeper dialled, once its initial message is read.
async fn election_connection(mut stream: TcpStream) -> Framed<TcpStream, ElectionCodec> {
    let mut buf = BytesMut::new();
    loop {
        if let Some((hello, len)) = InitialMessage::parse(&buf).expect("an initial message") {
            assert_eq!(hello.server_id, 2, "the ZooKeeper member dials");
            let mut framed = Framed::new(stream, ElectionCodec);
            framed.read_buffer_mut().extend_from_slice(&buf[len..]);
            return framed;
        }
        assert!(stream.read_buf(&mut buf).await.expect("read") > 0, "closed");
    }
}

/// The replication core `id` of the ensemble with these voters and observers, counting
/// time in the test loop's 20 ms ticks.
fn config(id: ServerId, voters: &[ServerId], observers: &[ServerId]) -> ZabConfig {
    ZabConfig {
        id,
        voters: voters.iter().copied().collect(),
        observers: observers.iter().copied().collect(),
        groups: None,
        init_limit_ticks: 250,
        sync_limit_ticks: 250,
        finalize_ticks: 10,
        window_entries: 100,
    }
}

/// A fresh core, as [`config`] describes it, with nothing recovered.
fn core(id: ServerId, voters: &[ServerId], observers: &[ServerId]) -> Zab {
    Zab::new(config(id, voters, observers), Restored::default()).0
}

/// The ports of a two-voter ensemble, members 1 and 2, and its zoo.cfg lines.
struct TwoVoters {
    quorum: [u16; 2],
    election: [u16; 2],
    servers: String,
}

impl TwoVoters {
    fn new() -> TwoVoters {
        let (quorum, election) = ([free_port(), free_port()], [free_port(), free_port()]);
        let servers = format!(
            "initLimit=10\nsyncLimit=5\n\
             server.1=127.0.0.1:{}:{}:participant\nserver.2=127.0.0.1:{}:{}:participant\n",
            quorum[0], election[0], quorum[1], election[1]
        );
        TwoVoters { quorum, election, servers }
    }
}

#[tokio::test]
async fn zkrs_replication_core_observes_a_zookeeper_leader_through_the_translator() {
    let (zookeeper, ports) = leader().await;
    let mut writer = Client::connect(zookeeper.address).await;
    writer.create("/before", b"in the snapshot", 0).await.expect("create");

    // The core, an observer of an ensemble whose only voter is ZooKeeper, learns who
    // leads from ZooKeeper's notification.
    let core = core(OBSERVER, &[1], &[OBSERVER]);
    let text = membership_text(&zookeeper);
    let vote = exchange_votes(&ports, &text).await.notification().expect("a vote");
    let end =
        QuorumEnd::Learner { side: LearnerSide::new(OBSERVER, 0), address: local(ports.quorum) };
    let mut shell = CoreShell::new(core, 1, end, text);
    shell.step(Input::Message { from: 1, message: Message::Notification(vote) }).await;
    // OBSERVERINFO goes out; the core syncs from the snapshot ZooKeeper streams.
    shell.run_until(|shell| shell.role != Role::Looking).await;
    assert!(matches!(shell.role, Role::Observing { leader: 1, .. }), "{:?}", shell.role);
    let snapshot = shell.snapshots.first().expect("an empty observer gets a snapshot");
    assert!(snapshot.nodes.iter().any(|node| node.path == "/before"));

    // A write on ZooKeeper reaches the core as an INFORM, which it applies.
    writer.create("/after", b"informed", 0).await.expect("create");
    shell.run_until(|shell| shell.applied_create("/after")).await;
    // The core answered ZooKeeper's pings meanwhile: its observer is still there.
    let observers = four_letter(zookeeper.address, "mntr");
    assert!(observers.contains("zk_synced_observers\t1"), "{observers}");
}

#[tokio::test]
async fn zkrs_replication_core_votes_follows_and_acknowledges_in_a_zookeeper_ensemble() {
    // Two voters: zkrs's core as 1 and ZooKeeper as 2. With equal (empty) histories the
    // higher id leads, and ZooKeeper needs the core's vote to lead and its ACKs to
    // commit anything.
    let ensemble = TwoVoters::new();
    let listener = TcpListener::bind(local(ensemble.election[0])).await.expect("election port");
    let zookeeper = ReferenceZooKeeper::spawn_member(2, &ensemble.servers, &[]);
    let end =
        QuorumEnd::Learner { side: LearnerSide::new(1, 0), address: local(ensemble.quorum[1]) };
    let mut shell = CoreShell::new(core(1, &[1, 2], &[]), 2, end, membership_text(&zookeeper));
    shell.election_listener = Some(listener);
    shell.run_until(|shell| shell.role != Role::Looking).await;
    assert!(matches!(shell.role, Role::Following { leader: 2, .. }), "{:?}", shell.role);

    // ZooKeeper serves now, and commits a write only with the core's acknowledgement.
    let address = zookeeper.address;
    let write = tokio::spawn(async move {
        let mut client = Client::connect(address).await;
        client.create("/voted", b"acked by zkrs", 0).await
    });
    shell.run_until(|shell| shell.applied_create("/voted")).await;
    let created = write.await.expect("the writer finished");
    assert_eq!(created.as_deref(), Ok("/voted"));
    let stat = four_letter(zookeeper.address, "stat");
    assert!(stat.contains("Mode: leader"), "{stat}");
}

/// Sends a four-letter word and returns the answer.
fn four_letter(address: SocketAddr, word: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream.write_all(word.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    answer
}

#[tokio::test]
async fn zookeeper_follows_zkrs_replication_core_and_applies_its_txns() {
    // Two voters: ZooKeeper as 1 and zkrs's core as 2. With equal (empty) histories the
    // higher id leads: ZooKeeper votes for the core, follows it, and applies its txns.
    let ensemble = TwoVoters::new();
    let learners = TcpListener::bind(local(ensemble.quorum[1])).await.expect("quorum port");
    // The core forwards no client's requests: the reader's session is local to ZooKeeper.
    let servers = format!("{}localSessionsEnabled=true\n", ensemble.servers);
    let zookeeper = ReferenceZooKeeper::spawn_member(1, &servers, &[]);
    let text = membership_text(&zookeeper);
    let end = QuorumEnd::Leader { side: LeaderSide::new(&text), listener: learners };
    let mut shell = CoreShell::new(core(2, &[1, 2], &[]), 1, end, text);
    shell.election =
        Some(dial_election(local(ensemble.election[0]), 2, ensemble.election[1]).await);
    shell.run_until(|shell| shell.role != Role::Looking).await;
    let Role::Leading { epoch, .. } = shell.role else { panic!("{:?}", shell.role) };

    // A txn the core proposes, ZooKeeper acknowledges, and once the core commits it,
    // ZooKeeper's clients read it.
    // Both histories were empty: the epoch's first txn.
    let zxid = Zxid::epoch_start(epoch) + 1;
    let txn = Txn {
        header: TxnHeader {
            client_id: 0,
            cxid: 0,
            zxid: zxid.raw(),
            time: 1_700_000_000_000,
            op_type: OpCode::Create.as_i32(),
        },
        body: TxnBody::Create(CreateTxn {
            path: "/from-zkrs".into(),
            data: Some(Bytes::from_static(b"led by zkrs")),
            acl: open_acl(),
            ephemeral: false,
            parent_cversion: -1,
        }),
    };
    shell.step(Input::Propose(Entry { zxid, payload: seal(&txn.encode()) })).await;
    let address = zookeeper.address;
    let reader = read_once_there(address, "/from-zkrs");
    shell.run_until(|_| reader.is_finished()).await;
    let (data, stat, _) = reader.await.expect("the reader finished");
    let mzxid = stat.mzxid;
    assert_eq!(data.as_deref(), Some(&b"led by zkrs"[..]));
    assert_eq!(Zxid::new(mzxid), zxid, "the core's txn, under the core's zxid");
    assert!(shell.applied.iter().any(|entry| entry.zxid == zxid), "committed on the core too");

    // A write: ZooKeeper forwards it to the core's shell as the client framed it, with the
    // connection's identities (the test's shell reads it and never answers).
    let upgrade = tokio::spawn(async move {
        let mut client = Client::connect(address).await;
        client.create("/ephemeral", b"", 1).await
    });
    shell.run_until(|shell| !shell.forwarded.is_empty()).await;
    upgrade.abort();
    let forwarded = &shell.forwarded[0];
    let mut frame = &forwarded.frame[..];
    assert_eq!((frame.get_i32(), frame.get_i32()), (1, OpCode::Create.as_i32()), "xid, op");
    let request = CreateRequest::read(&mut jute::Reader::new(&forwarded.frame.slice(8..)))
        .expect("a create request");
    assert_eq!((request.path.as_str(), request.flags), ("/ephemeral", 1));
    assert_eq!(forwarded.auth, [Id { scheme: "ip".into(), id: "127.0.0.1".into() }]);
    let stat = four_letter(zookeeper.address, "stat");
    assert!(stat.contains("Mode: follower"), "{stat}");
}

#[tokio::test]
async fn zookeeper_takes_a_snapshot_from_zkrs_replication_core_and_serves_it() {
    // The core (2) recovered a state at 5.3 whose log has nothing before it; ZooKeeper (1)
    // is empty, so only a snapshot brings it up to date. The state is one ZooKeeper 3.8
    // wrote (the import fixture), sent as a ZooKeeper leader streams it after SNAP.
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/zookeeper-3.8/version-2");
    let mut state =
        read_snapshot(&std::path::Path::new(fixture).join("snapshot.10")).expect("fixture");
    let at = Zxid::epoch_start(5) + 3;
    state.zxid = at.raw();
    let ensemble = TwoVoters::new();
    let learners = TcpListener::bind(local(ensemble.quorum[1])).await.expect("quorum port");
    let servers = format!("{}localSessionsEnabled=true\n", ensemble.servers);
    let zookeeper = ReferenceZooKeeper::spawn_member(1, &servers, &[]);
    let text = membership_text(&zookeeper);
    let restored = Restored {
        epochs: Epochs { accepted: 5, current: 5 },
        history: History::new(at, vec![at], Vec::new()),
        applied: at,
    };
    let (core, _) = Zab::new(config(2, &[1, 2], &[]), restored);
    let end = QuorumEnd::Leader { side: LeaderSide::new(&text), listener: learners };
    let mut shell = CoreShell::new(core, 1, end, text);
    shell.state = Some(state.clone());
    shell.election =
        Some(dial_election(local(ensemble.election[0]), 2, ensemble.election[1]).await);
    shell.run_until(|shell| shell.role != Role::Looking).await;
    assert!(matches!(shell.role, Role::Leading { .. }), "{:?}", shell.role);

    // ZooKeeper serves the state it was sent.
    let reader = read_once_there(zookeeper.address, "/app");
    shell.run_until(|_| reader.is_finished()).await;
    let (data, _, tree) = reader.await.expect("the reader finished");
    let app = state.nodes.iter().find(|node| node.path == "/app").expect("in the fixture");
    assert_eq!(data, app.data);
    // Every node, with its data (ZooKeeper writes its own membership into /zookeeper).
    for node in &state.nodes {
        let line = if node.path.starts_with("/zookeeper") {
            format!("{} ", node.path)
        } else {
            format!("{} {:?} ", node.path, node.data)
        };
        assert!(tree.iter().any(|dumped| dumped.starts_with(&line)), "{line}…: {tree:#?}");
    }
}
