//! What Switchboard tells about itself: metrics, events, and log setup.

mod events;
mod metrics;
mod tracing;

pub use events::{Event, EventBus, EventKind, EventSource, timestamp};
pub use metrics::{
    HttpStats, HttpStatsSnapshot, LATENCY_BUCKETS_MS, Metrics, RouteStats, RouteStatsSnapshot,
};
pub use tracing::{LogFormat, init_tracing};
