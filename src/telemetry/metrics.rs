//! Counters per route and per fault. Held by whoever builds the app and passed down
//! explicitly; nothing here is global.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Live counters of one route. Updated with relaxed atomics: they are statistics, not
/// synchronisation.
#[derive(Debug, Default)]
pub struct RouteStats {
    open: AtomicU64,
    total: AtomicU64,
    bytes_upstream: AtomicU64,
    bytes_downstream: AtomicU64,
    dial_errors: AtomicU64,
}

/// A copy of a route's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
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
}

/// Counts a connection as open until dropped.
#[derive(Debug)]
pub struct OpenConnection(Arc<RouteStats>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl RouteStats {
    /// Counts a new connection; it stays counted as open while the guard lives.
    pub fn connection_opened(self: &Arc<Self>) -> OpenConnection {
        self.total.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(Arc::clone(self))
    }

    /// Counts bytes written towards the upstream (`upstream: true`) or the client.
    pub fn add_bytes(&self, upstream: bool, n: usize) {
        let counter = if upstream {
            &self.bytes_upstream
        } else {
            &self.bytes_downstream
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts a failed upstream dial.
    pub fn dial_failed(&self) {
        self.dial_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> RouteStatsSnapshot {
        RouteStatsSnapshot {
            open: self.open.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
            bytes_upstream: self.bytes_upstream.load(Ordering::Relaxed),
            bytes_downstream: self.bytes_downstream.load(Ordering::Relaxed),
            dial_errors: self.dial_errors.load(Ordering::Relaxed),
        }
    }
}

/// Every counter of one Switchboard.
#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<HashMap<String, Arc<RouteStats>>>,
    fired: Mutex<HashMap<String, u64>>,
}

impl Metrics {
    /// The counters of `route`, created on first use.
    pub fn route(&self, route: &str) -> Arc<RouteStats> {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(routes.entry(route.to_string()).or_default())
    }

    /// Counts one firing of `fault`: it took hold on a connection.
    pub fn fault_fired(&self, fault: &str) {
        let mut fired = self.fired.lock().unwrap_or_else(PoisonError::into_inner);
        *fired.entry(fault.to_string()).or_default() += 1;
    }

    /// How many times `fault` took hold.
    pub fn times_fired(&self, fault: &str) -> u64 {
        let fired = self.fired.lock().unwrap_or_else(PoisonError::into_inner);
        fired.get(fault).copied().unwrap_or(0)
    }
}
