//! One open connection of a Redis route, run in one loop in one task, as a TCP session is,
//! with commands in place of chunks.
//!
//! The client's bytes are cut into commands. Each is decided on as it arrives (the faults
//! that match it, drawn by their probability), waits out its delay behind any command held
//! before it, and is then forwarded, answered here, or ends the connection. Forwarded bytes
//! and the server's replies pass through the same streams as on a TCP route, so every TCP
//! fault acts here too.

use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rand::rngs::StdRng;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::codec::{self, Command};
use super::matcher::{self, Facts};
use super::replies::Replies;
use super::state::{Act, Step};
use crate::faults::{FaultKind, Scope, rng};
use crate::proxy::read_buffer::{READ_BUF, read_into};
use crate::proxy::tcp::{Cut, Ending, Plan, Stream};
use crate::rules::{Direction, Fault};
use crate::store::RuleSet;
use crate::telemetry::{CommandOutcome, CommandStats, Metrics, RouteStats};

/// Commands held (delayed, or behind a delayed one) before the client is read no more.
const HELD_CAP: usize = 4096;

/// A client's partial command may grow to this; Redis's own limit on one argument is 512 MB.
const COMMAND_CAP: usize = 512 * 1024 * 1024 + 64 * 1024;

/// A command decided on, waiting for its due time.
#[derive(Debug)]
struct Held {
    due: Instant,
    asked: Instant,
    raw: Bytes,
    step: Step,
    /// How the command counts when it is answered here or dropped.
    outcome: CommandOutcome,
}

/// An open connection between a Redis client and its server.
pub struct Session<'a> {
    pub client: &'a TcpStream,
    pub upstream: &'a TcpStream,
    pub plan: Plan,
    pub rng: StdRng,
    pub stats: &'a RouteStats,
    pub commands: CommandStats,
    pub metrics: &'a Metrics,
    pub route: &'a str,
    pub connection: u64,
    pub seed: u64,
}

/// The command side of a session: what has been read and not yet sent on.
struct Inbound {
    partial: BytesMut,
    held: VecDeque<Held>,
    ended: bool,
    /// Commands read so far, which keys each command's probability draws.
    count: u64,
}

