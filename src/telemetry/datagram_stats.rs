//! The counters of a Udp route's datagrams, each way: received, forwarded, dropped by a
//! fault, sent twice, and lost by Switchboard itself (a full queue or flow table), kept apart
//! so that a loss a fault made is never confused with one the proxy made.

use prometheus_client::metrics::counter::Counter;

use crate::rules::Direction;

/// What became of a datagram, for the counters' labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatagramOutcome {
    /// Read from the client (upstream stream) or the upstream (downstream stream).
    Received,
    /// Written on (every copy of a duplicated one).
    Forwarded,
    /// Dropped by a fault: `Drop`, a blackhole partition, a full `Bandwidth` queue.
    Dropped,
    /// Written a second time by `Duplicate`.
    Duplicated,
    /// Lost by Switchboard: its flow's queue or the route's flow table was full, or the
    /// upstream could not be reached.
    Overflowed,
}

impl DatagramOutcome {
    /// Every outcome, in the order of the counters.
    pub const ALL: [DatagramOutcome; 5] = [
        DatagramOutcome::Received,
        DatagramOutcome::Forwarded,
        DatagramOutcome::Dropped,
        DatagramOutcome::Duplicated,
        DatagramOutcome::Overflowed,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            DatagramOutcome::Received => "received",
            DatagramOutcome::Forwarded => "forwarded",
            DatagramOutcome::Dropped => "dropped",
            DatagramOutcome::Duplicated => "duplicated",
            DatagramOutcome::Overflowed => "overflowed",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|o| *o == self).unwrap_or(0)
    }
}

/// The datagram counters of one route: for each stream, by [`DatagramOutcome::ALL`]'s order.
#[derive(Debug, Clone)]
pub struct DatagramStats {
    pub(super) upstream: [Counter; 5],
    pub(super) downstream: [Counter; 5],
    pub(super) flows_refused: Counter,
    pub(super) unreachable: Counter,
}

/// One stream's datagram counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamCounts {
    pub received: u64,
    pub forwarded: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub overflowed: u64,
}

/// A copy of a Udp route's datagram counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DatagramStatsSnapshot {
    /// Client to upstream.
    pub upstream: StreamCounts,
    /// Upstream to client.
    pub downstream: StreamCounts,
    /// Datagrams from new clients dropped because the flow table was full.
    pub flows_refused: u64,
    /// Datagrams the upstream refused (ICMP port unreachable): nothing listens there.
    pub unreachable: u64,
}

impl DatagramStats {
    /// Counts one datagram of `stream` that met `outcome`.
    pub fn count(&self, stream: Direction, outcome: DatagramOutcome) {
        let counters = match stream {
            Direction::Upstream => &self.upstream,
            _ => &self.downstream,
        };
        counters[outcome.index()].inc();
    }

    /// Counts a datagram from a new client dropped for a full flow table.
    pub fn flow_refused(&self) {
        self.flows_refused.inc();
        self.count(Direction::Upstream, DatagramOutcome::Overflowed);
    }

    /// Counts a datagram the upstream answered with ICMP port unreachable.
    pub fn upstream_unreachable(&self) {
        self.unreachable.inc();
    }

    /// The counters now.
    pub fn snapshot(&self) -> DatagramStatsSnapshot {
        let counts = |c: &[Counter; 5]| {
            let get = |o: DatagramOutcome| c[o.index()].get();
            StreamCounts {
                received: get(DatagramOutcome::Received),
                forwarded: get(DatagramOutcome::Forwarded),
                dropped: get(DatagramOutcome::Dropped),
                duplicated: get(DatagramOutcome::Duplicated),
                overflowed: get(DatagramOutcome::Overflowed),
            }
        };
        DatagramStatsSnapshot {
            upstream: counts(&self.upstream),
            downstream: counts(&self.downstream),
            flows_refused: self.flows_refused.get(),
            unreachable: self.unreachable.get(),
        }
    }
}
