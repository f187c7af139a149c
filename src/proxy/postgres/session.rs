//! One open connection of a PostgreSQL route: the protocol's part of a message session.
//!
//! The client's bytes are cut into startup packets and then typed messages. Each is decided
//! on as it arrives, waits out its delay behind any message held before it, and is then
//! forwarded (itself or a stand-in), answered here, or ends the connection.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use rand::rngs::StdRng;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::decide::{Conn, Decision, Phase, Step};
use super::frontend;
use super::replies::Replies;
use crate::proxy::caps::Permit;
use crate::proxy::message_session::{self, Batch, Dialect, Failed, Io};
use crate::proxy::read_buffer::{READ_BUF, read_into};
use crate::proxy::tcp::{Cut, Ending, Plan, Stream};
use crate::store::RuleSet;
use crate::telemetry::{CommandOutcome, CommandStats, Metrics, RouteStats};
use std::sync::Arc;

/// Messages held (delayed, or behind a delayed one) before the client is read no more.
const HELD_CAP: usize = 4096;

/// The Flush message.
const FLUSH: &[u8] = b"H\0\0\0\x04";

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
    /// Bytes the client sent that were read before the session (by the TLS negotiation).
    pub initial: Bytes,
}

impl Session<'_> {
    /// Runs until both directions are done or something ends the connection.
    pub async fn run(self, rules: &mut watch::Receiver<Arc<RuleSet>>) -> Ending {
        let gate = self.plan.gate().clone();
        let io = Io {
            client: self.client,
            upstream: self.upstream,
            plan: self.plan,
            rng: self.rng,
            stats: self.stats,
            metrics: self.metrics,
            route: self.route,
        };
        let dialect = Postgres {
            partial: BytesMut::from(&self.initial[..]),
            held: VecDeque::new(),
            ended: false,
            conn: Conn::new(self.route, self.connection, self.seed, gate),
            flushed: false,
            replies: Replies::new(self.statements.clone(), self.metrics),
            statements: self.statements,
        };
        message_session::run(io, dialect, rules).await
    }
}

/// A message decided on, waiting for its due time.
#[derive(Debug)]
struct Held {
    due: Instant,
    asked: Instant,
    step: Step,
    /// Its places under capped faults, given back when it is released.
    _permits: Vec<Permit>,
}

/// The PostgreSQL side of a session: what has been read and not yet sent on, and the
/// answers owed.
struct Postgres<'a> {
    partial: BytesMut,
    held: VecDeque<Held>,
    ended: bool,
    conn: Conn<'a>,
    /// A Flush was sent so that the server's buffered answers come before a FATAL error.
    flushed: bool,
    replies: Replies<'a>,
    statements: CommandStats,
}

impl<'a> Dialect for Postgres<'a> {
    type Answers = Replies<'a>;
    const NAME: &'static str = "PostgreSQL";

