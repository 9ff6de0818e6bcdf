//! A load generator for ZooKeeper-protocol servers over TLS, for comparing zkrs with
//! Apache ZooKeeper on the same secure port settings (`scripts/bench-tls` runs both).
//! zkbench's client is built without TLS, so this small client speaks the protocol
//! itself, with zkbench's workloads and defaults: `get` and `set` of 1 KiB nodes with
//! `--inflight` requests pipelined on each of `--sessions` sessions, and `connect`
//! (a TLS handshake, a session, closeSession) in a loop per session. It prints one JSON
//! line: operations per second and the p99 latency in milliseconds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use clap::Parser;
use jute::records::{
    ConnectRequest, ConnectResponse, CreateRequest, GetDataRequest, ReplyHeader, RequestHeader,
    SetDataRequest,
};
use jute::{OpCode, Reader, Record};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// What to run.
#[derive(Parser, Debug, Clone)]
struct Args {
    /// The server's TLS port.
    #[arg(long)]
    host: SocketAddr,
    /// The CA the server's certificate chains to (PEM).
    #[arg(long)]
    ca: String,
    /// The client certificate (PEM).
    #[arg(long)]
    cert: String,
    /// The client key (PEM).
    #[arg(long)]
    key: String,
    /// get, set or connect.
    #[arg(long)]
    workload: String,
    /// Sessions (connections).
    #[arg(long, default_value_t = 16)]
    sessions: usize,
    /// Requests in flight per session (get, set).
    #[arg(long, default_value_t = 16)]
    inflight: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds run before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// The TLS version offered: TLSv1.2 (what ZooKeeper 3.8 serves and its Java client
    /// offers) or TLSv1.3.
    #[arg(long, default_value = "TLSv1.2")]
    protocol: String,
    /// Never resume a TLS session: every connection a full handshake, as kazoo makes.
    #[arg(long)]
    full_handshakes: bool,
    /// Bytes of each node's data.
    #[arg(long, default_value_t = 1024)]
    value_size: usize,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One session over TLS.
struct Session {
    stream: TlsStream<TcpStream>,
    buffer: BytesMut,
    next_xid: i32,
}

impl Session {
    async fn open(connector: &TlsConnector, host: SocketAddr) -> Result<Session, Error> {
        let tcp = TcpStream::connect(host).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::IpAddress(host.ip().into());
        let stream = connector.connect(name, tcp).await?;
        let mut session = Session { stream, buffer: BytesMut::new(), next_xid: 1 };
        let mut body = BytesMut::new();
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: 30_000,
            session_id: 0,
            passwd: Bytes::from_static(&[0; 16]),
        }
        .write(&mut body);
        false.write(&mut body);
        session.write_frame(&body).await?;
        let reply = session.read_frame().await?;
        let response = ConnectResponse::read(&mut Reader::new(&reply))?;
        if response.time_out <= 0 {
            return Err("the server refused the session".into());
        }
        Ok(session)
    }

    async fn write_frame(&mut self, body: &[u8]) -> Result<(), Error> {
        let mut framed = Vec::with_capacity(body.len() + 4);
        framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
        framed.extend_from_slice(body);
        self.stream.write_all(&framed).await?;
        Ok(())
    }

    /// Sends a request; `None` for one without a body (closeSession).
    async fn send<R: Record>(&mut self, op: OpCode, request: Option<&R>) -> Result<(), Error> {
        let mut body = BytesMut::new();
        RequestHeader { xid: self.next_xid, op_type: op.as_i32() }.write(&mut body);
        if let Some(request) = request {
            request.write(&mut body);
        }
        self.next_xid += 1;
        self.write_frame(&body).await
    }

    async fn read_frame(&mut self) -> Result<Bytes, Error> {
        loop {
            if self.buffer.len() >= 4 {
                let len = u32::from_be_bytes([
                    self.buffer[0],
                    self.buffer[1],
                    self.buffer[2],
                    self.buffer[3],
                ]) as usize;
                if self.buffer.len() >= 4 + len {
                    let frame = self.buffer.split_to(4 + len).split_off(4);
                    return Ok(frame.freeze());
                }
            }
            if self.stream.read_buf(&mut self.buffer).await? == 0 {
                return Err("the server closed the connection".into());
            }
        }
    }

    /// The next reply's error code (0 for success).
    async fn reply(&mut self) -> Result<i32, Error> {
        let frame = self.read_frame().await?;
        Ok(ReplyHeader::read(&mut Reader::new(&frame))?.err)
    }
}

