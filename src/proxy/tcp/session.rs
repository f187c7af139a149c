//! Both directions of one open connection, run in one loop in one task.
//!
//! The loop waits on socket readiness, on the next due time, and on rule-set changes, so a
//! fault enabled while a connection sits idle reaches it at once, not at its next byte.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use rand::rngs::StdRng;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::plan::{Cut, Plan};
use super::stream::Stream;
use crate::rules::Direction;
use crate::store::RuleSet;
use crate::telemetry::{Metrics, RouteStats};

/// How a session ended.
#[derive(Debug)]
pub enum Ending {
    /// Both sides closed their streams and every byte was delivered.
    Finished,
    /// A fault ended the connection.
    Cut(Cut),
    /// A socket failed (a peer reset, say); the side that failed.
    Broken(Direction, io::Error),
    /// The rule store went away: the process is shutting down.
    Stopped,
}

/// An open connection between a client and its upstream.
pub struct Session<'a> {
    pub client: &'a TcpStream,
    pub upstream: &'a TcpStream,
    pub plan: Plan,
    pub rng: StdRng,
    pub stats: &'a RouteStats,
    pub metrics: &'a Metrics,
}

impl Session<'_> {
    /// Runs until both directions are done or something ends the connection.
    pub async fn run(mut self, rules: &mut watch::Receiver<Arc<RuleSet>>) -> Ending {
        let mut up = Stream::new(Direction::Upstream);
        let mut down = Stream::new(Direction::Downstream);
        let mut turns = RoundTrips::default();
        // One sleep for the whole session, reset each pass: a timer entry per pass would
        // pile up for as long as its deadline lies ahead (a `CutAfter(1h)`, say).
        let mut timer = crate::proxy::timer::sleep_until(Instant::now());
        loop {
            let now = Instant::now();
            if let Some((at, cut)) = self.plan.deadline()
                && at <= now
            {
                return Ending::Cut(cut);
            }
            if self.plan.route_gone() {
                return Ending::Cut(Cut::Close("route disabled"));
            }
            if let Some(cut) = self.plan.partition_cut() {
                return Ending::Cut(cut);
            }
            if let Err(e) = up.flush(self.upstream, &self.plan, &mut self.rng, self.stats, now) {
                return Ending::Broken(Direction::Upstream, e);
            }
            if let Err(e) = down.flush(self.client, &self.plan, &mut self.rng, self.stats, now) {
                return Ending::Broken(Direction::Downstream, e);
            }
            // After the flushes, so a held answer written just now ends its turn now.
            turns.observe(&up, &down, now, self.stats);
            if up.limit_spent() || down.limit_spent() {
                return Ending::Cut(Cut::Close("limit data"));
            }
            if up.done() && down.done() {
                return Ending::Finished;
            }

            let held = self.plan.blackholed();
            let wake = [
                self.plan.deadline().map(|(at, _)| at),
                up.wake(&self.plan),
                down.wake(&self.plan),
            ]
            .into_iter()
            .flatten()
            .min();
            if let Some(at) = wake {
                timer.reset(at);
            }

            tokio::select! {
                changed = rules.changed() => {
                    if changed.is_err() {
                        return Ending::Stopped;
                    }
                    let snapshot = rules.borrow_and_update().clone();
                    self.apply(&snapshot, &mut up, &mut down);
                }
                ready = self.client.readable(), if up.wants_read(held, self.plan.paces(Direction::Upstream)) => {
                    let result = ready.and_then(|()| up.read(
                        self.client, self.upstream, &mut self.plan, &mut self.rng, self.stats, Instant::now(),
                    ));
                    if let Err(e) = result {
                        return Ending::Broken(Direction::Upstream, e);
                    }
                }
                ready = self.upstream.readable(), if down.wants_read(held, self.plan.paces(Direction::Downstream)) => {
                    let result = ready.and_then(|()| down.read(
                        self.upstream, self.client, &mut self.plan, &mut self.rng, self.stats, Instant::now(),
                    ));
                    if let Err(e) = result {
                        return Ending::Broken(Direction::Downstream, e);
                    }
                }
                ready = self.upstream.writable(), if up.write_blocked && !held => {
                    if let Err(e) = ready {
                        return Ending::Broken(Direction::Upstream, e);
                    }
                    up.write_blocked = false;
                }
                ready = self.client.writable(), if down.write_blocked && !held => {
                    if let Err(e) = ready {
                        return Ending::Broken(Direction::Downstream, e);
                    }
                    down.write_blocked = false;
                }
                () = &mut timer, if wake.is_some() => {}
            }
        }
    }

    fn apply(&mut self, rules: &RuleSet, up: &mut Stream, down: &mut Stream) {
        let before = [
            self.plan.latency_key(Direction::Upstream),
            self.plan.latency_key(Direction::Downstream),
        ];
        self.plan.refresh(rules, Instant::now(), self.metrics);
        if self.plan.latency_key(Direction::Upstream) != before[0] {
            up.retime(&self.plan, &mut self.rng);
        }
        if self.plan.latency_key(Direction::Downstream) != before[1] {
            down.retime(&self.plan, &mut self.rng);
        }
    }
}

/// Times round trips: from the client's bytes to the first byte of the answer delivered back,
/// faults on both directions included. What the client sends while it waits belongs to the
/// same turn; the next turn starts with the first bytes it sends after an answer.
#[derive(Default)]
struct RoundTrips {
    received: u64,
    delivered: u64,
    asked_at: Option<Instant>,
}

impl RoundTrips {
    fn observe(&mut self, up: &Stream, down: &Stream, now: Instant, stats: &RouteStats) {
        if down.delivered() > self.delivered {
            self.delivered = down.delivered();
            if let Some(asked) = self.asked_at.take() {
                stats.round_trip(now - asked);
            }
        }
        if up.received() > self.received {
            self.received = up.received();
            self.asked_at.get_or_insert(now);
        }
    }
}
