//! What Switchboard tells about itself: counters per route and per fault, and log setup.

mod metrics;
mod tracing;

pub use metrics::{Metrics, RouteStats, RouteStatsSnapshot};
pub use tracing::{LogFormat, init_tracing};
