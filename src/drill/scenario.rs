//! The drill file format: what to probe, what to inject and when, and when to give up.
//! Field names here are the public file format (RON under `rules/shop/drills/`, or the same
//! shape as JSON in `POST /v1/drills`). Durations are written as `"10s"`, `"250ms"`, `"1m"`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::rules::Fault;

/// One game-day drill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Shown in the progress display and the report.
    pub name: String,
    /// What the drill rehearses, for the report.
    #[serde(default)]
    pub description: String,
    /// How long the steady state must be seen before anything is injected.
    #[serde(with = "humantime_serde", default = "default_baseline")]
    pub baseline: Duration,
    /// How long after the faults are lifted to wait for every probe to recover.
    #[serde(with = "humantime_serde", default = "default_observe")]
    pub observe: Duration,
    /// The steady-state hypothesis, one probe per thing the users of the system see.
    pub probes: Vec<Probe>,
    /// Conditions that roll everything back at once.
    #[serde(default)]
    pub abort: Vec<Abort>,
    /// What to do to the faults, at offsets from the moment injection starts.
    pub steps: Vec<Step>,
    /// Other Switchboards the drill acts on, by the name its steps and `Route` probes give
    /// them: a control URL (`"${ORDERS_SWITCHBOARD}"`, `"http://orders:8474"`) or
    /// `"dns:NAME:PORT"`, which must resolve to one Switchboard. Without a target, a step acts
    /// on the Switchboard the drill was started against.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub targets: BTreeMap<String, String>,
}

fn default_baseline() -> Duration {
    Duration::from_secs(10)
}

fn default_observe() -> Duration {
    Duration::from_secs(60)
}

/// One thing sampled over and over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// Unique within the drill.
    pub name: String,
    /// What one sample does.
    pub check: Check,
    /// Time between samples.
    #[serde(with = "humantime_serde", default = "default_interval")]
    pub interval: Duration,
    /// A sample that takes longer fails.
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub timeout: Duration,
    /// What "healthy" means for this probe.
    #[serde(default)]
    pub steady: Steady,
    /// The reduced mode the plan expects while the faults are in force; absent when the
    /// probe should stay healthy through the drill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded: Option<Degraded>,
    /// The probe fails the drill if it takes longer than this to recover.
    #[serde(
        with = "humantime_serde",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub recover_within: Option<Duration>,
    /// The recovery time objective: the service must be back (its steady state holding to
    /// the end) within this of the injection, whether it came back through a failover while
    /// the faults were in force or after they were lifted. The report gives the measured RTO
    /// against it, and the probe fails when it is missed; without a `degraded` plan, an outage
    /// within the RTO does not fail the probe.
    #[serde(
        with = "humantime_serde",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub rto: Option<Duration>,
    /// The recovery point objective of a `Durability` probe: the acknowledged writes lost
    /// may span at most this. The probe fails when more is lost.
    #[serde(
        with = "humantime_serde",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub rpo: Option<Duration>,
    /// The faults this probe is meant to feel. The report's chart shades their windows on
    /// the probe's panel; every fault's windows show in the lanes above it either way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub affected_by: Vec<String>,
}

fn default_interval() -> Duration {
    Duration::from_millis(250)
}

fn default_timeout() -> Duration {
    Duration::from_secs(1)
}

