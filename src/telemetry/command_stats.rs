//! The counters of a protocol route's commands (Redis) or statements (PostgreSQL): how each
//! was answered and how long the answer took, server errors and errors Switchboard injected
//! kept apart.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use super::route_stats::LatencyCounts;

/// How one command was answered, as its client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandOutcome {
    /// The server answered, not with an error.
    Ok,
    /// The server answered with an error.
    ServerError,
    /// A fault answered with an error in the server's place.
    InjectedError,
    /// A fault answered with a null reply in the server's place.
    InjectedNil,
    /// A fault closed the connection on it.
    Dropped,
}

impl CommandOutcome {
    /// Every outcome, in the order of the counters.
    pub const ALL: [CommandOutcome; 5] = [
        CommandOutcome::Ok,
        CommandOutcome::ServerError,
        CommandOutcome::InjectedError,
        CommandOutcome::InjectedNil,
        CommandOutcome::Dropped,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            CommandOutcome::Ok => "ok",
            CommandOutcome::ServerError => "error",
            CommandOutcome::InjectedError => "injected_error",
            CommandOutcome::InjectedNil => "injected_nil",
            CommandOutcome::Dropped => "dropped",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|o| *o == self).unwrap_or(0)
    }
}

/// The command counters of one route.
#[derive(Debug, Clone)]
pub struct CommandStats {
    /// By [`CommandOutcome::ALL`]'s order.
    pub(super) by_outcome: [Counter; 5],
    pub(super) seconds: Histogram,
    pub(super) latency: Arc<LatencyCounts>,
    pub(super) protocol_errors: Counter,
}

/// A copy of a protocol route's command counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommandStatsSnapshot {
    /// Commands answered (or dropped) since start.
    pub commands: u64,
    /// Of those, answered with an error by the server.
    pub errors: u64,
    /// Of those, answered with an error by a fault.
    pub injected: u64,
    /// Of those, answered with a null reply by a fault (a cache miss, not an error).
    pub injected_nil: u64,
    /// Of those, ended by a fault closing the connection (also counted as a failed
    /// connection).
    pub dropped: u64,
    /// Connections closed because one side broke the protocol.
    pub protocol_errors: u64,
    /// Commands per latency bucket: `LATENCY_BUCKETS_MS` bounds, then one above them all.
    pub latency_counts: Vec<u64>,
}

impl CommandStats {
    /// Counts one command answered `outcome` after `took`.
    pub fn command(&self, outcome: CommandOutcome, took: Duration) {
        self.by_outcome[outcome.index()].inc();
        self.seconds.observe(took.as_secs_f64());
        self.latency.observe(took);
    }

    /// Counts a connection closed for bytes that broke the protocol.
    pub fn protocol_error(&self) {
        self.protocol_errors.inc();
    }

    /// The counters now.
    pub fn snapshot(&self) -> CommandStatsSnapshot {
        let count = |o: CommandOutcome| self.by_outcome[o.index()].get();
        CommandStatsSnapshot {
            commands: self.by_outcome.iter().map(Counter::get).sum(),
            errors: count(CommandOutcome::ServerError),
            injected: count(CommandOutcome::InjectedError),
            injected_nil: count(CommandOutcome::InjectedNil),
            dropped: count(CommandOutcome::Dropped),
            protocol_errors: self.protocol_errors.get(),
            latency_counts: self.latency.counts(),
        }
    }
}
