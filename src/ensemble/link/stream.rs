//! A connection between members: plain TCP, or TLS over it (`sslQuorum`), both halves
//! of which the election and quorum links read and write without knowing which. A
//! plain connection splits into tokio's owned halves, so it costs nothing over a bare
//! `TcpStream`. [`PeerSecurity`] dials and accepts members as the configuration says,
//! checking their certificates' names ([`crate::tls::peers`]).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};

use crate::config::tls::QuorumTls;
use crate::server::listener::{opening, Opening};
use crate::tls::peers::verify_names;
use crate::tls::stream::{delegate_read, delegate_write, Transport};
use crate::tls::ServerTls;

/// How this member secures its connections to the others.
#[derive(Debug, Clone)]
pub enum PeerSecurity {
    /// Plain TCP both ways (neither `sslQuorum` nor `portUnification`).
    Plain,
    /// TLS, as the settings say.
    Tls(Arc<ServerTls>, QuorumTls),
}

/// Why a member's connection could not be secured.
fn refused(reason: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, reason.into())
}

/// Whether a dial failed for TLS's sake (a handshake or a certificate refused), which an
/// operator must hear of, rather than for want of a member to answer.
pub fn is_refusal(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::PermissionDenied | io::ErrorKind::InvalidData)
}

impl PeerSecurity {
    /// Dials the member at `address`, which its `server.N` line names `host`: over TLS
    /// under `sslQuorum`, its certificate checked against both under
    /// `ssl.quorum.hostnameVerification`.
    ///
    /// # Errors
    /// When the member cannot be reached, or its handshake or certificate fails.
    pub async fn dial(&self, address: SocketAddr, host: &str) -> io::Result<Transport> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let (tls, settings) = match self {
            PeerSecurity::Tls(tls, settings) if settings.dial_tls => (tls, settings),
            _ => return Ok(Transport::Plain(stream)),
        };
        let config = tls.client_config().ok_or_else(|| refused("no TLS context for dialling"))?;
        let name = ServerName::IpAddress(address.ip().into());
        let stream = TlsConnector::from(config).connect(name, stream).await?;
        if settings.hostname_verification {
            let certificate =
                stream.get_ref().1.peer_certificates().and_then(|chain| chain.first());
            let certificate =
                certificate.ok_or_else(|| refused("the member sent no certificate"))?;
            verify_names(certificate, address.ip(), Some(host))
                .map_err(|err| refused(err.to_string()))?;
        }
        Ok(Transport::Tls(Box::new(TlsStream::Client(stream))))
    }

    /// Secures a connection a member at `address` dialled: TLS when it opens with a TLS
    /// handshake (its certificate checked against `address` under
    /// `ssl.quorum.clientHostnameVerification`), plain when it does not and plain is
    /// taken (`portUnification`, or no `sslQuorum`).
    ///
    /// # Errors
    /// A plaintext member on a TLS-only port, a failed handshake or certificate.
    pub async fn accept(&self, stream: TcpStream, address: SocketAddr) -> io::Result<Transport> {
        let _ = stream.set_nodelay(true);
        let (tls, settings) = match self {
            PeerSecurity::Plain => return Ok(Transport::Plain(stream)),
            PeerSecurity::Tls(tls, settings) => (tls, settings),
        };
        let takes_plain = settings.port_unification || !settings.dial_tls;
        let wait = Duration::from_millis(tls.settings().handshake_detection_timeout_ms);
        let opens_tls = match opening(&stream, wait).await? {
            Opening::Tls => true,
            Opening::Plain => false,
            Opening::Nothing => return Err(refused("the member hung up")),
            Opening::Silent => !takes_plain,
        };
        if !opens_tls {
            return if takes_plain {
                Ok(Transport::Plain(stream))
            } else {
                Err(refused("a plaintext member on a TLS-only member port (sslQuorum)"))
            };
        }
        let stream = TlsAcceptor::from(tls.config()).accept(stream).await?;
        if settings.client_hostname_verification {
            if let Some(certificate) =
                stream.get_ref().1.peer_certificates().and_then(|chain| chain.first())
            {
                verify_names(certificate, address.ip(), None)
                    .map_err(|err| refused(err.to_string()))?;
            }
        }
        Ok(Transport::Tls(Box::new(TlsStream::Server(stream))))
    }
}

/// The reading half of a [`Transport`].
#[derive(Debug)]
pub enum PeerReader {
    /// Of a plain connection.
    Plain(OwnedReadHalf),
    /// Of a TLS connection.
    Tls(ReadHalf<Box<TlsStream<TcpStream>>>),
}

/// The writing half of a [`Transport`].
#[derive(Debug)]
pub enum PeerWriter {
    /// Of a plain connection.
    Plain(OwnedWriteHalf),
    /// Of a TLS connection.
    Tls(WriteHalf<Box<TlsStream<TcpStream>>>),
}

impl Transport {
    /// Splits the connection into halves that can be used from different tasks.
    pub fn into_split(self) -> (PeerReader, PeerWriter) {
        match self {
            Transport::Plain(stream) => {
                let (read, write) = stream.into_split();
                (PeerReader::Plain(read), PeerWriter::Plain(write))
            }
            Transport::Tls(stream) => {
                let (read, write) = tokio::io::split(stream);
                (PeerReader::Tls(read), PeerWriter::Tls(write))
            }
        }
    }
}

delegate_read!(PeerReader);
delegate_write!(PeerWriter);
