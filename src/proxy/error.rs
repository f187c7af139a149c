//! Errors of the forwarding path, tagged with the side to blame.

use std::net::SocketAddr;

/// Which party an error comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client that connected to the route.
    Downstream,
    /// The dependency behind the route.
    Upstream,
    /// Switchboard itself (a socket it could not bind, say).
    Internal,
}

/// A forwarding failure.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A route's listen address could not be bound.
    #[error("route {route:?}: cannot listen on {addr}: {source}")]
    Bind {
        /// The route.
        route: String,
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A route's TLS files could not be loaded.
    #[error("route {route:?}: {source}")]
    Tls {
        /// The route.
        route: String,
        /// What failed.
        source: crate::tls::TlsError,
    },
    /// A route's listen address is not an address.
    #[error("route {route:?}: listen {listen:?} is not an ip:port address")]
    BadListen {
        /// The route.
        route: String,
        /// As written.
        listen: String,
    },
    /// A task preparing a route did not finish (it panicked).
    #[error("route {route:?}: preparing it failed: {message}")]
    Task {
        /// The route.
        route: String,
        /// What the task said.
        message: String,
    },
}

impl ProxyError {
    /// The side to blame.
    pub fn side(&self) -> Side {
        match self {
            ProxyError::Bind { .. }
            | ProxyError::BadListen { .. }
            | ProxyError::Tls { .. }
            | ProxyError::Task { .. } => Side::Internal,
        }
    }
}
