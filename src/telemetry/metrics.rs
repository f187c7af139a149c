//! Prometheus metrics. The registry is built once and passed down; nothing here is global.
//! Connections take their counter handles once (an `Arc` each), so the per-chunk cost is one
//! relaxed atomic add, never a label lookup.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::command_stats::{CommandOutcome, CommandStats};
use super::datagram_stats::{DatagramOutcome, DatagramStats};
use super::dns_stats::{DnsStats, RCODES};
use super::route_stats::{Failure, LatencyCounts, RouteStats};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BytesLabel {
    route: String,
    direction: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabel {
    route: String,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FaultLabel {
    fault: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabel {
    route: String,
    /// "2xx" .. "5xx", or "none" when no response was sent (Drop, partitions).
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabel {
    route: String,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DatagramLabel {
    route: String,
    direction: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabel {
    route: String,
    transport: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AnswerLabel {
    route: String,
    rcode: &'static str,
    source: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// 1 ms to about 16 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// A copy of an HTTP route's request counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HttpStatsSnapshot {
    /// Requests answered (or dropped) since start.
    pub requests: u64,
    /// Of those, 5xx answers and requests that got no response.
    pub errors: u64,
    /// Of the errors, those a fault made (an `Abort` with a 5xx, a `Drop`, a partition).
    #[serde(default)]
    pub injected_errors: u64,
    /// Requests per latency bucket: `LATENCY_BUCKETS_MS` bounds, then one above them all.
    pub latency_counts: Vec<u64>,
}

/// The request metrics of one HTTP route.
#[derive(Debug, Clone)]
pub struct HttpStats {
    by_class: [Counter; 6],
    injected_errors: Counter,
    seconds: Histogram,
    upstream_seconds: Histogram,
    latency: std::sync::Arc<LatencyCounts>,
}

impl HttpStats {
    /// Counts one request answered with a status of `class` (2 for 2xx; 0 when no response
    /// was sent) after `took`.
    /// `injected` when a fault made the answer (or the lack of one).
    pub fn request(&self, class: u16, injected: bool, took: std::time::Duration) {
        let i = if (1..=5).contains(&class) {
            usize::from(class)
        } else {
            0
        };
        self.by_class[i].inc();
        if injected && (i == 0 || i == 5) {
            self.injected_errors.inc();
        }
        self.seconds.observe(took.as_secs_f64());
        self.latency.observe(took);
    }

    /// The counters now.
    pub fn snapshot(&self) -> HttpStatsSnapshot {
        HttpStatsSnapshot {
            requests: self.by_class.iter().map(Counter::get).sum(),
            errors: self.by_class[0].get() + self.by_class[5].get(),
            injected_errors: self.injected_errors.get(),
            latency_counts: self.latency.counts(),
        }
    }

    /// Records how long the upstream took to answer with headers.
    pub fn upstream(&self, took: std::time::Duration) {
        self.upstream_seconds.observe(took.as_secs_f64());
    }
}

/// Every metric of one Switchboard.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    open: Family<RouteLabel, Gauge>,
    connections: Family<RouteLabel, Counter>,
    bytes: Family<BytesLabel, Counter>,
    dial_errors: Family<RouteLabel, Counter>,
    fired: Family<FaultLabel, Counter>,
    reloads: Family<ResultLabel, Counter>,
    requests: Family<RequestLabel, Counter>,
    injected_errors: Family<RouteLabel, Counter>,
    request_seconds: Family<RouteLabel, Histogram>,
    upstream_seconds: Family<RouteLabel, Histogram>,
    fired_by_kind: Family<KindLabel, Counter>,
    ended: Family<RouteLabel, Counter>,
    failed: Family<FailureLabel, Counter>,
    round_trip_seconds: Family<RouteLabel, Histogram>,
    commands: Family<CommandLabel, Counter>,
    command_seconds: Family<RouteLabel, Histogram>,
    protocol_errors: Family<RouteLabel, Counter>,
    datagrams: Family<DatagramLabel, Counter>,
    flows_refused: Family<RouteLabel, Counter>,
    unreachable: Family<RouteLabel, Counter>,
    dns_queries: Family<TransportLabel, Counter>,
    dns_answers: Family<AnswerLabel, Counter>,
    dns_unanswered: Family<FailureLabel, Counter>,
    dns_seconds: Family<RouteLabel, Histogram>,
    latency: LatencyByRoute,
    round_trips: LatencyByRoute,
}

/// Readable latency buckets per route, created on first use.
type LatencyByRoute =
    std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<LatencyCounts>>>;

fn latency_of(map: &LatencyByRoute, route: &str) -> std::sync::Arc<LatencyCounts> {
    map.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(route.to_string())
        .or_default()
        .clone()
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every Switchboard metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let open = Family::default();
        let connections = Family::default();
        let bytes = Family::default();
        let dial_errors = Family::default();
        let fired = Family::default();
        let reloads = Family::default();
        let requests = Family::default();
        let injected_errors = Family::default();
        let request_seconds = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let upstream_seconds = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let fired_by_kind = Family::default();
        let ended = Family::default();
        let failed = Family::default();
        let round_trip_seconds =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let commands = Family::default();
        let command_seconds = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let protocol_errors = Family::default();
        let datagrams = Family::default();
        let flows_refused = Family::default();
        let unreachable = Family::default();
        let dns_queries = Family::default();
        let dns_answers = Family::default();
        let dns_unanswered = Family::default();
        let dns_seconds = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "dns_queries",
            "Queries received by a Dns route, per route and transport (udp, tcp)",
            dns_queries.clone(),
        );
        registry.register(
            "dns_answers",
            "Answers a Dns route sent, per route, response code and source (upstream, or fault: made by a fault in the resolver's place)",
            dns_answers.clone(),
        );
        registry.register(
            "dns_unanswered",
            "Queries of a Dns route that got no answer, per route and reason (dropped: by a Drop fault; timeout: the upstream did not answer; overflowed: too many queries in flight)",
            dns_unanswered.clone(),
        );
        registry.register(
            "dns_query_duration_seconds",
            "Time from a query's arrival to its answer through a Dns route, faults included",
            dns_seconds.clone(),
        );
        registry.register(
            "datagrams",
            "Datagrams of a Udp route, per route, direction (upstream = towards the dependency) and result: received, forwarded, dropped (by a fault), duplicated (second copies), overflowed (lost by Switchboard: a full queue or flow table)",
            datagrams.clone(),
        );
        registry.register(
            "udp_flows_refused",
            "Datagrams from new clients of a Udp route dropped because its flow table was full",
            flows_refused.clone(),
        );
        registry.register(
            "udp_upstream_unreachable",
            "Datagrams a Udp route's upstream refused (ICMP port unreachable)",
            unreachable.clone(),
        );
        registry.register(
            "commands",
            "Commands (Redis) or statements (PostgreSQL) answered through a protocol route, per route and result: ok, error (from the server), injected_error, injected_nil, dropped",
            commands.clone(),
        );
        registry.register(
            "command_duration_seconds",
            "Time from a command's arrival to its answer through a protocol route, faults included",
            command_seconds.clone(),
        );
        registry.register(
            "protocol_errors",
            "Connections of a protocol route closed because a side sent bytes that are not the protocol",
            protocol_errors.clone(),
        );
        registry.register(
            "connections_open",
            "Connections open now, per route",
            open.clone(),
        );
        registry.register(
            "connections",
            "Connections accepted, per route",
            connections.clone(),
        );
        registry.register(
            "bytes",
            "Bytes forwarded, per route and direction (upstream = towards the dependency)",
            bytes.clone(),
        );
        registry.register(
            "upstream_dial_errors",
            "Upstream dials that failed, per route",
            dial_errors.clone(),
        );
        registry.register(
            "fault_fired",
            "Times a fault took hold on a connection, per fault",
            fired.clone(),
        );
        registry.register(
            "reloads",
            "Rule reloads, by result (ok or rejected)",
            reloads.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, per route and status class (none: no response was sent)",
            requests.clone(),
        );
        registry.register(
            "http_injected_errors",
            "HTTP requests a fault answered with a 5xx or left without a response, per route (also counted in http_requests)",
            injected_errors.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from request to response headers through an HTTP route, faults included",
            request_seconds.clone(),
        );
        registry.register(
            "http_upstream_duration_seconds",
            "Time the upstream took to answer with headers, per HTTP route",
            upstream_seconds.clone(),
        );
        registry.register(
            "faults_fired_by_kind",
            "Times faults took hold, per fault kind",
            fired_by_kind.clone(),
        );
        registry.register(
            "connections_ended",
            "Connections that ended with both sides closing cleanly, per route",
            ended.clone(),
        );
        registry.register(
            "connections_failed",
            "Connections that failed as their client saw it, per route and reason (fault, dial, broken, gave_up: held by a partition until the client hung up, shutdown)",
            failed.clone(),
        );
        registry.register(
            "tcp_round_trip_seconds",
            "Time from a client's bytes to the first byte of the answer delivered back, faults included, per TCP route",
            round_trip_seconds.clone(),
        );
        Metrics {
            registry,
            open,
            connections,
            bytes,
            dial_errors,
            fired,
            reloads,
            requests,
            injected_errors,
            request_seconds,
            upstream_seconds,
            fired_by_kind,
            ended,
            failed,
            round_trip_seconds,
            commands,
            command_seconds,
            protocol_errors,
            datagrams,
            flows_refused,
            unreachable,
            dns_queries,
            dns_answers,
            dns_unanswered,
            dns_seconds,
            latency: Default::default(),
            round_trips: Default::default(),
        }
    }

    /// The request metrics of one HTTP route, looked up once so that each request costs two
    /// atomic updates, not two labelled look-ups.
    pub fn http_route(&self, route: &str) -> HttpStats {
        let class = |status| {
            self.requests
                .get_or_create(&RequestLabel {
                    route: route.to_string(),
                    status,
                })
                .clone()
        };
        HttpStats {
            by_class: [
                class("none"),
                class("1xx"),
                class("2xx"),
                class("3xx"),
                class("4xx"),
                class("5xx"),
            ],
            injected_errors: self
                .injected_errors
                .get_or_create(&RouteLabel {
                    route: route.to_string(),
                })
                .clone(),
            seconds: self
                .request_seconds
                .get_or_create(&RouteLabel {
                    route: route.to_string(),
                })
                .clone(),
            upstream_seconds: self
                .upstream_seconds
                .get_or_create(&RouteLabel {
                    route: route.to_string(),
                })
                .clone(),
            latency: latency_of(&self.latency, route),
        }
    }

    /// The command metrics of one protocol route, looked up once per connection.
    pub fn command_route(&self, route: &str) -> CommandStats {
        let label = RouteLabel {
            route: route.to_string(),
        };
        CommandStats {
            by_outcome: CommandOutcome::ALL.map(|o| {
                self.commands
                    .get_or_create(&CommandLabel {
                        route: route.to_string(),
                        result: o.label(),
                    })
                    .clone()
            }),
            seconds: self.command_seconds.get_or_create(&label).clone(),
            latency: latency_of(&self.latency, route),
            protocol_errors: self.protocol_errors.get_or_create(&label).clone(),
        }
    }

    /// The datagram counters of one Udp route, looked up once per flow.
    pub fn datagram_route(&self, route: &str) -> DatagramStats {
        let stream = |direction| {
            DatagramOutcome::ALL.map(|o| {
                self.datagrams
                    .get_or_create(&DatagramLabel {
                        route: route.to_string(),
                        direction,
                        result: o.label(),
                    })
                    .clone()
            })
        };
        let label = RouteLabel {
            route: route.to_string(),
        };
        DatagramStats {
            upstream: stream("upstream"),
            downstream: stream("downstream"),
            flows_refused: self.flows_refused.get_or_create(&label).clone(),
            unreachable: self.unreachable.get_or_create(&label).clone(),
        }
    }

    /// The counters of one Dns route, looked up once when it starts.
    pub fn dns_route(&self, route: &str) -> DnsStats {
        let queries = |transport| {
            self.dns_queries
                .get_or_create(&TransportLabel {
                    route: route.to_string(),
                    transport,
                })
                .clone()
        };
        let answers = |source| {
            RCODES.map(|rcode| {
                self.dns_answers
                    .get_or_create(&AnswerLabel {
                        route: route.to_string(),
                        rcode,
                        source,
                    })
                    .clone()
            })
        };
        let unanswered = |reason| {
            self.dns_unanswered
                .get_or_create(&FailureLabel {
                    route: route.to_string(),
                    reason,
                })
                .clone()
        };
        DnsStats {
            queries_udp: queries("udp"),
            queries_tcp: queries("tcp"),
            upstream_answers: answers("upstream"),
            fault_answers: answers("fault"),
            dropped: unanswered("dropped"),
            upstream_timeouts: unanswered("timeout"),
            overflowed: unanswered("overflowed"),
            seconds: self
                .dns_seconds
                .get_or_create(&RouteLabel {
                    route: route.to_string(),
                })
                .clone(),
            latency: latency_of(&self.latency, route),
        }
    }

    /// The counters of `route`.
    pub fn route(&self, route: &str) -> RouteStats {
        let label = RouteLabel {
            route: route.to_string(),
        };
        let bytes = |direction| {
            self.bytes
                .get_or_create(&BytesLabel {
                    route: route.to_string(),
                    direction,
                })
                .clone()
        };
        RouteStats {
            open: self.open.get_or_create(&label).clone(),
            total: self.connections.get_or_create(&label).clone(),
            bytes_upstream: bytes("upstream"),
            bytes_downstream: bytes("downstream"),
            dial_errors: self.dial_errors.get_or_create(&label).clone(),
            ended: self.ended.get_or_create(&label).clone(),
            failed: Failure::ALL.map(|why| {
                self.failed
                    .get_or_create(&FailureLabel {
                        route: route.to_string(),
                        reason: why.label(),
                    })
                    .clone()
            }),
            round_trip_seconds: self.round_trip_seconds.get_or_create(&label).clone(),
            round_trips: latency_of(&self.round_trips, route),
        }
    }

    /// Counts one firing of `fault`, of kind `kind`: it took hold on a connection (TCP) or a
    /// request (HTTP).
    pub fn fault_fired(&self, fault: &str, kind: &'static str) {
        self.fired
            .get_or_create(&FaultLabel {
                fault: fault.to_string(),
            })
            .inc();
        self.fired_by_kind.get_or_create(&KindLabel { kind }).inc();
    }

    /// How many times `fault` took hold.
    pub fn times_fired(&self, fault: &str) -> u64 {
        self.fired
            .get_or_create(&FaultLabel {
                fault: fault.to_string(),
            })
            .get()
    }

    /// Counts a reload, accepted or rejected.
    pub fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "rejected" };
        self.reloads.get_or_create(&ResultLabel { result }).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
