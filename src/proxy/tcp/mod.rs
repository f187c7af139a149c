//! TCP routes: an accept loop per route, and one task per connection that runs both
//! directions in one loop with the faults applied in line (no task per fault).

mod conn;
mod listener;
mod plan;
mod session;
mod stream;

pub(crate) use listener::bound_addr;
pub use listener::{RouteHandle, bind, start};
