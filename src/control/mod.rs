//! The control endpoint: an HTTP/1.1 JSON API over a running [`crate::Switchboard`].
//!
//! `/v1/*` is the native API, `/metrics` the Prometheus exposition, `/healthz` a liveness
//! check. Bound to a non-loopback address it requires a bearer token on every call but
//! `/healthz`.

mod auth;
mod drill_files;
mod drills;
mod error;
pub(crate) mod http;
mod origin;
mod page;
#[cfg(test)]
mod proptests;
mod router;
mod server;
mod sse;
pub mod toxiproxy;
pub(crate) mod v1;

pub use auth::{Auth, AuthError};
pub use error::ApiError;
pub use origin::OriginPolicy;
pub use server::{ControlHandle, ControlOptions, serve, serve_with, serve_with_tls};
