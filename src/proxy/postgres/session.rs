//! One open connection of a PostgreSQL route, run in one loop in one task, as a TCP session
//! is, with protocol messages in place of chunks.
//!
//! The client's bytes are cut into messages. Each is decided on as it arrives, waits out its
//! delay behind any message held before it, and is then forwarded (itself or a stand-in),
//! answered here, or ends the connection. Forwarded bytes and the server's answers pass
//! through the same streams as on a TCP route, so every TCP fault acts here too.

use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use rand::rngs::StdRng;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::decide::{Conn, Decision, Phase, Step};
use super::frontend;
use super::replies::Replies;
use crate::proxy::read_buffer::{READ_BUF, read_into};
use crate::proxy::tcp::{Cut, Ending, Plan, Stream};
use crate::rules::Direction;
use crate::store::RuleSet;
use crate::telemetry::{CommandOutcome, CommandStats, Metrics, RouteStats};

/// Messages held (delayed, or behind a delayed one) before the client is read no more.
const HELD_CAP: usize = 4096;

/// A message decided on, waiting for its due time.
#[derive(Debug)]
struct Held {
    due: Instant,
    asked: Instant,
    step: Step,
}

/// An open connection between a PostgreSQL client and its server.
pub struct Session<'a> {
    pub client: &'a TcpStream,
    pub upstream: &'a TcpStream,
    pub plan: Plan,
    pub rng: StdRng,
    pub stats: &'a RouteStats,
    pub statements: CommandStats,
    pub metrics: &'a Metrics,
    pub route: &'a str,
    pub connection: u64,
    pub seed: u64,
}

/// The client's side of a session: what has been read and not yet sent on.
struct Inbound<'a> {
    partial: BytesMut,
    held: VecDeque<Held>,
    ended: bool,
    conn: Conn<'a>,
    /// A Flush was sent so that the server's buffered answers come before a FATAL error.
    flushed: bool,
}

