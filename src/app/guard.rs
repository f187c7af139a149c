//! Route guards at run time: one task samples every guarded route's outcome counters and, when
//! the share of failures over the guard's window goes above its `max_error_rate`, switches every
//! fault on the route off, announces a `guarded` event and keeps the trip for `/v1/status`.
//!
//! The counters are the route's cumulative ones (the hot path pays nothing more); the window
//! is the difference between the newest sample and the oldest one still inside it.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::Switchboard;
use crate::rules::{Guard, Protocol, Route};
use crate::telemetry::{EventKind, EventSource, Failure, Metrics, timestamp};

/// How often guarded routes are sampled; a window is at least five of these.
const TICK: Duration = Duration::from_millis(100);

/// Outcomes counted since start: all of them, those that failed on their own, and those a
/// fault made fail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub total: u64,
    pub failed: u64,
    pub injected: u64,
}

impl Tally {
    /// What the route's clients saw: HTTP requests (5xx and no response fail), commands or
    /// statements (server errors fail), connections (failed dials and sockets broken by a peer
    /// fail). A route's failed dials count on every protocol.
    pub fn of(metrics: &Metrics, route: &Route) -> Tally {
        let conns = metrics.route(&route.name);
        let dial = conns.failed_by(Failure::Dial);
        match route.protocol {
            Protocol::Http => {
                let http = metrics.http_route(&route.name).snapshot();
                Tally {
                    total: http.requests,
                    failed: http.errors.saturating_sub(http.injected_errors),
                    injected: http.injected_errors,
                }
            }
            Protocol::Redis | Protocol::Postgres => {
                let commands = metrics.command_route(&route.name).snapshot();
                Tally {
                    total: commands.commands + dial,
                    failed: commands.errors + dial,
                    injected: commands.injected + commands.dropped,
                }
            }
            Protocol::Udp => {
                // A datagram lost on the way shows to nobody; what a client can tell is an
                // upstream that refuses (ICMP port unreachable) or cannot be resolved.
                let datagrams = metrics.datagram_route(&route.name).snapshot();
                Tally {
                    total: datagrams.upstream.received,
                    failed: datagrams.unreachable + dial,
                    injected: datagrams.upstream.dropped + datagrams.downstream.dropped,
                }
            }
            Protocol::Dns => {
                let dns = metrics.dns_route(&route.name).snapshot();
                Tally {
                    total: dns.queries,
                    failed: dns.server_errors + dns.upstream_timeouts,
                    injected: dns.injected + dns.dropped,
                }
            }
            Protocol::Tcp => {
                let snapshot = conns.snapshot();
                let stopped = conns.failed_by(Failure::Shutdown);
                Tally {
                    total: (snapshot.ended + snapshot.failed).saturating_sub(stopped),
                    failed: dial + conns.failed_by(Failure::Broken),
                    injected: conns.failed_by(Failure::Fault) + conns.failed_by(Failure::GaveUp),
                }
            }
        }
    }

    fn since(self, earlier: Tally) -> Tally {
        Tally {
            total: self.total.saturating_sub(earlier.total),
            failed: self.failed.saturating_sub(earlier.failed),
            injected: self.injected.saturating_sub(earlier.injected),
        }
    }
}

/// What a guard makes of a window's outcomes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judgement {
    /// The outcomes it counts: without `count_injected`, those a fault made fail are left out
    /// altogether, so that injected failures neither trip it nor dilute real ones.
    pub outcomes: u64,
    /// The share of them that failed; none while there are none.
    pub rate: Option<f64>,
    /// Whether there are enough of them and the rate is over what the guard allows.
    pub over: bool,
}

/// Judges one window's outcomes against `guard`.
pub fn judge(guard: &Guard, window: Tally) -> Judgement {
    let (failed, outcomes) = if guard.count_injected {
        (window.failed + window.injected, window.total)
    } else {
        (window.failed, window.total.saturating_sub(window.injected))
    };
    let rate = (outcomes > 0).then(|| failed.min(outcomes) as f64 / outcomes as f64);
    let over = outcomes >= guard.min_requests && rate.is_some_and(|r| r > guard.max_error_rate);
    Judgement {
        outcomes,
        rate,
        over,
    }
}

/// A guard as `/v1/status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct GuardInfo {
    /// The route it guards.
    pub route: String,
    /// What it allows.
    pub max_error_rate: f64,
    /// Its window (`30s`).
    pub window: String,
    /// The failure rate over the window now; none while nothing passed.
    pub error_rate: Option<f64>,
    /// Outcomes in the window now.
    pub outcomes: u64,
    /// The last time it tripped, if it has.
    pub tripped: Option<Trip>,
}

/// One trip of a guard.
#[derive(Debug, Clone, Serialize)]
pub struct Trip {
    /// When (RFC 3339).
    pub at: String,
    /// The rate that tripped it.
    pub error_rate: f64,
    /// The faults it switched off.
    pub lifted: Vec<String>,
}

/// One guarded route's samples, newest last.
#[derive(Debug, Default)]
struct History {
    samples: VecDeque<(Instant, Tally)>,
}

impl History {
    /// Adds `now`'s sample and gives the window's outcomes.
    fn push(&mut self, now: Instant, tally: Tally, window: Duration) -> Tally {
        self.samples.push_back((now, tally));
        // Keep one sample at or before the window's start, as its baseline.
        while self.samples.len() > 1
            && self
                .samples
                .get(1)
                .is_some_and(|(at, _)| now.duration_since(*at) >= window)
        {
            self.samples.pop_front();
        }
        let base = self.samples.front().map_or(tally, |(_, t)| *t);
        tally.since(base)
    }
}

