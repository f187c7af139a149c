//! TCP routes: an accept loop per route, and one task per connection that runs both
//! directions in one loop with the faults applied in line (no task per fault).

mod conn;
mod listener;
mod plan;
mod session;
mod splice;
mod stream;

pub(crate) use listener::bound_addr;
pub use listener::{RouteHandle, start};
// The per-connection pieces, public for the micro-benchmarks in benches/hot_paths.rs.
pub use plan::{Cut, Plan};
pub use session::Ending;
pub use stream::{Sink, Stream};
