//! The network between ensemble members, made of small TCP proxies the tests can fault:
//! every connection member `i` opens to member `j` (election or quorum) goes through the
//! proxy for `i → j`, so a partition is a set of proxies that stop carrying bytes.
//!
//! A delayed link carries bytes late; a paused link holds what it has read and carries
//! nothing until it is healed, as a network that drops packets does to TCP (the peers see
//! silence, and their own timeouts decide when to give up); a cut link closes its
//! connections and refuses new ones, as a peer's host going away with a reset does.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

/// What a link does to the bytes it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Carries them.
    Healthy,
    /// Carries them, each read's worth after a delay.
    Delayed(Duration),
    /// Holds them until healed.
    Paused,
    /// Closes its connections and refuses new ones.
    Cut,
}

/// One proxy: connections to `listen` go on to `target`.
struct Proxy {
    from: usize,
    to: usize,
    listen: SocketAddr,
    state: Arc<LinkState>,
}

#[derive(Default)]
struct LinkState {
    fault: Mutex<Option<Fault>>,
    /// Both ends of every connection carried, to close them when cut.
    streams: Mutex<Vec<TcpStream>>,
    stopped: AtomicBool,
}

impl LinkState {
    fn fault(&self) -> Fault {
        self.fault.lock().unwrap_or(Fault::Healthy)
    }

    fn close_all(&self) {
        for stream in self.streams.lock().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// The proxies between the members of one ensemble.
pub struct Network {
    proxies: Vec<Proxy>,
}

impl Network {
    /// An empty network; [`Network::route`] adds its proxies.
    pub fn new() -> Network {
        Network { proxies: Vec::new() }
    }

    /// A proxy carrying `from`'s connections to `target`, a port of member `to`; returns
    /// the address `from` must dial instead.
    pub fn route(&mut self, from: usize, to: usize, target: SocketAddr) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a proxy");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let listen = listener.local_addr().expect("the proxy's address");
        let state = Arc::new(LinkState::default());
        let accepting = state.clone();
        std::thread::spawn(move || accept(listener, target, &accepting));
        self.proxies.push(Proxy { from, to, listen, state });
        listen
    }

    /// Applies `fault` to the links both ways between members `a` and `b`.
    pub fn set(&self, a: usize, b: usize, fault: Fault) {
        for proxy in &self.proxies {
            if (proxy.from, proxy.to) == (a, b) || (proxy.from, proxy.to) == (b, a) {
                *proxy.state.fault.lock() = Some(fault);
                if fault == Fault::Cut {
                    proxy.state.close_all();
                }
            }
        }
    }

    /// Applies `fault` to every link of member `i`.
    pub fn isolate(&self, i: usize, fault: Fault) {
        let others: Vec<usize> = self.proxies.iter().map(|proxy| proxy.to).collect();
        for other in others {
            if other != i {
                self.set(i, other, fault);
            }
        }
    }

    /// Every link carries bytes again.
    pub fn heal(&self) {
        for proxy in &self.proxies {
            *proxy.state.fault.lock() = Some(Fault::Healthy);
        }
    }

    /// The proxies' listening addresses, for failure messages.
    pub fn describe(&self) -> Vec<(usize, usize, SocketAddr)> {
        self.proxies.iter().map(|proxy| (proxy.from, proxy.to, proxy.listen)).collect()
    }
}

impl Default for Network {
    fn default() -> Self {
        Network::new()
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for proxy in &self.proxies {
            proxy.state.stopped.store(true, Ordering::SeqCst);
            proxy.state.close_all();
        }
    }
}

/// How often idle proxy threads look at their link's fault.
const POLL: Duration = Duration::from_millis(10);

fn accept(listener: TcpListener, target: SocketAddr, state: &Arc<LinkState>) {
    while !state.stopped.load(Ordering::SeqCst) {
        let incoming = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(err) if err.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(POLL);
                continue;
            }
            Err(_) => return,
        };
        if state.fault() == Fault::Cut {
            continue;
        }
        let _ = incoming.set_nonblocking(false);
        let Ok(outgoing) = TcpStream::connect_timeout(&target, Duration::from_secs(1)) else {
            continue;
        };
        let (Ok(incoming_reader), Ok(outgoing_reader)) =
            (incoming.try_clone(), outgoing.try_clone())
        else {
            continue;
        };
        {
            let mut streams = state.streams.lock();
            streams.retain(|stream| stream.peer_addr().is_ok());
            for stream in [&incoming, &outgoing] {
                if let Ok(clone) = stream.try_clone() {
                    streams.push(clone);
                }
            }
        }
        let (forward, backward) = (state.clone(), state.clone());
        std::thread::spawn(move || pump(incoming_reader, outgoing, &forward));
        std::thread::spawn(move || pump(outgoing_reader, incoming, &backward));
    }
}

/// Carries bytes from `from` to `to` while the link allows, holding them while it is
/// paused; closes both once either side closes or the link is cut.
fn pump(mut from: TcpStream, mut to: TcpStream, state: &LinkState) {
    let _ = from.set_read_timeout(Some(POLL));
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        if state.stopped.load(Ordering::SeqCst) {
            break;
        }
        let read = match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                continue;
            }
            Err(_) => break,
        };
        loop {
            match state.fault() {
                Fault::Healthy => break,
                Fault::Delayed(delay) => {
                    std::thread::sleep(delay);
                    break;
                }
                Fault::Paused if !state.stopped.load(Ordering::SeqCst) => {
                    std::thread::sleep(POLL);
                }
                Fault::Paused | Fault::Cut => {
                    let _ = from.shutdown(Shutdown::Both);
                    let _ = to.shutdown(Shutdown::Both);
                    return;
                }
            }
        }
        if to.write_all(&buffer[..read]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