/// Samples the guarded routes until the process stops.
pub(super) async fn guard_loop(app: Switchboard) {
    let stop = app.stopping();
    let mut rules = app.store().subscribe();
    let mut histories: HashMap<String, History> = HashMap::new();
    loop {
        let guarded = rules
            .borrow_and_update()
            .routes()
            .iter()
            .any(|r| r.guard.is_some());
        if !guarded {
            histories.clear();
            app.set_guard_views(Vec::new());
            // Nothing to watch until a rule change brings a guard.
            tokio::select! {
                () = stop.cancelled() => return,
                changed = rules.changed() => if changed.is_err() { return },
            }
            continue;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(TICK) => {}
        }
        app.sample_guards(&mut histories).await;
    }
}

impl Switchboard {
    async fn sample_guards(&self, histories: &mut HashMap<String, History>) {
        let rules = self.store().current();
        let now = Instant::now();
        histories.retain(|name, _| rules.route(name).is_some_and(|r| r.guard.is_some()));
        let mut views = Vec::new();
        for route in rules.routes() {
            let Some(guard) = route.guard else {
                continue;
            };
            let tally = Tally::of(self.metrics(), route);
            let history = histories.entry(route.name.clone()).or_default();
            let window = history.push(now, tally, guard.window);
            let Judgement {
                outcomes,
                rate,
                over,
            } = judge(&guard, window);
            let on = rules.faults_for(&route.name).any(|f| f.enabled);
            let mut tripped = self.last_trip(&route.name);
            if over && on {
                let lifted = self.lift(&route.name).await;
                let error_rate = rate.unwrap_or(0.0);
                tracing::warn!(route = %route.name, error_rate, lifted = ?lifted, "guard tripped: faults lifted");
                self.inner.events.emit(
                    EventSource::Guard,
                    EventKind::Guarded {
                        route: route.name.clone(),
                        error_rate,
                        max_error_rate: guard.max_error_rate,
                        outcomes,
                        window: humantime::format_duration(guard.window).to_string(),
                        lifted: lifted.clone(),
                    },
                );
                tripped = Some(Trip {
                    at: timestamp(SystemTime::now()),
                    error_rate,
                    lifted,
                });
                // What tripped it must not trip it again once someone switches a fault back on.
                history.samples.clear();
                history.samples.push_back((now, tally));
            }
            views.push(GuardInfo {
                route: route.name.clone(),
                max_error_rate: guard.max_error_rate,
                window: humantime::format_duration(guard.window).to_string(),
                error_rate: rate,
                outcomes,
                tripped,
            });
        }
        self.set_guard_views(views);
    }

    /// Switches off every enabled fault on `route`; says which.
    async fn lift(&self, route: &str) -> Vec<String> {
        let mut state = self.inner.state.lock().await;
        let rules = self.store().current();
        let on: Vec<String> = rules
            .faults_for(route)
            .filter(|f| f.enabled)
            .map(|f| f.name.clone())
            .collect();
        if on.is_empty() {
            return on;
        }
        self.turn_off(&mut state, &rules, &on, EventSource::Guard);
        on
    }

    fn last_trip(&self, route: &str) -> Option<Trip> {
        self.guard_views()
            .into_iter()
            .find(|v| v.route == route)
            .and_then(|v| v.tripped)
    }

    fn set_guard_views(&self, views: Vec<GuardInfo>) {
        *self
            .inner
            .guards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = views;
    }

    /// Every guard with its rate now and its last trip.
    pub fn guard_views(&self) -> Vec<GuardInfo> {
        self.inner
            .guards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::GuardAction;

    fn guard(max: f64, count_injected: bool) -> Guard {
        Guard {
            max_error_rate: max,
            window: Duration::from_secs(1),
            then: GuardAction::Lift,
            count_injected,
            min_requests: 10,
        }
    }

    fn tally(total: u64, failed: u64, injected: u64) -> Tally {
        Tally {
            total,
            failed,
            injected,
        }
    }

    #[test]
    fn judging_a_window() {
        let cases = [
            (guard(0.5, false), tally(0, 0, 0), 0, None, false),
            (guard(0.5, false), tally(9, 9, 0), 9, Some(1.0), false),
            (guard(0.5, false), tally(10, 5, 0), 10, Some(0.5), false),
            (guard(0.5, false), tally(10, 6, 0), 10, Some(0.6), true),
            (guard(0.5, false), tally(10, 0, 10), 0, None, false),
            (guard(0.5, false), tally(30, 10, 10), 20, Some(0.5), false),
            (guard(0.5, false), tally(30, 11, 10), 20, Some(0.55), true),
            (guard(0.5, true), tally(10, 0, 10), 10, Some(1.0), true),
            (guard(0.0, false), tally(10, 1, 0), 10, Some(0.1), true),
        ];
        for (g, t, outcomes, rate, over) in cases {
            assert_eq!(
                judge(&g, t),
                Judgement {
                    outcomes,
                    rate,
                    over
                },
                "{t:?} against {g:?}"
            );
        }
    }

    #[test]
    fn the_window_keeps_one_baseline_before_it() {
        let start = Instant::now();
        let mut h = History::default();
        let second = Duration::from_secs(1);
        assert_eq!(h.push(start, tally(10, 0, 0), second), tally(0, 0, 0));
        let at = |ms| start + Duration::from_millis(ms);
        assert_eq!(h.push(at(500), tally(20, 5, 0), second), tally(10, 5, 0));
        assert_eq!(h.push(at(1000), tally(30, 5, 0), second), tally(20, 5, 0));
        // The first sample is now a full window old; the one at 500 ms is the baseline.
        assert_eq!(h.push(at(1500), tally(40, 5, 0), second), tally(20, 0, 0));
        assert_eq!(h.samples.len(), 3);
    }
}