/// What one sample of a probe does. Addresses may name environment variables as `${NAME}`
/// or `${NAME:-default}`, for ports that Docker picks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Check {
    /// An HTTP request; it succeeds when the status is expected and the body holds the text.
    Http {
        /// `http://` or `https://` URL.
        url: String,
        /// The method.
        #[serde(default = "default_method")]
        method: String,
        /// Statuses that count as success; any 2xx when empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        expect_status: Vec<u16>,
        /// Text the body must contain.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body_contains: Option<String>,
    },
    /// A TCP connect; it succeeds when the connection is accepted, and, with `send`, when
    /// the answer to those bytes arrives (and holds `expect`). Through a proxy, which accepts
    /// before it dials, only a round trip shows whether the dependency behind is reachable.
    Tcp {
        /// `host:port`.
        addr: String,
        /// Bytes to send once connected (`\r\n` and the like as RON escapes).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        send: Option<String>,
        /// Text the answer must contain; without it, any answer of at least one byte will do.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect: Option<String>,
    },
    /// Switchboard's own counters of one of its routes, read through the control endpoint:
    /// each sample covers the traffic since the previous one. It succeeds when the share of
    /// failures stays at or under `max_error_rate`: on HTTP routes 5xx answers and requests
    /// that got no response; on TCP routes connections refused, reset or cut (by a fault or
    /// the upstream), failed dials, and clients that gave up on a held connection. Its
    /// latency is the interval's p99: of requests (HTTP) or of round trips (TCP). A reading
    /// with no traffic since the previous one fails, saying so: it shows nothing of health.
    Route {
        /// The route's name.
        route: String,
        /// The highest share of errors a sample allows.
        #[serde(default = "default_max_error_rate")]
        max_error_rate: f64,
        /// The drill target whose route it is; the drill's own Switchboard when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
    },
    /// Writes throughout the drill, keeping every write the app acknowledged; once the drill
    /// is over, reads each one back. A sample succeeds when its write was acknowledged. The
    /// report counts the acknowledged writes that were lost, the time span they cover (the
    /// measured RPO) and ids acknowledged twice.
    Durability {
        /// One write per sample.
        write: DurableWrite,
        /// How one acknowledged write is read back.
        read: DurableRead,
        /// When the writes are read back.
        #[serde(default, skip_serializing_if = "ReadBack::is_default")]
        read_back: ReadBack,
    },
}

/// When a `Durability` probe reads its acknowledged writes back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadBack {
    /// Once the faults are lifted and the drill has observed the recovery.
    #[default]
    AfterRecovery,
    /// When the fault phase ends, before the faults are lifted: what survived in the system
    /// the failover left, before lifting them fails back (a name pointing back at the
    /// primary region, say).
    BeforeRestore,
}

impl ReadBack {
    fn is_default(&self) -> bool {
        *self == ReadBack::default()
    }
}

/// The write of a `Durability` probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum DurableWrite {
    /// An HTTP request; a 2xx answer whose body gives an id acknowledges the write.
    Http {
        /// `http://` or `https://` URL.
        url: String,
        /// The method.
        #[serde(default = "default_write_method")]
        method: String,
        /// The request body; `${n}` stands for the write's number in the drill.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
        /// The body's content type.
        #[serde(default = "default_content_type")]
        content_type: String,
        /// Where the acknowledgement gives the write's id.
        id: IdFrom,
    },
}

/// Where an acknowledgement gives the id of the write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum IdFrom {
    /// A JSON pointer into the answer's body (`"/id"`, `"/order/id"`).
    Json(String),
    /// A regular expression over the answer's body; its first group (or the whole match).
    Regex(String),
}

/// The read-back of a `Durability` probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum DurableRead {
    /// An HTTP GET; `${id}` in the URL stands for the write's id. A status in
    /// `expect_status` (any 2xx when empty) shows the write is there, 404 or 410 that it is
    /// lost; anything else, after three tries, leaves it unverified.
    Http {
        /// `http://` or `https://` URL with `${id}`.
        url: String,
        /// Statuses that show the write is there.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        expect_status: Vec<u16>,
    },
}

fn default_write_method() -> String {
    "POST".into()
}

fn default_content_type() -> String {
    "application/json".into()
}

fn default_max_error_rate() -> f64 {
    0.01
}

fn default_method() -> String {
    "GET".into()
}

/// The steady-state condition: over every window, this share of samples succeeds and the
/// 99th percentile of their latency stays under the bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Steady {
    /// Share of samples that must succeed, 0.0..=1.0.
    #[serde(default = "default_min_success")]
    pub min_success: f64,
    /// The window the share is taken over.
    #[serde(with = "humantime_serde", default = "default_window")]
    pub window: Duration,
    /// Upper bound of the window's 99th percentile latency.
    #[serde(
        with = "humantime_serde",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_p99: Option<Duration>,
}