impl Session<'_> {
    /// Runs until both directions are done or something ends the connection.
    pub async fn run(mut self, rules: &mut watch::Receiver<Arc<RuleSet>>) -> Ending {
        let mut up = Stream::new(Direction::Upstream);
        let mut down = Stream::new(Direction::Downstream);
        let replies = Replies::new(self.commands.clone());
        let mut inbound = Inbound {
            partial: BytesMut::new(),
            held: VecDeque::new(),
            ended: false,
            count: 0,
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
            if let Some(e) = replies.broken() {
                return self.protocol_error(Direction::Downstream, e.to_string());
            }
            if !self.plan.blackholed() {
                match replies.write_to(self.client, self.stats) {
                    Ok(blocked) => client_blocked = blocked,
                    Err(e) => return Ending::Broken(Direction::Downstream, e),
                }
                // The reply stream takes server bytes again once the client has read.
                if !client_blocked {
                    down.write_blocked = false;
                }
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
                    match self.read_client(&mut inbound, &snapshot, &replies) {
                        Ok(()) => {}
                        Err(Failed::Io(e)) => return Ending::Broken(Direction::Upstream, e),
                        Err(Failed::Protocol(why)) => {
                            return self.protocol_error(Direction::Upstream, why);
                        }
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
        self.commands.protocol_error();
        let from = match side {
            Direction::Upstream => "client",
            _ => "server",
        };
        tracing::warn!(route = %self.route, from, error = %why, "closing a Redis connection: bytes that are not RESP");
        Ending::Broken(side, io::Error::new(ErrorKind::InvalidData, why))
    }

    /// Reads what the client sent and decides on every whole command in it.
    fn read_client(
        &mut self,
        inbound: &mut Inbound,
        rules: &RuleSet,
        replies: &Replies,
    ) -> Result<(), Failed> {
        let read = read_into(self.client, &mut inbound.partial);
        let now = Instant::now();
        match read {
            Ok(0) => inbound.ended = true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(Failed::Io(e)),
        }
        loop {
            match codec::next_command(&mut inbound.partial) {
                Ok(Some(command)) => self.admit(command, inbound, rules, replies, now),
                Ok(None) => break,
                Err(e) => return Err(Failed::Protocol(e.to_string())),
            }
        }
        if inbound.partial.len() > COMMAND_CAP {
            return Err(Failed::Protocol(format!(
                "a command larger than {COMMAND_CAP} bytes"
            )));
        }
        if inbound.partial.is_empty() && inbound.partial.capacity() > READ_BUF {
            // A large command has gone; an idle connection keeps no buffer.
            inbound.partial = BytesMut::new();
        }
        if inbound.ended && !inbound.partial.is_empty() {
            // A command cut short by the client's end: Redis discards it unanswered; pass
            // its bytes on all the same.
            let raw = inbound.partial.split().freeze();
            let due = inbound.held.back().map_or(now, |h| h.due);
            inbound.held.push_back(Held {
                due,
                asked: now,
                raw,
                step: Step::Forward {
                    replies: 0,
                    hello: false,
                },
                outcome: CommandOutcome::Ok,
            });
        }
        Ok(())
    }

    /// Decides what happens to one command and queues it behind those before it.
    fn admit(
        &mut self,
        command: Command,
        inbound: &mut Inbound,
        rules: &RuleSet,
        replies: &Replies,
        now: Instant,
    ) {
        let index = inbound.count;
        inbound.count += 1;
        let args = command.args();
        let name = command.name();
        let chosen = self.choose(rules, &args, index);
        let act = chosen.act.as_ref().map(|(act, _)| act.clone());
        let (step, acted) = replies.state(|s| s.admit(&name, &args, act));
        let mut outcome = CommandOutcome::InjectedError;
        if acted && let Some((act, fault)) = &chosen.act {
            self.metrics.fault_fired(&fault.name, fault.kind.name());
            outcome = match act {
                Act::Nil => CommandOutcome::InjectedNil,
                _ => CommandOutcome::InjectedError,
            };
        }
        for fault in &chosen.delayed {
            self.metrics.fault_fired(&fault.name, fault.kind.name());
        }
        let due = now + chosen.delay;
        let due = inbound.held.back().map_or(due, |h| due.max(h.due));
        inbound.held.push_back(Held {
            due,
            asked: now,
            raw: command.raw,
            step,
            outcome,
        });
    }

    /// The faults that act on command number `index`: its delay, and what answers it.
    fn choose(&mut self, rules: &RuleSet, args: &[&[u8]], index: u64) -> Chosen {
        let mut chosen = Chosen::default();
        let mut facts = None;
        // Each command's draw is keyed by the connection and the command's place on it.
        let key = (self.connection << 32) ^ index;
        for fault in rules.faults_for(self.route) {
            let acts_on_commands = matches!(fault.kind.scope(), Scope::Command | Scope::Request);
            if !fault.enabled || !acts_on_commands || args.is_empty() {
                continue;
            }
            if let Some(when) = &fault.when {
                let facts = facts.get_or_insert_with(|| Facts::of(args));
                if !matcher::matches(when, facts) {
                    continue;
                }
            }
            if !rng::decide(self.seed, self.route, &fault.name, key, fault.probability) {
                continue;
            }
            match &fault.kind {
                FaultKind::Delay(d) => {
                    chosen.delay += d.sample(&mut self.rng);
                    chosen.delayed.push(Arc::clone(fault));
                }
                FaultKind::Error(e) if chosen.act.is_none() => {
                    chosen.act = Some((Act::Error(Bytes::from(e.reply())), Arc::clone(fault)));
                }
                FaultKind::Nil(_) if chosen.act.is_none() => {
                    chosen.act = Some((Act::Nil, Arc::clone(fault)));
                }
                FaultKind::Drop(_) if chosen.act.is_none() => {
                    chosen.act = Some((Act::Drop, Arc::clone(fault)));
                }
                _ => {}
            }
        }
        chosen
    }

    /// Sends on, answers or drops every held command that is due, in order.
    fn release(
        &mut self,
        inbound: &mut Inbound,
        up: &mut Stream,
        replies: &Replies,
        now: Instant,
    ) -> Result<(), Ending> {
        while inbound.held.front().is_some_and(|h| {
            h.due <= now && !self.plan.blackholed() && !waits_for_answers(h, replies)
        }) {
            let Some(held) = inbound.held.pop_front() else {
                break;
            };
            let forward = match held.step {
                Step::Forward { replies: n, hello } => {
                    replies.expect_server(n, held.asked, hello);
                    held.raw
                }
                Step::Instead { send, answer } => {
                    replies.expect_instead(answer, held.asked, held.outcome);
                    send
                }
                Step::Answer(answer) => {
                    replies.answer(answer, held.asked, held.outcome);
                    continue;
                }
                Step::Close => {
                    self.commands
                        .command(CommandOutcome::Dropped, now - held.asked);
                    return Err(Ending::Cut(Cut::Close("drop")));
                }
            };
            if let Err(e) = up.accept(
                &forward,
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

/// A dropped command closes the connection only once the commands before it have had their
/// answers, as a server that went away after running them would have given them.
fn waits_for_answers(held: &Held, replies: &Replies) -> bool {
    held.step == Step::Close && !replies.settled()
}

/// The faults chosen for one command.
#[derive(Default)]
struct Chosen {
    delay: Duration,
    delayed: Vec<Arc<Fault>>,
    act: Option<(Act, Arc<Fault>)>,
}

/// Why reading the client ended the connection.
enum Failed {
    Io(io::Error),
    Protocol(String),
}
