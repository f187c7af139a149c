//! What `/v1/status` reports.

use std::path::PathBuf;
use std::time::SystemTime;

use serde::Serialize;

use super::Switchboard;
use crate::rules::Problem;
use crate::telemetry::timestamp;

/// The state of a running Switchboard.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The crate version.
    pub version: &'static str,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// The watched rules directory, if any.
    pub rules_dir: Option<PathBuf>,
    /// The seed every random choice derives from.
    pub seed: u64,
    /// When the rules in force were loaded (RFC 3339).
    pub last_reload: Option<String>,
    /// The problems of the last reload, if it was rejected and no good reload came since;
    /// the rules before it stay in force.
    pub last_rejected: Option<Vec<Problem>>,
    /// Routes and faults in force.
    pub routes: usize,
    /// Faults in force, enabled or not.
    pub faults: usize,
    /// Faults enabled.
    pub faults_enabled: usize,
    /// `watching` while hot reload sees the rules directory, else why it does not.
    pub rules_watch: String,
    /// Every route guard: its failure rate over its window now, and its last trip.
    pub guards: Vec<super::GuardInfo>,
}

impl Switchboard {
    /// The state now.
    pub async fn status(&self) -> Status {
        // No await: the status never waits behind a change in progress.
        let health = self.health();
        let rules = self.store().current();
        Status {
            version: env!("CARGO_PKG_VERSION"),
            uptime_secs: SystemTime::now()
                .duration_since(self.inner.started)
                .map_or(0, |d| d.as_secs()),
            rules_dir: self.inner.rules_dir.clone(),
            seed: self.seed(),
            last_reload: health.last_reload.map(timestamp),
            last_rejected: health.last_rejected.clone(),
            routes: rules.routes().len(),
            faults: rules.faults().len(),
            faults_enabled: rules.faults().iter().filter(|f| f.enabled).count(),
            rules_watch: match (&self.inner.rules_dir, &health.watch_problem) {
                (None, _) => "off (no rules directory)".into(),
                (Some(_), None) => "watching".into(),
                (Some(_), Some(problem)) => problem.clone(),
            },
            guards: self.guard_views(),
        }
    }
}

/// A route as the control endpoint shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RouteInfo {
    /// Its name.
    pub name: String,
    /// Its protocol.
    pub protocol: crate::rules::Protocol,
    /// The listen address as configured.
    pub listen: String,
    /// The address actually bound (differs from `listen` for port 0).
    pub bound: Option<std::net::SocketAddr>,
    /// What it forwards to.
    pub upstream: String,
    /// Whether it listens.
    pub enabled: bool,
    /// Where it came from.
    pub source: crate::store::Source,
    /// Live counters.
    pub stats: crate::telemetry::RouteStatsSnapshot,
    /// Request counters, for HTTP routes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<crate::telemetry::HttpStatsSnapshot>,
    /// Command counters, for Redis routes; statement counters, for PostgreSQL routes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commands: Option<crate::telemetry::CommandStatsSnapshot>,
    /// Datagram counters, for Udp routes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datagrams: Option<crate::telemetry::DatagramStatsSnapshot>,
    /// Query and answer counters, for Dns routes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<crate::telemetry::DnsStatsSnapshot>,
    /// The faults attached to it.
    pub faults: Vec<String>,
    /// HTTP routes: whether requests may ask for faults of their own.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub request_faults: bool,
    /// Its guard, if it has one (`/v1/status` shows the guard's rate and trips).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<crate::rules::Guard>,
}

impl Switchboard {
    /// One route with its counters.
    pub async fn route(&self, name: &str) -> Option<RouteInfo> {
        self.routes().await.into_iter().find(|r| r.name == name)
    }

    /// Every route in force with its counters.
    pub async fn routes(&self) -> Vec<RouteInfo> {
        let rules = self.store().current();
        rules
            .routes()
            .iter()
            .map(|r| RouteInfo {
                name: r.name.clone(),
                protocol: r.protocol,
                listen: r.listen.clone(),
                bound: self.inner.addrs.get(&r.name),
                upstream: r.upstream.clone(),
                enabled: r.enabled,
                source: rules
                    .route_source(&r.name)
                    .unwrap_or(crate::store::Source::File),
                stats: self.metrics().route(&r.name).snapshot(),
                http: (r.protocol == crate::rules::Protocol::Http)
                    .then(|| self.metrics().http_route(&r.name).snapshot()),
                commands: matches!(
                    r.protocol,
                    crate::rules::Protocol::Redis | crate::rules::Protocol::Postgres
                )
                .then(|| self.metrics().command_route(&r.name).snapshot()),
                datagrams: (r.protocol == crate::rules::Protocol::Udp)
                    .then(|| self.metrics().datagram_route(&r.name).snapshot()),
                dns: (r.protocol == crate::rules::Protocol::Dns)
                    .then(|| self.metrics().dns_route(&r.name).snapshot()),
                faults: rules.faults_for(&r.name).map(|f| f.name.clone()).collect(),
                request_faults: r.request_faults,
                guard: r.guard,
            })
            .collect()
    }
}