impl Default for Steady {
    fn default() -> Self {
        Steady {
            min_success: default_min_success(),
            window: default_window(),
            max_p99: None,
        }
    }
}

fn default_min_success() -> f64 {
    0.99
}

fn default_window() -> Duration {
    Duration::from_secs(5)
}

/// The reduced mode a probe is expected to show while the faults are in force: HTTP answers
/// with one of these statuses (and this text), e.g. 503 "temporarily unavailable".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Degraded {
    /// Statuses of the reduced mode.
    pub status: Vec<u16>,
    /// Text the reduced mode's body holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// Share of samples, from the moment the mode is entered until the faults are lifted,
    /// that must show it.
    #[serde(default = "default_min_share")]
    pub min_share: f64,
}

fn default_min_share() -> f64 {
    0.95
}

/// Roll back when a probe's success over the last `for` stays below `below`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Abort {
    /// The probe watched.
    pub probe: String,
    /// The share of successful samples under which the drill stops.
    pub below: f64,
    /// How long the share must stay under it.
    #[serde(rename = "for", with = "humantime_serde")]
    pub sustained: Duration,
}

/// One step of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Offset from the start of injection.
    #[serde(with = "humantime_serde", default)]
    pub at: Duration,
    /// The drill target it acts on (a key of the drill's `targets`); the drill's own
    /// Switchboard when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// What it does.
    pub action: Action,
}

/// What a step does to the faults. Every change is undone by the final restore, which always
/// runs: faults the drill added are removed, the others get back their earlier definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Action {
    /// Switch a fault on.
    Enable(String),
    /// Switch a fault off.
    Disable(String),
    /// Add a fault, written as in a rules file.
    Add(Fault),
    /// Change a fault: the same fields `PATCH /v1/faults/{name}` takes, e.g.
    /// `Patch(fault: "slow", kind: Some(Latency(ms: 300)))`.
    Patch {
        /// The fault.
        fault: String,
        /// Switch on or off.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        enabled: Option<bool>,
        /// New probability.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        probability: Option<f64>,
        /// New kind and parameters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<crate::faults::FaultKind>,
    },
    /// Move one numeric parameter of a fault's kind from `from` to `to` over `over`, in
    /// steps `every` apart (latency 0→500 ms over 60 s). The fault is switched on first.
    Ramp {
        /// The fault.
        fault: String,
        /// The parameter of its kind, e.g. `ms` or `rate`.
        param: String,
        /// The first value.
        from: f64,
        /// The last value.
        to: f64,
        /// How long the ramp takes.
        #[serde(with = "humantime_serde")]
        over: Duration,
        /// Time between changes.
        #[serde(with = "humantime_serde", default = "default_ramp_every")]
        every: Duration,
    },
    /// Switch a fault on for `on`, off for `off`, and again, until `for` has passed; it ends
    /// switched off.
    Flap {
        /// The fault.
        fault: String,
        /// How long each on period lasts.
        #[serde(with = "humantime_serde")]
        on: Duration,
        /// How long each off period lasts.
        #[serde(with = "humantime_serde")]
        off: Duration,
        /// How long the flapping goes on.
        #[serde(rename = "for", with = "humantime_serde")]
        lasting: Duration,
    },
    /// Keep things as they are for this long (extends the fault phase).
    Hold(#[serde(with = "humantime_serde")] Duration),
}

impl Action {
    /// The fault the step changes; none for a hold.
    pub fn fault(&self) -> Option<&str> {
        match self {
            Action::Enable(name) | Action::Disable(name) => Some(name),
            Action::Add(fault) => Some(&fault.name),
            Action::Patch { fault, .. }
            | Action::Ramp { fault, .. }
            | Action::Flap { fault, .. } => Some(fault),
            Action::Hold(_) => None,
        }
    }
}

fn default_ramp_every() -> Duration {
    Duration::from_secs(1)
}
