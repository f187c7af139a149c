//! Forwarding traffic: one module per protocol, and the table of bound routes.

pub mod accept;
pub mod bind;
pub mod caps;
pub mod dns;
mod error;
pub mod gate;
pub mod http;
mod message_session;
pub mod postgres;
mod read_buffer;
pub mod redis;
mod routes;
pub mod tcp;
pub mod timer;
pub mod udp;

pub use error::{ProxyError, Side};
pub use routes::{BoundAddrs, Prepared, ProxyContext, RouteTable};