impl Session<'_> {
    /// Runs until both directions are done or something ends the connection.
    pub async fn run(mut self, rules: &mut watch::Receiver<Arc<RuleSet>>) -> Ending {
        let mut up = Stream::new(Direction::Upstream);
        let mut down = Stream::new(Direction::Downstream);
        let replies = Replies::new(self.statements.clone(), self.metrics);
        let mut inbound = Inbound {
            partial: BytesMut::new(),
            held: VecDeque::new(),
            ended: false,
            conn: Conn::new(self.route, self.connection, self.seed),
            flushed: false,
        };
        let mut snapshot = rules.borrow().clone();
        let mut client_blocked = false;
        let mut timer = crate::proxy::timer::sleep_until(Instant::now());
        loop {
            let now = Instant::now();
            if let Some(ending) = self.cut(now) {
                return ending;
            }
            if let Err(ending) = self.release(&mut inbound, &mut up, &replies, now) {
                return ending;
            }
            if let Err(e) = up.flush(self.upstream, &self.plan, &mut self.rng, self.stats, now) {
                return Ending::Broken(Direction::Upstream, e);
            }
            if let Err(e) = down.flush(&replies, &self.plan, &mut self.rng, self.stats, now) {
                return Ending::Broken(Direction::Downstream, e);
            }
            if let Some(why) = replies.broken() {
                return self.protocol_error(Direction::Downstream, why);
            }
            if !self.plan.blackholed() {
                match replies.write_to(self.client, self.stats) {
                    Ok(blocked) => client_blocked = blocked,
                    Err(e) => return Ending::Broken(Direction::Downstream, e),
                }
                if !client_blocked {
                    down.write_blocked = false;
                }
            }
            if replies.closed_here() {
                return Ending::Cut(Cut::Close("postgres fault"));
            }
            if up.limit_spent() || down.limit_spent() {
                return Ending::Cut(Cut::Close("limit data"));
            }
            if up.done() && replies.finished() {
                return Ending::Finished;
            }

            let held = self.plan.blackholed();
            let wake = [
                self.plan.deadline().map(|(at, _)| at),
                up.wake(&self.plan),
                down.wake(&self.plan),
                inbound
                    .held
                    .front()
                    .filter(|h| !held && !waits_for_answers(h, &replies))
                    .map(|h| h.due),
            ]
            .into_iter()
            .flatten()
            .min();
            if let Some(at) = wake {
                timer.reset(at);
            }
            let read_client =
                !inbound.ended && inbound.held.len() < HELD_CAP && up.wants_read(held, true);

            tokio::select! {
                changed = rules.changed() => {
                    if changed.is_err() {
                        return Ending::Stopped;
                    }
                    snapshot = rules.borrow_and_update().clone();
                    self.apply(&snapshot, &mut up, &mut down);
                }
                ready = self.client.readable(), if read_client => {
                    if let Err(e) = ready {
                        return Ending::Broken(Direction::Upstream, e);
                    }
                    if let Err(failed) = self.read_client(&mut inbound, &snapshot) {
                        return match failed {
                            Failed::Io(e) => Ending::Broken(Direction::Upstream, e),
                            Failed::Protocol(why) => self.protocol_error(Direction::Upstream, why),
                        };
                    }
                }
                ready = self.upstream.readable(), if down.wants_read(held, self.plan.paces(Direction::Downstream)) => {
                    let result = ready.and_then(|()| down.read(
                        self.upstream, &replies, &mut self.plan, &mut self.rng, self.stats, Instant::now(),
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
                ready = self.client.writable(), if client_blocked && !held => {
                    if let Err(e) = ready {
                        return Ending::Broken(Direction::Downstream, e);
                    }
                }
                () = &mut timer, if wake.is_some() => {}
            }
        }
    }

    /// How a fault or the route's state ends the connection now, if one does.
    fn cut(&self, now: Instant) -> Option<Ending> {
        if let Some((at, cut)) = self.plan.deadline()
            && at <= now
        {
            return Some(Ending::Cut(cut));
        }
        if self.plan.route_gone() {
            return Some(Ending::Cut(Cut::Close("route disabled")));
        }
        self.plan.partition_cut().map(Ending::Cut)
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

    /// Counts and logs bytes that broke the protocol; the connection ends.
    fn protocol_error(&self, side: Direction, why: String) -> Ending {
        self.statements.protocol_error();
        let from = match side {
            Direction::Upstream => "client",
            _ => "server",
        };
        tracing::warn!(route = %self.route, from, error = %why, "closing a PostgreSQL connection: bytes that are not its protocol");
        Ending::Broken(side, io::Error::new(ErrorKind::InvalidData, why))
    }

    /// Reads what the client sent and decides on every whole message in it.
    fn read_client(&mut self, inbound: &mut Inbound<'_>, rules: &RuleSet) -> Result<(), Failed> {
        match read_into(self.client, &mut inbound.partial) {
            Ok(0) => inbound.ended = true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(Failed::Io(e)),
        }
        let now = Instant::now();
        while let Some(decision) = self.next_decision(inbound, rules)? {
            for fault in &decision.fired {
                self.metrics.fault_fired(&fault.name, fault.kind.name());
            }
            let due = now + decision.delay;
            let due = inbound.held.back().map_or(due, |h| due.max(h.due));
            inbound.held.push_back(Held {
                due,
                asked: now,
                step: decision.step,
            });
        }
        if inbound.partial.is_empty() && inbound.partial.capacity() > READ_BUF {
            // A large message has gone; an idle connection keeps no buffer.
            inbound.partial = BytesMut::new();
        }
        if inbound.ended && !inbound.partial.is_empty() {
            // A message cut short by the client's end: pass its bytes on all the same.
            let send = inbound.partial.split().freeze();
            let due = inbound.held.back().map_or(now, |h| h.due);
            inbound.held.push_back(Held {
                due,
                asked: now,
                step: forward_raw(send),
            });
        }
        Ok(())
    }

    /// The decision on the next whole message in the client's bytes, if there is one.
    fn next_decision(
        &mut self,
        inbound: &mut Inbound<'_>,
        rules: &RuleSet,
    ) -> Result<Option<Decision>, Failed> {
        let protocol = |e: frontend::FrameError| Failed::Protocol(e.to_string());
        match inbound.conn.phase {
            Phase::Startup => {
                let Some(packet) =
                    frontend::next_startup(&mut inbound.partial).map_err(protocol)?
                else {
                    return Ok(None);
                };
                Ok(Some(inbound.conn.startup(packet, rules)))
            }
            Phase::Ready => {
                let Some(message) =
                    frontend::next_message(&mut inbound.partial).map_err(protocol)?
                else {
                    return Ok(None);
                };
                inbound
                    .conn
                    .message(message, rules, &mut self.rng)
                    .map(Some)
                    .map_err(protocol)
            }
            Phase::Opaque if !inbound.partial.is_empty() => Ok(Some(Decision::forward(
                inbound.partial.split().freeze(),
                None,
            ))),
            Phase::Opaque => Ok(None),
        }
    }

    /// Sends on, answers or ends on every held message that is due, in order.
    fn release(
        &mut self,
        inbound: &mut Inbound<'_>,
        up: &mut Stream,
        replies: &Replies<'_>,
        now: Instant,
    ) -> Result<(), Ending> {
        self.flush_before_fatal(inbound, up, replies, now)?;
        while inbound.held.front().is_some_and(|h| {
            h.due <= now && !self.plan.blackholed() && !waits_for_answers(h, replies)
        }) {
            let Some(held) = inbound.held.pop_front() else {
                break;
            };
            let send = match held.step {
                Step::Forward {
                    send,
                    expect,
                    counted,
                    inject,
                } => {
                    if let Some(expect) = expect {
                        replies.expect(expect, held.asked, counted, inject);
                    }
                    send
                }
                Step::Answer(answer) => {
                    replies.answer(answer, false);
                    continue;
                }
                Step::Fatal { answer, counted } => {
                    if counted {
                        self.statements
                            .command(CommandOutcome::InjectedError, now - held.asked);
                    }
                    replies.answer(answer, true);
                    inbound.held.clear();
                    inbound.ended = true;
                    return Ok(());
                }
                Step::Close => {
                    self.statements
                        .command(CommandOutcome::Dropped, now - held.asked);
                    return Err(Ending::Cut(Cut::Close("drop")));
                }
            };
            if let Err(e) = up.accept(
                &send,
                self.upstream,
                &mut self.plan,
                &mut self.rng,
                self.stats,
                now,
            ) {
                return Err(Ending::Broken(Direction::Upstream, e));
            }
        }
        if inbound.ended && inbound.held.is_empty() {
            up.end_input(now);
        }
        Ok(())
    }
}

impl Session<'_> {
    /// A server ending a connection with a FATAL error flushes what it had buffered first
    /// (answers to Parse, Bind, ... before a Sync); a Flush asks the server for them, so
    /// they come before the route's FATAL answer as they would.
    fn flush_before_fatal(
        &mut self,
        inbound: &mut Inbound<'_>,
        up: &mut Stream,
        replies: &Replies<'_>,
        now: Instant,
    ) -> Result<(), Ending> {
        let fatal_due = inbound
            .held
            .front()
            .is_some_and(|h| h.due <= now && matches!(h.step, Step::Fatal { .. }));
        if !fatal_due || inbound.flushed || replies.settled() || replies.owes_flushed() {
            return Ok(());
        }
        inbound.flushed = true;
        up.accept(
            FLUSH,
            self.upstream,
            &mut self.plan,
            &mut self.rng,
            self.stats,
            now,
        )
        .map_err(|e| Ending::Broken(Direction::Upstream, e))
    }
}

/// The Flush message.
const FLUSH: &[u8] = b"H\0\0\0\x04";

fn forward_raw(send: Bytes) -> Step {
    Step::Forward {
        send,
        expect: None,
        counted: false,
        inject: None,
    }
}

/// A FATAL answer ends the connection only once the messages before it are answered, as a
/// server's FATAL error comes after what it had sent. A dropped statement waits for the
/// answers the server sends on its own; those it holds until a Sync are lost with it.
fn waits_for_answers(held: &Held, replies: &Replies<'_>) -> bool {
    match held.step {
        Step::Fatal { .. } => !replies.settled(),
        Step::Close => replies.owes_flushed(),
        _ => false,
    }
}

/// Why reading the client ended the connection.
enum Failed {
    Io(io::Error),
    Protocol(String),
}
