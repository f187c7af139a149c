//! The live counters of one route as its connections see them: opened, ended cleanly or
//! failed (and why), bytes each way, and how long a request on it waits for its answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

/// Upper bounds of the latency buckets kept for drills' route probes, in milliseconds (the
/// same doubling as the exported histograms); one more bucket counts everything above.
pub const LATENCY_BUCKETS_MS: [u64; 15] = [
    1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384,
];

/// Latencies by bucket, readable (prometheus-client's histogram is write-only from here).
#[derive(Debug, Default)]
pub struct LatencyCounts([AtomicU64; LATENCY_BUCKETS_MS.len() + 1]);

impl LatencyCounts {
    pub(super) fn observe(&self, took: Duration) {
        let ms = took.as_secs_f64() * 1000.0;
        let i = LATENCY_BUCKETS_MS
            .iter()
            .position(|le| ms <= *le as f64)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.0[i].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn counts(&self) -> Vec<u64> {
        self.0.iter().map(|c| c.load(Ordering::Relaxed)).collect()
    }
}

/// Why a client's connection failed, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// A fault refused, reset, cut or closed it, or the route was switched off.
    Fault,
    /// The upstream could not be dialed, or not in time.
    Dial,
    /// A socket failed mid-connection (a peer reset it).
    Broken,
    /// The client hung up while a partition held it without an upstream.
    GaveUp,
    /// Switchboard stopped and the grace period ran out.
    Shutdown,
}

impl Failure {
    /// Every reason, in the order of the counters.
    pub const ALL: [Failure; 5] = [
        Failure::Fault,
        Failure::Dial,
        Failure::Broken,
        Failure::GaveUp,
        Failure::Shutdown,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Failure::Fault => "fault",
            Failure::Dial => "dial",
            Failure::Broken => "broken",
            Failure::GaveUp => "gave_up",
            Failure::Shutdown => "shutdown",
        }
    }
}

/// The live counters of one route.
#[derive(Debug, Clone)]
pub struct RouteStats {
    pub(super) open: Gauge,
    pub(super) total: Counter,
    pub(super) bytes_upstream: Counter,
    pub(super) bytes_downstream: Counter,
    pub(super) dial_errors: Counter,
    pub(super) ended: Counter,
    /// By [`Failure::ALL`]'s order.
    pub(super) failed: [Counter; 5],
    pub(super) round_trip_seconds: Histogram,
    pub(super) round_trips: Arc<LatencyCounts>,
}

/// A copy of a route's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RouteStatsSnapshot {
    /// Connections open now.
    pub open: u64,
    /// Connections accepted since start.
    pub total: u64,
    /// Bytes written to the upstream.
    pub bytes_upstream: u64,
    /// Bytes written to clients.
    pub bytes_downstream: u64,
    /// Upstream dials that failed.
    pub dial_errors: u64,
    /// Connections that ended with both sides closing cleanly.
    pub ended: u64,
    /// Connections that failed as their client saw it: refused, reset or cut by a fault or
    /// by the upstream, a failed dial, or held by a partition until the client gave up.
    pub failed: u64,
    /// Round trips (client bytes to the first answering byte delivered back, faults
    /// included) per latency bucket: `LATENCY_BUCKETS_MS` bounds, then one above them all.
    pub round_trip_counts: Vec<u64>,
}

/// Counts a connection as open until dropped.
#[derive(Debug)]
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl RouteStats {
    /// Counts a new connection; it stays counted as open while the guard lives.
    pub fn connection_opened(&self) -> OpenConnection {
        self.total.inc();
        self.open.inc();
        OpenConnection(self.open.clone())
    }

    /// Counts bytes written towards the upstream (`upstream: true`) or the client.
    pub fn add_bytes(&self, upstream: bool, n: usize) {
        let counter = if upstream {
            &self.bytes_upstream
        } else {
            &self.bytes_downstream
        };
        counter.inc_by(n as u64);
    }

    /// Counts a failed upstream dial (and the client's connection failing with it).
    pub fn dial_failed(&self) {
        self.dial_errors.inc();
        self.failed(Failure::Dial);
    }

    /// Counts a connection that ended cleanly.
    pub fn ended(&self) {
        self.ended.inc();
    }

    /// Counts a connection that failed, and why.
    pub fn failed(&self, why: Failure) {
        let i = Failure::ALL.iter().position(|f| *f == why).unwrap_or(0);
        self.failed[i].inc();
    }

    /// How many connections failed for `why` so far.
    pub fn failed_by(&self, why: Failure) -> u64 {
        let i = Failure::ALL.iter().position(|f| *f == why).unwrap_or(0);
        self.failed[i].get()
    }

    /// Records one round trip: from the client's bytes to the first byte of the answer.
    pub fn round_trip(&self, took: Duration) {
        self.round_trip_seconds.observe(took.as_secs_f64());
        self.round_trips.observe(took);
    }

    /// The counters now.
    pub fn snapshot(&self) -> RouteStatsSnapshot {
        RouteStatsSnapshot {
            open: u64::try_from(self.open.get()).unwrap_or(0),
            total: self.total.get(),
            bytes_upstream: self.bytes_upstream.get(),
            bytes_downstream: self.bytes_downstream.get(),
            dial_errors: self.dial_errors.get(),
            ended: self.ended.get(),
            failed: self.failed.iter().map(Counter::get).sum(),
            round_trip_counts: self.round_trips.counts(),
        }
    }
}
