//! One open connection of a Redis route: the protocol's part of a message session, with
//! commands for messages.
//!
//! The client's bytes are cut into commands. Each is decided on as it arrives (the faults
//! that match it, drawn by their probability), waits out its delay behind any command held
//! before it, and is then forwarded, answered here, or ends the connection.

use std::collections::VecDeque;
use std::io::ErrorKind;
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
use crate::proxy::caps::Permit;
use crate::proxy::message_session::{self, Batch, Dialect, Failed, Io};
use crate::proxy::read_buffer::{READ_BUF, read_into};
use crate::proxy::tcp::{Cut, Ending, Plan, Stream};
use crate::rules::Fault;
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
    /// Its places under capped faults, given back when it is released.
    _permits: Vec<Permit>,
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

impl Session<'_> {
    /// Runs until both directions are done or something ends the connection.
    pub async fn run(self, rules: &mut watch::Receiver<Arc<RuleSet>>) -> Ending {
        let io = Io {
            client: self.client,
            upstream: self.upstream,
            plan: self.plan,
            rng: self.rng,
            stats: self.stats,
            metrics: self.metrics,
            route: self.route,
        };
        let dialect = Redis {
            partial: BytesMut::new(),
            held: VecDeque::new(),
            ended: false,
            count: 0,
            replies: Replies::new(self.commands.clone()),
            commands: self.commands,
            route: self.route,
            connection: self.connection,
            seed: self.seed,
        };
        message_session::run(io, dialect, rules).await
    }
}

/// The Redis side of a session: what has been read and not yet sent on, and the replies
/// owed.
struct Redis<'a> {
    partial: BytesMut,
    held: VecDeque<Held>,
    ended: bool,
    /// Commands read so far, which keys each command's probability draw.
    count: u64,
    replies: Replies,
    commands: CommandStats,
    route: &'a str,
    connection: u64,
    seed: u64,
}

impl Dialect for Redis<'_> {
    type Answers = Replies;
    const NAME: &'static str = "Redis";

    fn answers(&self) -> &Replies {
        &self.replies
    }

    fn read_client(&mut self, io: &mut Io<'_>, rules: &RuleSet) -> Result<(), Failed> {
        let read = read_into(io.client, &mut self.partial);
        let now = Instant::now();
        match read {
            Ok(0) => self.ended = true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(Failed::Io(e)),
        }
        loop {
            match codec::next_command(&mut self.partial) {
                Ok(Some(command)) => self.admit(command, io, rules, now),
                Ok(None) => break,
                Err(e) => return Err(Failed::Protocol(e.to_string())),
            }
        }
        if self.partial.len() > COMMAND_CAP {
            return Err(Failed::Protocol(format!(
                "a command larger than {COMMAND_CAP} bytes"
            )));
        }
        if self.partial.is_empty() && self.partial.capacity() > READ_BUF {
            // A large command has gone; an idle connection keeps no buffer.
            self.partial = BytesMut::new();
        }
        if self.ended && !self.partial.is_empty() {
            // A command cut short by the client's end: Redis discards it unanswered; pass
            // its bytes on all the same.
            let raw = self.partial.split().freeze();
            let due = self.held.back().map_or(now, |h| h.due);
            self.held.push_back(Held {
                due,
                asked: now,
                raw,
                step: Step::Forward {
                    replies: 0,
                    hello: false,
                },
                outcome: CommandOutcome::Ok,
                _permits: Vec::new(),
            });
        }
        Ok(())
    }

    fn wants_client(&self) -> bool {
        !self.ended && self.held.len() < HELD_CAP
    }

    fn next_due(&self) -> Option<Instant> {
        self.held
            .front()
            .filter(|h| !waits_for_answers(h, &self.replies))
            .map(|h| h.due)
    }

    fn release(&mut self, io: &mut Io<'_>, up: &mut Stream, now: Instant) -> Result<(), Ending> {
        let mut batch = Batch::default();
        while self.held.front().is_some_and(|h| {
            h.due <= now && !io.plan.blackholed() && !waits_for_answers(h, &self.replies)
        }) {
            let Some(held) = self.held.pop_front() else {
                break;
            };
            let forward = match held.step {
                Step::Forward { replies: n, hello } => {
                    self.replies.expect_server(n, held.asked, hello);
                    held.raw
                }
                Step::Instead { send, answer } => {
                    self.replies
                        .expect_instead(answer, held.asked, held.outcome);
                    send
                }
                Step::Answer(answer) => {
                    self.replies.answer(answer, held.asked, held.outcome);
                    continue;
                }
                Step::Close => {
                    batch.send(io, up, now)?;
                    self.commands
                        .command(CommandOutcome::Dropped, now - held.asked);
                    return Err(Ending::Cut(Cut::Close("drop")));
                }
            };
            batch.push(forward);
        }
        batch.send(io, up, now)?;
        if self.ended && self.held.is_empty() {
            up.end_input(now);
        }
        Ok(())
    }

    fn count_protocol_error(&self) {
        self.commands.protocol_error();
    }
}

impl Redis<'_> {
    fn admit(&mut self, command: Command, io: &mut Io<'_>, rules: &RuleSet, now: Instant) {
        let index = self.count;
        self.count += 1;
        let args = command.args();
        let name = command.name();
        let mut chosen = self.choose(rules, &args, index, &io.plan, &mut io.rng);
        let act = chosen.act.as_ref().map(|(act, _)| act.clone());
        let (step, acted) = self.replies.state(|s| s.admit(&name, &args, act));
        let mut outcome = CommandOutcome::InjectedError;
        if acted && let Some((act, fault)) = &chosen.act {
            io.metrics.fault_fired(&fault.name, fault.kind.name());
            outcome = match act {
                Act::Nil => CommandOutcome::InjectedNil,
                _ => CommandOutcome::InjectedError,
            };
        }
        for fault in &chosen.delayed {
            io.metrics.fault_fired(&fault.name, fault.kind.name());
        }
        let due = now + chosen.delay;
        let due = self.held.back().map_or(due, |h| due.max(h.due));
        self.held.push_back(Held {
            due,
            asked: now,
            raw: command.raw,
            step,
            outcome,
            _permits: std::mem::take(&mut chosen.permits),
        });
    }

    /// The faults that act on command number `index`: its delay, and what answers it.
    fn choose(
        &self,
        rules: &RuleSet,
        args: &[&[u8]],
        index: u64,
        plan: &Plan,
        rng: &mut StdRng,
    ) -> Chosen {
        let mut chosen = Chosen::default();
        let mut facts = None;
        // Each command's draw is keyed by the connection and the command's place on it.
        let key = (self.connection << 32) ^ index;
        for fault in rules.faults_for(self.route) {
            let acts_on_commands = matches!(fault.kind.scope(), Scope::Command | Scope::Request);
            if !fault.enabled
                || !acts_on_commands
                || args.is_empty()
                || !plan.gate().client_allowed(fault)
            {
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
            // An answer already chosen leaves later answering faults out: they take no place.
            let answers = !matches!(fault.kind, FaultKind::Delay(_));
            if answers && chosen.act.is_some() {
                continue;
            }
            let Some(permit) = plan.gate().admit(fault) else {
                continue;
            };
            chosen.permits.extend(permit);
            match &fault.kind {
                FaultKind::Delay(d) => {
                    chosen.delay += d.sample(rng);
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
    permits: Vec<Permit>,
}
