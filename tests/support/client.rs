//! A minimal ZooKeeper client for tests: it speaks the wire protocol through `jute`, keeps
//! every frame the server sends in arrival order, and lets a test send raw bytes too.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use jute::records::*;
use jute::{Code, OpCode, Reader, Record};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for any one frame before failing.
pub const FRAME_WAIT: Duration = Duration::from_secs(10);

/// One frame from the server after the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The reply header.
    pub header: ReplyHeader,
    /// Everything after the header.
    pub body: Bytes,
}

impl Incoming {
    /// Decodes the body as `T`.
    pub fn decode<T: Record>(&self) -> T {
        T::read(&mut Reader::new(&self.body)).expect("reply body decodes")
    }

    /// Whether this is a watch notification.
    pub fn is_notification(&self) -> bool {
        self.header.xid == -1
    }

    /// The notification carried, if any.
    pub fn event(&self) -> Option<WatcherEvent> {
        self.is_notification().then(|| self.decode())
    }
}

/// A connected session.
pub struct Client {
    stream: TcpStream,
    buffer: BytesMut,
    /// Frames received but not yet taken.
    pending: VecDeque<Incoming>,
    /// Session id from the handshake.
    pub session_id: i64,
    /// Password from the handshake.
    pub password: Bytes,
    /// Negotiated timeout.
    pub timeout_ms: i32,
    next_xid: i32,
}

/// Reads one length-prefixed frame.
pub async fn read_frame(stream: &mut TcpStream, buffer: &mut BytesMut) -> std::io::Result<Bytes> {
    loop {
        if buffer.len() >= 4 {
            let len = usize::try_from(i32::from_be_bytes(buffer[..4].try_into().expect("4 bytes")))
                .expect("length");
            if buffer.len() >= 4 + len {
                buffer.advance(4);
                return Ok(buffer.split_to(len).freeze());
            }
        }
        if stream.read_buf(buffer).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
    }
}

/// Frames a body with its 4-byte length.
pub fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    out.put_i32(i32::try_from(body.len()).expect("small"));
    out.extend_from_slice(body);
    out
}

/// What to send in the handshake.
#[derive(Debug, Clone, Default)]
pub struct Handshake {
    /// Requested timeout.
    pub timeout_ms: i32,
    /// 0 for a new session.
    pub session_id: i64,
    /// The session's password when resuming.
    pub password: Bytes,
    /// Last zxid the client saw.
    pub last_zxid_seen: i64,
    /// Send the trailing readOnly byte.
    pub read_only_flag: bool,
}

impl Client {
    /// Opens a new session with a 10 s timeout.
    pub async fn connect(address: SocketAddr) -> Client {
        Client::try_connect(address).await.expect("handshake")
    }

    /// Opens a new session with a 10 s timeout, reporting a refused or unanswered
    /// connection instead of panicking.
    pub async fn try_connect(address: SocketAddr) -> std::io::Result<Client> {
        Client::handshake(
            address,
            Handshake { timeout_ms: 10_000, read_only_flag: true, ..Handshake::default() },
        )
        .await
    }

