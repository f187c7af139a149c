//! The sockets a route listens on, bound before a change commits: a TCP listener, a UDP
//! socket, or both on one port for DNS.

use std::net::SocketAddr;

use tokio::net::{TcpListener, UdpSocket};

use super::ProxyError;
use crate::rules::{Protocol, Route};

/// A route's bound sockets, not yet serving.
#[derive(Debug)]
pub enum Listener {
    /// Tcp, Http and the protocol routes over TCP.
    Tcp(TcpListener),
    /// Udp routes.
    Udp(UdpSocket),
    /// Dns routes: UDP and TCP on the same address and port.
    Dns { udp: UdpSocket, tcp: TcpListener },
}

/// How many ports a Dns route asked to listen on port 0 tries before giving up: the UDP port
/// the system picks may be taken for TCP.
const DNS_PORT_TRIES: usize = 16;

/// A kernel receive buffer large enough for a burst of datagrams while the route's task is
/// busy; the kernel caps it at `net.core.rmem_max` unless Switchboard runs as root.
const UDP_RECEIVE_BUFFER: usize = 4 << 20;

impl Listener {
    /// The address it is bound to (the real port when bound to port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Udp(s) | Listener::Dns { udp: s, .. } => s.local_addr().ok(),
        }
    }
}

/// Binds `route`'s listen address without serving yet, so that a change can bind every new
/// listener before it commits to any.
pub async fn bind(route: &Route) -> Result<Listener, ProxyError> {
    let addr: SocketAddr = route.listen.parse().map_err(|_| ProxyError::BadListen {
        route: route.name.clone(),
        listen: route.listen.clone(),
    })?;
    let bind_error = |addr, source| ProxyError::Bind {
        route: route.name.clone(),
        addr,
        source,
    };
    match route.protocol {
        Protocol::Udp => bind_udp(addr)
            .await
            .map(Listener::Udp)
            .map_err(|e| bind_error(addr, e)),
        Protocol::Dns => {
            let mut last = None;
            for _ in 0..DNS_PORT_TRIES {
                let udp = bind_udp(addr).await.map_err(|e| bind_error(addr, e))?;
                let port = udp.local_addr().map_err(|e| bind_error(addr, e))?.port();
                let at = SocketAddr::new(addr.ip(), port);
                match TcpListener::bind(at).await {
                    Ok(tcp) => return Ok(Listener::Dns { udp, tcp }),
                    // Another port may be free for both, when the system chose this one.
                    Err(e) if addr.port() == 0 => last = Some((at, e)),
                    Err(e) => return Err(bind_error(at, e)),
                }
            }
            let (at, e) = last.unwrap_or_else(|| (addr, std::io::ErrorKind::AddrInUse.into()));
            Err(bind_error(at, e))
        }
        _ => TcpListener::bind(addr)
            .await
            .map(Listener::Tcp)
            .map_err(|e| bind_error(addr, e)),
    }
}

async fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = UdpSocket::bind(addr).await?;
    // Best effort: a smaller buffer still works, it only overflows sooner.
    let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(UDP_RECEIVE_BUFFER);
    Ok(socket)
}
