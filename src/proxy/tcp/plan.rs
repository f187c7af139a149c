//! The faults that hold on one connection, recomputed from each new rule set.
//!
//! Which faults apply is decided once per connection per fault from the seeded draw, so a
//! connection keeps its choice across reloads. A fault that stays active keeps the moment it
//! took hold, which is what Timeout, ResetPeer and LimitData count from.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;

use crate::faults::{Bandwidth, FaultKind, PartitionMode, Scope, Slicer, rng};
use crate::proxy::caps::Permit;
use crate::proxy::gate::Gate;
use crate::rules::{Direction, Fault};
use crate::store::RuleSet;
use crate::telemetry::Metrics;

/// One fault in force on a connection.
#[derive(Debug)]
struct ActiveFault {
    fault: Arc<Fault>,
    since: Instant,
    /// Bytes passed on the fault's stream since it took hold (for LimitData).
    passed: u64,
    /// The connection's place under the fault's `max_active`, held while it is in force.
    permit: Option<Permit>,
}

/// How a connection must end because of a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Close both sides (FIN).
    Close(&'static str),
    /// Reset both sides (RST).
    Reset(&'static str),
}

/// The faults in force on one connection.
#[derive(Debug)]
pub struct Plan {
    route: Arc<str>,
    connection: u64,
    seed: u64,
    opened: Instant,
    active: Vec<ActiveFault>,
    route_gone: bool,
    gate: Gate,
}

impl Plan {
    /// A plan with nothing in force yet.
    pub fn new(route: Arc<str>, connection: u64, seed: u64, opened: Instant) -> Self {
        Plan {
            route,
            connection,
            seed,
            opened,
            active: Vec::new(),
            route_gone: false,
            gate: Gate::default(),
        }
    }

    /// The RNG for this connection's per-chunk draws.
    pub fn chunk_rng(&self) -> StdRng {
        rng::connection_rng(self.seed, &self.route, self.connection)
    }

    /// The same plan for a connection whose client and caps `gate` holds.
    pub fn with_gate(mut self, gate: Gate) -> Self {
        self.gate = gate;
        self
    }

    /// The connection's client and where capped faults are counted.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// Recomputes what is in force from `rules`, counting faults that newly took hold.
    pub fn refresh(&mut self, rules: &RuleSet, now: Instant, metrics: &Metrics) {
        self.route_gone = rules.route(&self.route).is_none_or(|r| !r.enabled);
        let mut next = Vec::new();
        for fault in rules.faults_for(&self.route) {
            // Faults that act on single commands are decided per command, not here.
            let per_command = matches!(fault.kind.scope(), Scope::Request | Scope::Command);
            if per_command
                || !fault.enabled
                || !self.gate.client_allowed(fault)
                || !rng::decide(
                    self.seed,
                    &self.route,
                    &fault.name,
                    self.connection,
                    fault.probability,
                )
            {
                continue;
            }
            let kept = self.active.iter().position(|a| {
                a.fault.name == fault.name
                    && std::mem::discriminant(&a.fault.kind) == std::mem::discriminant(&fault.kind)
            });
            let (since, passed, permit) = match kept {
                Some(i) => {
                    let a = &mut self.active[i];
                    (a.since, a.passed, a.permit.take())
                }
                None => {
                    let Some(permit) = self.gate.admit(fault) else {
                        continue;
                    };
                    metrics.fault_fired(&fault.name, fault.kind.name());
                    tracing::debug!(fault = %fault.name, "fault took hold");
                    (now, 0, permit)
                }
            };
            // A fault that gained a cap while in force takes a place now, or lets go.
            let permit = match (permit, fault.max_active) {
                (None, Some(_)) => match self.gate.admit(fault) {
                    Some(p) => p,
                    None => continue,
                },
                (permit, Some(_)) => permit,
                (_, None) => None,
            };
            next.push(ActiveFault {
                fault: Arc::clone(fault),
                since,
                passed,
                permit,
            });
        }
        self.active = next;
    }

    fn kinds(&self) -> impl Iterator<Item = &FaultKind> {
        self.active.iter().map(|a| &a.fault.kind)
    }

    fn on_stream(&self, stream: Direction) -> impl Iterator<Item = &ActiveFault> {
        self.active.iter().filter(move |a| {
            a.fault.kind.scope() == Scope::Stream && a.fault.direction.covers(stream)
        })
    }

    /// The partition in force, if any; the first one listed wins.
    pub fn partition(&self) -> Option<PartitionMode> {
        self.kinds().find_map(|k| match k {
            FaultKind::Partition(p) => Some(p.mode),
            _ => None,
        })
    }

    /// Whether traffic is held in both directions.
    pub fn blackholed(&self) -> bool {
        self.partition() == Some(PartitionMode::Blackhole)
    }

    /// The total added dial time.
    pub fn connect_delay(&self) -> Duration {
        self.kinds()
            .map(|k| match k {
                FaultKind::ConnectDelay(d) => Duration::from_millis(d.ms),
                _ => Duration::ZERO,
            })
            .sum()
    }

    /// The delay for one chunk on `stream`, summed over latency faults; `None` when no
    /// latency fault is in force (so the stream can take the direct path).
    pub fn latency(&self, stream: Direction, rng: &mut StdRng) -> Option<Duration> {
        let mut total = None;
        for a in self.on_stream(stream) {
            if let FaultKind::Latency(l) = &a.fault.kind {
                *total.get_or_insert(Duration::ZERO) += l.sample(rng);
            }
        }
        total
    }

    /// A fingerprint of the latency faults on `stream`, to tell whether queued chunks need
    /// new due times after a change.
    pub fn latency_key(&self, stream: Direction) -> Vec<(u64, u64)> {
        self.on_stream(stream)
            .filter_map(|a| match &a.fault.kind {
                FaultKind::Latency(l) => Some((l.ms, l.jitter_ms)),
                _ => None,
            })
            .collect()
    }

    /// The tightest bandwidth limit on `stream`, with the fault it comes from (a shared
    /// budget is counted by the fault's name).
    pub fn bandwidth(&self, stream: Direction) -> Option<(Bandwidth, &Arc<Fault>)> {
        self.on_stream(stream)
            .filter_map(|a| match &a.fault.kind {
                FaultKind::Bandwidth(b) => Some((*b, &a.fault)),
                _ => None,
            })
            .min_by_key(|(b, _)| b.bytes_per_sec)
    }

    /// The first slicer on `stream`.
    pub fn slicer(&self, stream: Direction) -> Option<Slicer> {
        self.on_stream(stream).find_map(|a| match &a.fault.kind {
            FaultKind::Slicer(s) => Some(*s),
            _ => None,
        })
    }

    /// Whether no fault touches `stream`'s bytes: they may move without passing through here.
    pub fn passes_untouched(&self, stream: Direction) -> bool {
        !self.paces(stream)
            && !self.drops(stream)
            && self.limit_remaining(stream).is_none()
            && !self.blackholed()
    }

    /// Whether a fault shapes the timing of `stream`'s bytes.
    pub fn paces(&self, stream: Direction) -> bool {
        self.on_stream(stream).any(|a| {
            matches!(
                a.fault.kind,
                FaultKind::Latency(_) | FaultKind::Bandwidth(_) | FaultKind::Slicer(_)
            )
        })
    }

    /// How long the end of `stream` is held before it is passed on.
    pub fn slow_close(&self, stream: Direction) -> Duration {
        self.on_stream(stream)
            .map(|a| match &a.fault.kind {
                FaultKind::SlowClose(s) => Duration::from_millis(s.ms),
                _ => Duration::ZERO,
            })
            .sum()
    }

    /// Whether `stream`'s data is dropped (a Timeout is in force on it).
    pub fn drops(&self, stream: Direction) -> bool {
        self.on_stream(stream)
            .any(|a| matches!(a.fault.kind, FaultKind::Timeout(_)))
    }

    /// How many more bytes may pass on `stream` before a LimitData closes the connection.
    pub fn limit_remaining(&self, stream: Direction) -> Option<u64> {
        self.on_stream(stream)
            .filter_map(|a| match &a.fault.kind {
                FaultKind::LimitData(l) => Some(l.bytes.saturating_sub(a.passed)),
                _ => None,
            })
            .min()
    }

    /// Records bytes passed on `stream`, for LimitData.
    pub fn record_passed(&mut self, stream: Direction, n: usize) {
        for a in self.active.iter_mut() {
            if matches!(a.fault.kind, FaultKind::LimitData(_)) && a.fault.direction.covers(stream) {
                a.passed += n as u64;
            }
        }
    }

    /// The earliest moment a fault ends the connection, and how.
    pub fn deadline(&self) -> Option<(Instant, Cut)> {
        self.active
            .iter()
            .filter_map(|a| match &a.fault.kind {
                FaultKind::CutAfter(c) => Some((
                    self.opened + Duration::from_millis(c.ms),
                    Cut::Close("cut after"),
                )),
                FaultKind::Timeout(t) if t.ms > 0 => {
                    Some((a.since + Duration::from_millis(t.ms), Cut::Close("timeout")))
                }
                FaultKind::ResetPeer(r) => Some((
                    a.since + Duration::from_millis(r.after_ms),
                    Cut::Reset("reset peer"),
                )),
                _ => None,
            })
            .min_by_key(|(at, _)| *at)
    }

    /// Whether the route was removed or disabled: its connections close, as Toxiproxy's do
    /// when a proxy goes down.
    pub fn route_gone(&self) -> bool {
        self.route_gone
    }

    /// How a partition ends an open connection, if one is in force and ends it.
    pub fn partition_cut(&self) -> Option<Cut> {
        match self.partition()? {
            PartitionMode::Refuse => Some(Cut::Close("partition")),
            PartitionMode::Reset => Some(Cut::Reset("partition")),
            PartitionMode::Blackhole => None,
        }
    }
}
