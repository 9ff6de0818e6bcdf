//! A TCP connection that may run TLS over it, read and written without knowing which: a
//! member's link (`sslQuorum`) or an AdminServer connection (`admin.forceHttps`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsStream;

/// A connection, plain or TLS.
#[derive(Debug)]
pub enum Transport {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS, dialled or accepted.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Transport {
    /// The first certificate the other end presented (verified by the handshake), if it
    /// speaks TLS and sent one.
    pub fn peer_certificate(&self) -> Option<&rustls::pki_types::CertificateDer<'static>> {
        match self {
            Transport::Plain(_) => None,
            Transport::Tls(stream) => stream.get_ref().1.peer_certificates()?.first(),
        }
    }
}

/// Implements `AsyncRead` for an enum of a `Plain` and a `Tls` reader by passing each
/// call to the variant at hand.
macro_rules! delegate_read {
    ($kind:ident) => {
        impl AsyncRead for $kind {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $kind::Plain(inner) => Pin::new(inner).poll_read(cx, buf),
                    $kind::Tls(inner) => Pin::new(inner).poll_read(cx, buf),
                }
            }
        }
    };
}

/// Implements `AsyncWrite` for an enum of a `Plain` and a `Tls` writer likewise.
macro_rules! delegate_write {
    ($kind:ident) => {
        impl AsyncWrite for $kind {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $kind::Plain(inner) => Pin::new(inner).poll_write(cx, buf),
                    $kind::Tls(inner) => Pin::new(inner).poll_write(cx, buf),
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $kind::Plain(inner) => Pin::new(inner).poll_flush(cx),
                    $kind::Tls(inner) => Pin::new(inner).poll_flush(cx),
                }
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $kind::Plain(inner) => Pin::new(inner).poll_shutdown(cx),
                    $kind::Tls(inner) => Pin::new(inner).poll_shutdown(cx),
                }
            }
        }
    };
}

pub(crate) use delegate_read;
pub(crate) use delegate_write;

delegate_read!(Transport);
delegate_write!(Transport);
