//! HTTP routes: a reverse proxy (HTTP/1.1 and h2c in, HTTP/1.1 to the upstream) whose faults
//! act on requests: answer instead of the upstream, delay, drip, cut, drop, rate-limit,
//! rewrite. `when` selects requests by client, method, path, headers and query; probability
//! is drawn per request from the seed. A route with `request_faults: true` also applies the
//! faults a request asks for in its `x-switchboard-fault` header.

mod asked;
mod body;
mod connect;
mod fault_layer;
mod forward;
mod matcher;
mod server;
mod state;
mod throttle;
mod tunnel;
pub mod watchdog;

pub use fault_layer::select_faults;
pub use server::{HttpTls, prepare, start};
