//! What Switchboard tells about itself: metrics, events, and log setup.

mod command_stats;
mod datagram_stats;
mod dns_stats;
mod events;
mod metrics;
mod route_stats;
mod tracing;

pub use command_stats::{CommandOutcome, CommandStats, CommandStatsSnapshot};
pub use datagram_stats::{DatagramOutcome, DatagramStats, DatagramStatsSnapshot, StreamCounts};
pub use dns_stats::{AnswerSource, DnsStats, DnsStatsSnapshot};
pub use events::{Event, EventBus, EventKind, EventSource, timestamp};
pub use metrics::{HttpStats, HttpStatsSnapshot, Metrics};
pub use route_stats::{Failure, LATENCY_BUCKETS_MS, RouteStats, RouteStatsSnapshot};
pub use tracing::{LogFormat, init_tracing};