    /// Connects with an explicit handshake. Returns the response even when the server
    /// refused the session (time_out 0).
    pub async fn handshake(address: SocketAddr, handshake: Handshake) -> std::io::Result<Client> {
        let mut stream = TcpStream::connect(address).await?;
        let mut body = BytesMut::new();
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: handshake.last_zxid_seen,
            time_out: handshake.timeout_ms,
            session_id: handshake.session_id,
            passwd: if handshake.password.is_empty() {
                Bytes::from_static(&[0; 16])
            } else {
                handshake.password
            },
        }
        .write(&mut body);
        if handshake.read_only_flag {
            false.write(&mut body);
        }
        stream.write_all(&framed(&body)).await?;
        let mut buffer = BytesMut::new();
        let reply =
            tokio::time::timeout(FRAME_WAIT, read_frame(&mut stream, &mut buffer)).await.map_err(
                |_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no ConnectResponse"),
            )??;
        let response = ConnectResponse::read(&mut Reader::new(&reply)).expect("ConnectResponse");
        Ok(Client {
            stream,
            buffer,
            pending: VecDeque::new(),
            session_id: response.session_id,
            password: response.passwd,
            timeout_ms: response.time_out,
            next_xid: 1,
        })
    }

    /// The connection, for a test that reads and writes it on its own (replies still
    /// waiting in this client's buffer are lost).
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    /// Sends raw bytes.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
    }

    /// Sends a request and returns its xid without waiting for the reply.
    pub async fn send(&mut self, op: OpCode, body: &(dyn RecordRef + Sync)) -> i32 {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.send_with_xid(xid, op, body).await;
        xid
    }

    /// Sends a request, reporting a broken connection instead of panicking.
    pub async fn try_send(
        &mut self,
        op: OpCode,
        body: &(dyn RecordRef + Sync),
    ) -> std::io::Result<i32> {
        let xid = self.next_xid;
        self.next_xid += 1;
        let mut out = BytesMut::new();
        RequestHeader { xid, op_type: op.as_i32() }.write(&mut out);
        body.write_to(&mut out);
        self.stream.write_all(&framed(&out)).await?;
        Ok(xid)
    }

    /// The reply to `xid`, or `None` if the connection ends or goes quiet first.
    pub async fn try_reply(&mut self, xid: i32) -> Option<Incoming> {
        loop {
            let frame = self.next_frame().await.ok()?;
            if frame.header.xid == xid {
                return Some(frame);
            }
        }
    }

    /// Sends a request and waits up to `wait` for its reply, keeping notifications that
    /// arrive first for [`Client::try_next_event`]; `None` if the connection breaks or
    /// the reply does not come in time (the request may or may not have been carried
    /// out).
    pub async fn try_call(
        &mut self,
        op: OpCode,
        body: &(dyn RecordRef + Sync),
        wait: Duration,
    ) -> Option<Incoming> {
        let xid = self.try_send(op, body).await.ok()?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let incoming = self.frame_before(deadline).await?;
            if incoming.header.xid == xid {
                return Some(incoming);
            }
            if incoming.is_notification() {
                self.pending.push_back(incoming);
            }
        }
    }

    /// The next watch notification, if one comes within `wait` and the connection holds.
    pub async fn try_next_event(&mut self, wait: Duration) -> Option<WatcherEvent> {
        if let Some(index) = self.pending.iter().position(Incoming::is_notification) {
            return self.pending.remove(index).and_then(|frame| frame.event());
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(event) = self.frame_before(deadline).await?.event() {
                return Some(event);
            }
        }
    }

    /// The next frame, if it comes before `deadline` and the connection holds.
    async fn frame_before(&mut self, deadline: tokio::time::Instant) -> Option<Incoming> {
        let frame =
            tokio::time::timeout_at(deadline, read_frame(&mut self.stream, &mut self.buffer))
                .await
                .ok()?
                .ok()?;
        let mut reader = Reader::new(&frame);
        let header = ReplyHeader::read(&mut reader).ok()?;
        Some(Incoming { header, body: reader.rest() })
    }

    /// Every node under `root` with its data and stat, one line each, sorted; fetched
    /// with pipelined requests.
    pub async fn dump(&mut self, root: &str) -> Vec<String> {
        let mut lines = Vec::new();
        let mut level = vec![root.to_owned()];
        while !level.is_empty() {
            let mut xids = Vec::new();
            for path in &level {
                let get = GetDataRequest { path: path.clone(), watch: false };
                xids.push(self.send(OpCode::GetData, &get).await);
                let children = GetChildrenRequest { path: path.clone(), watch: false };
                xids.push(self.send(OpCode::GetChildren, &children).await);
            }
            let mut next_level = Vec::new();
            for (index, path) in level.iter().enumerate() {
                let data = self.reply(xids[2 * index]).await.decode::<GetDataResponse>();
                let mut children =
                    self.reply(xids[2 * index + 1]).await.decode::<GetChildrenResponse>().children;
                children.sort();
                lines.push(format!("{path} {:?} {:?}", data.data, data.stat));
                next_level.extend(
                    children.iter().map(|child| format!("{}/{child}", path.trim_end_matches('/'))),
                );
            }
            level = next_level;
        }
        lines.sort();
        lines
    }

    /// Sends a request with a chosen xid.
    pub async fn send_with_xid(&mut self, xid: i32, op: OpCode, body: &(dyn RecordRef + Sync)) {
        let mut out = BytesMut::new();
        RequestHeader { xid, op_type: op.as_i32() }.write(&mut out);
        body.write_to(&mut out);
        self.send_raw(&framed(&out)).await;
    }

    /// The next frame from the server, whatever it is.
    pub async fn next_frame(&mut self) -> std::io::Result<Incoming> {
        if let Some(frame) = self.pending.pop_front() {
            return Ok(frame);
        }
        let bytes =
            tokio::time::timeout(FRAME_WAIT, read_frame(&mut self.stream, &mut self.buffer))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no frame"))??;
        let mut reader = Reader::new(&bytes);
        let header = ReplyHeader::read(&mut reader).expect("reply header");
        Ok(Incoming { header, body: reader.rest() })
    }

    /// Waits for the reply to `xid`, keeping notifications that arrive first for
    /// [`Client::next_event`].
    pub async fn reply(&mut self, xid: i32) -> Incoming {
        let mut skipped = VecDeque::new();
        loop {
            let frame = self.next_frame().await.expect("reply");
            if frame.header.xid == xid {
                skipped.extend(self.pending.drain(..));
                self.pending = skipped;
                return frame;
            }
            skipped.push_back(frame);
        }
    }

    /// Sends a request and waits for its reply.
    pub async fn call(&mut self, op: OpCode, body: &(dyn RecordRef + Sync)) -> Incoming {
        let xid = self.send(op, body).await;
        self.reply(xid).await
    }

    /// The next watch notification.
    pub async fn next_event(&mut self) -> WatcherEvent {
        if let Some(index) = self.pending.iter().position(Incoming::is_notification) {
            return self
                .pending
                .remove(index)
                .and_then(|frame| frame.event())
                .expect("notification");
        }
        loop {
            let frame = self.next_frame().await.expect("notification");
            if let Some(event) = frame.event() {
                return event;
            }
            self.pending.push_back(frame);
        }
    }

    /// Whether the server closes the connection within [`FRAME_WAIT`], draining frames.
    pub async fn closed_by_server(&mut self) -> bool {
        loop {
            match self.next_frame().await {
                Ok(_) => continue,
                Err(err) => return err.kind() != std::io::ErrorKind::TimedOut,
            }
        }
    }

    /// create; returns the created path or the error code.
    pub async fn create(&mut self, path: &str, data: &[u8], flags: i32) -> Result<String, Code> {
        let request = CreateRequest {
            path: path.into(),
            data: Some(Bytes::copy_from_slice(data)),
            acl: open_acl(),
            flags,
        };
        let reply = self.call(OpCode::Create, &request).await;
        result(&reply).map(|()| reply.decode::<CreateResponse>().path)
    }

    /// getData; returns data and stat.
    pub async fn get_data(
        &mut self,
        path: &str,
        watch: bool,
    ) -> Result<(Option<Bytes>, Stat), Code> {
        let reply = self.call(OpCode::GetData, &GetDataRequest { path: path.into(), watch }).await;
        result(&reply).map(|()| {
            let response: GetDataResponse = reply.decode();
            (response.data, response.stat)
        })
    }

    /// setData; returns the new stat.
    pub async fn set_data(&mut self, path: &str, data: &[u8], version: i32) -> Result<Stat, Code> {
        let request =
            SetDataRequest { path: path.into(), data: Some(Bytes::copy_from_slice(data)), version };
        let reply = self.call(OpCode::SetData, &request).await;
        result(&reply).map(|()| reply.decode::<SetDataResponse>().stat)
    }

    /// delete.
    pub async fn delete(&mut self, path: &str, version: i32) -> Result<(), Code> {
        let reply = self.call(OpCode::Delete, &DeleteRequest { path: path.into(), version }).await;
        result(&reply)
    }

    /// exists.
    pub async fn exists(&mut self, path: &str, watch: bool) -> Result<Stat, Code> {
        let reply = self.call(OpCode::Exists, &ExistsRequest { path: path.into(), watch }).await;
        result(&reply).map(|()| reply.decode::<ExistsResponse>().stat)
    }

    /// getChildren2, children sorted.
    pub async fn children(&mut self, path: &str, watch: bool) -> Result<(Vec<String>, Stat), Code> {
        let reply = self
            .call(OpCode::GetChildren2, &GetChildren2Request { path: path.into(), watch })
            .await;
        result(&reply).map(|()| {
            let mut response: GetChildren2Response = reply.decode();
            response.children.sort();
            (response.children, response.stat)
        })
    }

    /// closeSession, waiting for its reply.
    pub async fn close(mut self) {
        let reply = self.call(OpCode::CloseSession, &Empty).await;
        assert_eq!(reply.header.err, 0);
    }
}

/// `world:anyone:cdrwa`.
pub fn open_acl() -> Vec<Acl> {
    vec![Acl { perms: 31, id: Id { scheme: "world".into(), id: "anyone".into() } }]
}

/// `Ok` or the reply's error code.
pub fn result(reply: &Incoming) -> Result<(), Code> {
    match reply.header.err {
        0 => Ok(()),
        err => Err(Code::from_i32(err).unwrap_or(Code::SystemError)),
    }
}

pub use jute::{Empty, RecordRef};
