//! The counters of a Dns route: queries by transport, answers by response code (those the
//! resolver gave and those a fault made kept apart), queries a fault or a dead resolver left
//! unanswered, and how long answers took.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use super::route_stats::LatencyCounts;

/// The response codes counted by name; the rest count as `OTHER`.
pub const RCODES: [&str; 7] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "OTHER",
];

/// The counter index of a header's response code.
pub fn rcode_index(rcode: u8) -> usize {
    usize::from(rcode).min(RCODES.len() - 1)
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerSource {
    /// The upstream resolver.
    Upstream,
    /// A fault (`Rcode`, `Answer`, `Truncate`).
    Fault,
}

/// The counters of one Dns route.
#[derive(Debug, Clone)]
pub struct DnsStats {
    pub(super) queries_udp: Counter,
    pub(super) queries_tcp: Counter,
    /// By [`RCODES`]' order: answers from the upstream, then answers a fault made.
    pub(super) upstream_answers: [Counter; 7],
    pub(super) fault_answers: [Counter; 7],
    pub(super) dropped: Counter,
    pub(super) upstream_timeouts: Counter,
    pub(super) overflowed: Counter,
    pub(super) seconds: Histogram,
    pub(super) latency: Arc<LatencyCounts>,
}

/// A copy of a Dns route's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DnsStatsSnapshot {
    /// Queries received, over either transport.
    pub queries: u64,
    /// Of those, over TCP.
    pub queries_tcp: u64,
    /// Answers sent to clients, by response code (upstream's and faults' together).
    pub answers: BTreeMap<String, u64>,
    /// Of the answers, those a fault made in the resolver's place.
    pub injected: u64,
    /// Queries a `Drop` fault left unanswered.
    pub dropped: u64,
    /// Queries the upstream did not answer in time (the client got no answer).
    pub upstream_timeouts: u64,
    /// Queries dropped because `max_flows` queries were already in flight.
    pub overflowed: u64,
    /// Upstream answers with SERVFAIL or REFUSED: the resolver failing.
    pub server_errors: u64,
    /// Answers per latency bucket: `LATENCY_BUCKETS_MS` bounds, then one above them all.
    pub latency_counts: Vec<u64>,
}

impl DnsStats {
    /// Counts a query received over TCP (`tcp`) or UDP.
    pub fn query(&self, tcp: bool) {
        if tcp {
            self.queries_tcp.inc();
        } else {
            self.queries_udp.inc();
        }
    }

    /// Counts an answer with `rcode` sent to a client `took` after its query arrived.
    pub fn answered(&self, rcode: u8, source: AnswerSource, took: Duration) {
        let by = match source {
            AnswerSource::Upstream => &self.upstream_answers,
            AnswerSource::Fault => &self.fault_answers,
        };
        by[rcode_index(rcode)].inc();
        self.seconds.observe(took.as_secs_f64());
        self.latency.observe(took);
    }

    /// Counts a query a `Drop` fault left unanswered.
    pub fn dropped(&self) {
        self.dropped.inc();
    }

    /// Counts a query the upstream did not answer in time.
    pub fn upstream_timeout(&self) {
        self.upstream_timeouts.inc();
    }

    /// Counts a query dropped for too many in flight.
    pub fn overflowed(&self) {
        self.overflowed.inc();
    }

    /// The counters now.
    pub fn snapshot(&self) -> DnsStatsSnapshot {
        let mut answers = BTreeMap::new();
        for (i, name) in RCODES.iter().enumerate() {
            let n = self.upstream_answers[i].get() + self.fault_answers[i].get();
            if n > 0 {
                answers.insert((*name).to_string(), n);
            }
        }
        DnsStatsSnapshot {
            queries: self.queries_udp.get() + self.queries_tcp.get(),
            queries_tcp: self.queries_tcp.get(),
            answers,
            injected: self.fault_answers.iter().map(Counter::get).sum(),
            dropped: self.dropped.get(),
            upstream_timeouts: self.upstream_timeouts.get(),
            overflowed: self.overflowed.get(),
            server_errors: self.upstream_answers[2].get() + self.upstream_answers[5].get(),
            latency_counts: self.latency.counts(),
        }
    }
}