    fn answers(&self) -> &Replies<'a> {
        &self.replies
    }

    fn read_client(&mut self, io: &mut Io<'_>, rules: &RuleSet) -> Result<(), Failed> {
        match read_into(io.client, &mut self.partial) {
            Ok(0) => self.ended = true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(Failed::Io(e)),
        }
        let now = Instant::now();
        while let Some(decision) = self.next_decision(rules, &mut io.rng)? {
            for fault in &decision.fired {
                io.metrics.fault_fired(&fault.name, fault.kind.name());
            }
            let due = now + decision.delay;
            self.hold(due, now, decision.step, decision.permits);
        }
        if self.partial.is_empty() && self.partial.capacity() > READ_BUF {
            // A large message has gone; an idle connection keeps no buffer.
            self.partial = BytesMut::new();
        }
        if self.ended && !self.partial.is_empty() {
            // A message cut short by the client's end: pass its bytes on all the same.
            let send = self.partial.split().freeze();
            self.hold(now, now, forward_raw(send), Vec::new());
        }
        Ok(())
    }

    fn wants_client(&self) -> bool {
        !self.ended && self.held.len() < HELD_CAP
    }

    fn next_due(&self) -> Option<Instant> {
        self.held
            .front()
            .filter(|h| !self.waits_for_answers(h))
            .map(|h| h.due)
    }

    fn release(&mut self, io: &mut Io<'_>, up: &mut Stream, now: Instant) -> Result<(), Ending> {
        self.flush_before_fatal(io, up, now)?;
        let mut batch = Batch::default();
        while self
            .held
            .front()
            .is_some_and(|h| h.due <= now && !io.plan.blackholed() && !self.waits_for_answers(h))
        {
            let Some(held) = self.held.pop_front() else {
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
                        self.replies.expect(expect, held.asked, counted, inject);
                    }
                    send
                }
                Step::Answer(answer) => {
                    self.replies.answer(answer, false);
                    continue;
                }
                Step::Fatal { answer, counted } => {
                    batch.send(io, up, now)?;
                    if counted {
                        self.statements
                            .command(CommandOutcome::InjectedError, now - held.asked);
                    }
                    self.replies.answer(answer, true);
                    self.held.clear();
                    self.ended = true;
                    return Ok(());
                }
                Step::Close => {
                    batch.send(io, up, now)?;
                    self.statements
                        .command(CommandOutcome::Dropped, now - held.asked);
                    return Err(Ending::Cut(Cut::Close("drop")));
                }
            };
            batch.push(send);
        }
        batch.send(io, up, now)?;
        if self.ended && self.held.is_empty() {
            up.end_input(now);
        }
        Ok(())
    }

    fn count_protocol_error(&self) {
        self.statements.protocol_error();
    }
}

impl Postgres<'_> {
    /// Queues a message behind those held before it.
    fn hold(&mut self, due: Instant, asked: Instant, step: Step, permits: Vec<Permit>) {
        let due = self.held.back().map_or(due, |h| due.max(h.due));
        self.held.push_back(Held {
            due,
            asked,
            step,
            _permits: permits,
        });
    }

    /// The decision on the next whole message in the client's bytes, if there is one.
    fn next_decision(
        &mut self,
        rules: &RuleSet,
        rng: &mut StdRng,
    ) -> Result<Option<Decision>, Failed> {
        let protocol = |e: frontend::FrameError| Failed::Protocol(e.to_string());
        match self.conn.phase {
            Phase::Startup => {
                let Some(packet) = frontend::next_startup(&mut self.partial).map_err(protocol)?
                else {
                    return Ok(None);
                };
                Ok(Some(self.conn.startup(packet, rules)))
            }
            Phase::Ready => {
                let Some(message) = frontend::next_message(&mut self.partial).map_err(protocol)?
                else {
                    return Ok(None);
                };
                self.conn
                    .message(message, rules, rng)
                    .map(Some)
                    .map_err(protocol)
            }
            Phase::Opaque if !self.partial.is_empty() => {
                Ok(Some(Decision::forward(self.partial.split().freeze(), None)))
            }
            Phase::Opaque => Ok(None),
        }
    }

    /// A server ending a connection with a FATAL error flushes what it had buffered first
    /// (answers to Parse, Bind, ... before a Sync); a Flush asks the server for them, so
    /// they come before the route's FATAL answer as they would.
    fn flush_before_fatal(
        &mut self,
        io: &mut Io<'_>,
        up: &mut Stream,
        now: Instant,
    ) -> Result<(), Ending> {
        let fatal_due = self
            .held
            .front()
            .is_some_and(|h| h.due <= now && matches!(h.step, Step::Fatal { .. }));
        if !fatal_due || self.flushed || self.replies.settled() || self.replies.owes_flushed() {
            return Ok(());
        }
        self.flushed = true;
        io.send(up, FLUSH, now)
    }

    /// A FATAL answer ends the connection only once the messages before it are answered, as
    /// a server's FATAL error comes after what it had sent. A dropped statement waits for the
    /// answers the server sends on its own; those it holds until a Sync are lost with it.
    fn waits_for_answers(&self, held: &Held) -> bool {
        match held.step {
            Step::Fatal { .. } => !self.replies.settled(),
            Step::Close => self.replies.owes_flushed(),
            _ => false,
        }
    }
}

fn forward_raw(send: Bytes) -> Step {
    Step::Forward {
        send,
        expect: None,
        counted: false,
        inject: None,
    }
}