fn connector(args: &Args) -> Result<TlsConnector, Error> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(&args.ca)? {
        roots.add(certificate?)?;
    }
    let chain = CertificateDer::pem_file_iter(&args.cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&args.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[match args.protocol.as_str() {
            "TLSv1.3" => &rustls::version::TLS13,
            _ => &rustls::version::TLS12,
        }])?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    if args.full_handshakes {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Ok(TlsConnector::from(Arc::new(config)))
}

/// When the warm-up ends and the measured window closes.
#[derive(Clone, Copy)]
struct Window {
    from: Instant,
    end: Instant,
}

/// Pipelined get or set on one session's node until the window closes: latencies of
/// requests sent in the window, in microseconds.
async fn pipelined(
    args: &Args,
    connector: &TlsConnector,
    path: String,
    window: Window,
) -> Result<Vec<u32>, Error> {
    let mut session = Session::open(connector, args.host).await?;
    let data = Bytes::from(vec![b'x'; args.value_size]);
    let mut sent = std::collections::VecDeque::new();
    let mut latencies = Vec::new();
    loop {
        while sent.len() < args.inflight && Instant::now() < window.end {
            if args.workload == "get" {
                let request = GetDataRequest { path: path.clone(), watch: false };
                session.send(OpCode::GetData, Some(&request)).await?;
            } else {
                let request =
                    SetDataRequest { path: path.clone(), data: Some(data.clone()), version: -1 };
                session.send(OpCode::SetData, Some(&request)).await?;
            }
            sent.push_back(Instant::now());
        }
        let Some(started) = sent.pop_front() else { break };
        let err = session.reply().await?;
        if err != 0 {
            return Err(format!("{} failed with {err}", args.workload).into());
        }
        if started >= window.from {
            latencies.push(started.elapsed().as_micros() as u32);
        }
    }
    Ok(latencies)
}

/// A TLS handshake, a session and its close, again and again until the window closes.
async fn connects(
    args: &Args,
    connector: &TlsConnector,
    window: Window,
) -> Result<Vec<u32>, Error> {
    let mut latencies = Vec::new();
    while Instant::now() < window.end {
        let started = Instant::now();
        let mut session = Session::open(connector, args.host).await?;
        session.send::<GetDataRequest>(OpCode::CloseSession, None).await?;
        session.reply().await?;
        if started >= window.from {
            latencies.push(started.elapsed().as_micros() as u32);
        }
    }
    Ok(latencies)
}

async fn setup(args: &Args, connector: &TlsConnector) -> Result<(), Error> {
    let mut session = Session::open(connector, args.host).await?;
    let data = Bytes::from(vec![b'x'; args.value_size]);
    let paths = std::iter::once("/tlsbench".to_owned())
        .chain((0..args.sessions).map(|index| format!("/tlsbench/n{index}")));
    for path in paths {
        let request = CreateRequest { path, data: Some(data.clone()), acl: open_acl(), flags: 0 };
        session.send(OpCode::Create, Some(&request)).await?;
        match session.reply().await? {
            0 | -110 => {}
            err => return Err(format!("setup create failed with {err}").into()),
        }
    }
    Ok(())
}

fn open_acl() -> Vec<jute::records::Acl> {
    let id = jute::records::Id { scheme: "world".into(), id: "anyone".into() };
    vec![jute::records::Acl { perms: 31, id }]
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = Args::parse();
    let connector = connector(&args)?;
    if args.workload != "connect" {
        setup(&args, &connector).await?;
    }
    let from = Instant::now() + Duration::from_secs_f64(args.warmup);
    let window = Window { from, end: from + Duration::from_secs_f64(args.duration) };
    let mut tasks = Vec::new();
    for index in 0..args.sessions {
        let (args, connector) = (args.clone(), connector.clone());
        tasks.push(tokio::spawn(async move {
            match args.workload.as_str() {
                "connect" => connects(&args, &connector, window).await,
                "get" | "set" => {
                    pipelined(&args, &connector, format!("/tlsbench/n{index}"), window).await
                }
                other => Err(format!("unknown workload {other}").into()),
            }
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    latencies.sort_unstable();
    let p99_ms = latencies
        .get(latencies.len().saturating_sub(1) * 99 / 100)
        .map_or(0.0, |us| f64::from(*us) / 1000.0);
    let ops = latencies.len() as f64 / args.duration;
    println!(
        "{{\"workload\":\"{}\",\"ops_per_sec\":{ops:.0},\"p99_ms\":{p99_ms:.2}}}",
        args.workload
    );
    Ok(())
}
