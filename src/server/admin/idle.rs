//! The AdminServer's listener: HTTP, HTTPS (`admin.forceHttps`) or both on one port
//! (`admin.portUnification`), each connection closing once idle for `admin.idleTimeout`,
//! as Jetty's connector closes it. TLS handshakes run on tasks of their own, at most
//! [`OPENING_MAX`] at once, so a slow client never holds up the others.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsStream;

use crate::server::listener::Security;
use crate::tls::stream::Transport;
use crate::tls::subject::rfc2253_subject;

/// Pause after a failed accept (out of file descriptors, say) before the next.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// Connections accepted and not yet served (in their TLS handshake, or queued for the
/// HTTP server); past this many the listener stops accepting until one is handed over.
pub const OPENING_MAX: usize = 64;

/// Accepts connections, plain or TLS as the port speaks, that close when idle.
#[derive(Debug)]
pub struct IdleListener {
    opened: mpsc::Receiver<(IdleStream, SocketAddr)>,
    local: SocketAddr,
    accepting: JoinHandle<()>,
}

impl IdleListener {
    /// Connections accepted on `listener`, speaking as `security` says, close after
    /// `idle` without a byte either way (a TLS handshake must finish within it too).
    ///
    /// # Errors
    /// If the listener's address cannot be read.
    pub fn new(
        listener: TcpListener,
        idle: Duration,
        security: Security,
    ) -> io::Result<IdleListener> {
        let local = listener.local_addr()?;
        let (open, opened) = mpsc::channel(OPENING_MAX);
        let accepting = tokio::spawn(accept(listener, idle, security, open));
        Ok(IdleListener { opened, local, accepting })
    }
}

impl Drop for IdleListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn accept(
    listener: TcpListener,
    idle: Duration,
    security: Security,
    open: mpsc::Sender<(IdleStream, SocketAddr)>,
) {
    let opening = Arc::new(Semaphore::new(OPENING_MAX));
    loop {
        let Ok(permit) = opening.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(cause = %err, "the AdminServer cannot accept a connection");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (security, open) = (security.clone(), open.clone());
        tokio::spawn(async move {
            let transport = match tokio::time::timeout(idle, transport(stream, &security)).await {
                Ok(Ok(transport)) => transport,
                Ok(Err(err)) => {
                    tracing::debug!(%peer, cause = %err, "AdminServer TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "AdminServer connection idle in its TLS handshake");
                    return;
                }
            };
            let deadline = Box::pin(tokio::time::sleep(idle));
            let _ = open.send((IdleStream { transport, idle, deadline }, peer)).await;
            drop(permit);
        });
    }
}

/// The connection as the port speaks it: TLS if it is an HTTPS port, or a unified one
/// whose client opens with a TLS handshake.
async fn transport(stream: TcpStream, security: &Security) -> io::Result<Transport> {
    match security.tls_for(&stream).await {
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.config());
            Ok(Transport::Tls(Box::new(TlsStream::Server(acceptor.accept(stream).await?))))
        }
        None => Ok(Transport::Plain(stream)),
    }
}

impl axum::serve::Listener for IdleListener {
    type Io = IdleStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (IdleStream, SocketAddr) {
        match self.opened.recv().await {
            Some(opened) => opened,
            // The accepting task ended (the runtime is stopping): no more connections.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Who is calling: the address for IP authentication, the subject of a verified client
/// certificate (RFC 2253, as ZooKeeper's `X509AuthenticationProvider` names it) for x509.
#[derive(Debug, Clone)]
pub struct ClientAddress {
    /// The client's address.
    pub peer: SocketAddr,
    /// The certificate's subject, over HTTPS with a client certificate.
    pub x509_subject: Option<String>,
}

impl Connected<IncomingStream<'_, IdleListener>> for ClientAddress {
    fn connect_info(stream: IncomingStream<'_, IdleListener>) -> ClientAddress {
        let x509_subject = stream
            .io()
            .transport
            .peer_certificate()
            .and_then(|certificate| rfc2253_subject(certificate));
        ClientAddress { peer: *stream.remote_addr(), x509_subject }
    }
}

/// A connection that fails its pending read or write once idle too long.
#[derive(Debug)]
pub struct IdleStream {
    transport: Transport,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl IdleStream {
    fn progressed(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.idle);
    }

    fn idle_too_long(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline.as_mut().poll(cx).is_ready()
    }

    fn waited<T>(
        &mut self,
        polled: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(outcome) => {
                self.progressed();
                Poll::Ready(outcome)
            }
            Poll::Pending if self.idle_too_long(cx) => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "idle too long")))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for IdleStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.transport).poll_read(cx, buf);
        this.waited(polled, cx)
    }
}

impl AsyncWrite for IdleStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.transport).poll_write(cx, buf);
        this.waited(polled, cx)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().transport).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().transport).poll_shutdown(cx)
    }
}
