//! The client's side of a PostgreSQL connection: the server's messages, with the route's own
//! answers merged in, in the order the client's messages asked for them.
//!
//! Every forwarded message that the server answers holds a slot. The server answers its
//! messages in order, and after an error in the extended protocol it skips everything up to
//! the next Sync; following that rule, each server message is attributed to its slot. A
//! statement a fault fails was sent on as a stand-in that fails on the server too (so the
//! server's transaction state is the one the client is told); the server's error about the
//! stand-in is replaced by the fault's. Notices, notifications and parameter changes belong to
//! no slot and pass straight on.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;

use super::backend::{self, Message};
use crate::proxy::message_session::{Answers, write_out};
use crate::proxy::tcp::Sink;
use crate::rules::Fault;
use crate::telemetry::{CommandOutcome, CommandStats, Metrics, RouteStats};

/// Bytes held for a client that is not reading, before the server's side is read no more.
const OUT_CAP: usize = 1024 * 1024;

/// What a forwarded client message gets from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Query or FunctionCall: everything up to a ReadyForQuery.
    Query,
    Parse,
    Bind,
    Describe,
    Close,
    Execute,
    /// Sync: a ReadyForQuery, after an error of the commit it may run.
    Sync,
    /// CopyDone or CopyFail: no answer of its own; it marks where copy-in mode ends.
    CopyEnd,
}

impl Expect {
    fn extended(self) -> bool {
        !matches!(self, Expect::Query | Expect::Sync)
    }

    /// Whether a server message of `tag` completes this message's answer.
    fn completed_by(self, tag: u8) -> bool {
        match self {
            Expect::Query | Expect::Sync => tag == b'Z',
            Expect::Parse => tag == b'1',
            Expect::Bind => tag == b'2',
            Expect::Close => tag == b'3',
            Expect::Describe => matches!(tag, b'T' | b'n'),
            Expect::Execute => matches!(tag, b'C' | b'I' | b's'),
            Expect::CopyEnd => false,
        }
    }
}

/// An error a fault puts in place of the server's error about a stand-in statement.
#[derive(Debug, Clone)]
pub struct Injection {
    pub answer: Bytes,
    pub fault: Arc<Fault>,
}

/// A forwarded message waiting for its answer.
#[derive(Debug)]
struct Slot {
    expect: Expect,
    asked: Instant,
    /// A statement (Query, Execute), counted when its answer is complete.
    counted: bool,
    inject: Option<Injection>,
    outcome: CommandOutcome,
}

#[derive(Debug)]
enum Pending {
    Server(Slot),
    /// Answered by the route, in its turn; `close` ends the connection after it.
    Here {
        answer: Bytes,
        close: bool,
    },
}

/// The merged answer stream of one connection.
pub struct Replies<'a> {
    inner: RefCell<Inner<'a>>,
}

struct Inner<'a> {
    pending: VecDeque<Pending>,
    partial: BytesMut,
    out: BytesMut,
    /// The server's side ended; once `out` drains, so does the client's.
    ended: bool,
    /// The route answered with a FATAL error: nothing more passes, the connection closes.
    closing: bool,
    broken: Option<String>,
    /// The server is in copy-in mode and the client's CopyDone or CopyFail has not been sent
    /// on yet: the server ignores Syncs until then.
    copy_in: bool,
    stats: CommandStats,
    metrics: &'a Metrics,
}

impl<'a> Replies<'a> {
    pub fn new(stats: CommandStats, metrics: &'a Metrics) -> Self {
        Replies {
            inner: RefCell::new(Inner {
                pending: VecDeque::new(),
                partial: BytesMut::new(),
                out: BytesMut::new(),
                ended: false,
                closing: false,
                broken: None,
                copy_in: false,
                stats,
                metrics,
            }),
        }
    }

    /// A forwarded message; `counted` for a statement, `inject` for a stand-in.
    pub fn expect(&self, expect: Expect, asked: Instant, counted: bool, inject: Option<Injection>) {
        self.inner
            .borrow_mut()
            .pending
            .push_back(Pending::Server(Slot {
                expect,
                asked,
                counted,
                inject,
                outcome: CommandOutcome::Ok,
            }));
    }

    /// Answers here, in turn; with `close`, the connection ends once it is written.
    pub fn answer(&self, answer: Bytes, close: bool) {
        let mut inner = self.inner.borrow_mut();
        inner.pending.push_back(Pending::Here { answer, close });
        inner.settle();
    }

    /// Whether every answer owed to the client has been given.
    pub fn settled(&self) -> bool {
        self.inner.borrow().pending.is_empty()
    }

    /// Whether answers are owed that the server sends without being asked to flush: those
    /// up to a Sync or a simple query. Answers to extended messages after the last Sync sit
    /// in the server's buffer until a Sync or Flush.
    pub fn owes_flushed(&self) -> bool {
        self.inner.borrow().pending.iter().any(|p| match p {
            Pending::Server(slot) => !slot.expect.extended(),
            Pending::Here { .. } => true,
        })
    }
}

impl Inner<'_> {
    fn take_messages(&mut self, now: Instant) -> io::Result<()> {
        while !self.closing {
            let Some(message) = backend::next_message(&mut self.partial)? else {
                return Ok(());
            };
            self.attribute(message, now);
            self.settle();
        }
        Ok(())
    }

    /// Passes one server message on, into the slot it answers.
    fn attribute(&mut self, message: Message, now: Instant) {
        let Message { tag, raw } = message;
        while let Some(Pending::Server(slot)) = self.pending.front()
            && slot.expect == Expect::CopyEnd
        {
            self.pending.pop_front();
        }
        if tag == b'G' {
            self.copy_in_started();
        }
        // Notices, notifications and parameter changes can come at any time.
        let unasked = matches!(tag, b'N' | b'A' | b'S');
        let Some(Pending::Server(slot)) = self.pending.front_mut().filter(|_| !unasked) else {
            self.out.extend_from_slice(&raw);
            return;
        };
        if tag == b'E' {
            match &slot.inject {
                Some(injection) if backend::is_stand_in_error(&raw) => {
                    self.out.extend_from_slice(&injection.answer);
                    self.metrics
                        .fault_fired(&injection.fault.name, injection.fault.kind.name());
                    slot.outcome = CommandOutcome::InjectedError;
                }
                _ => {
                    self.out.extend_from_slice(&raw);
                    slot.outcome = CommandOutcome::ServerError;
                }
            }
            if slot.expect.extended() {
                // A Parse, Bind or Describe that fails fails the statement the client meant
                // to execute; Executes after that one are skipped and never ran.
                let statement_failed = slot.counted;
                let outcome = slot.outcome;
                self.finish_front(now);
                self.skip_to_sync(now, (!statement_failed).then_some(outcome));
            }
            return;
        }
        self.out.extend_from_slice(&raw);
        if slot.expect.completed_by(tag) {
            self.finish_front(now);
        } else if tag == b'Z' {
            // A ReadyForQuery where none was due: the server skipped what came before.
            self.skip_to_sync(now, None);
            if let Some(Pending::Server(_)) = self.pending.front() {
                self.finish_front(now);
            }
        }
    }

    fn finish_front(&mut self, now: Instant) {
        if let Some(Pending::Server(slot)) = self.pending.pop_front()
            && slot.counted
        {
            self.stats.command(slot.outcome, now - slot.asked);
        }
    }

    /// After an error in the extended protocol the server ignores messages until Sync. The
    /// first statement skipped counts as `failed` when the error was on its way to it.
    fn skip_to_sync(&mut self, now: Instant, mut failed: Option<CommandOutcome>) {
        while let Some(Pending::Server(slot)) = self.pending.front() {
            if !slot.expect.extended() {
                break;
            }
            if slot.counted
                && let Some(outcome) = failed.take()
            {
                self.stats.command(outcome, now - slot.asked);
            }
            self.pending.pop_front();
        }
    }

    /// In copy-in mode the server ignores Sync: the Syncs sent on before the client's
    /// CopyDone or CopyFail get no ReadyForQuery. If that end has not been sent on yet, the
    /// Syncs still to come before it are ignored too.
    fn copy_in_started(&mut self) {
        let mut i = 1;
        while i < self.pending.len() {
            match &self.pending[i] {
                Pending::Server(slot) if slot.expect == Expect::Sync => {
                    self.pending.remove(i);
                }
                Pending::Server(slot) if slot.expect == Expect::CopyEnd => {
                    self.pending.remove(i);
                    return;
                }
                _ => i += 1,
            }
        }
        self.copy_in = true;
    }

    /// Gives the answers made here whose turn has come.
    fn settle(&mut self) {
        while let Some(Pending::Here { .. }) = self.pending.front() {
            let Some(Pending::Here { answer, close }) = self.pending.pop_front() else {
                break;
            };
            self.out.extend_from_slice(&answer);
            if close {
                self.closing = true;
                self.pending.clear();
                return;
            }
        }
    }
}

impl Answers for Replies<'_> {
    fn write_to(&self, client: &TcpStream, stats: &RouteStats) -> io::Result<bool> {
        let mut inner = self.inner.borrow_mut();
        let half_close = inner.ended && !inner.closing;
        write_out(&mut inner.out, client, stats, half_close)
    }

    fn broken(&self) -> Option<String> {
        self.inner.borrow().broken.clone()
    }

    fn finished(&self) -> bool {
        let inner = self.inner.borrow();
        inner.ended && inner.out.is_empty()
    }

    fn closed_here(&self) -> bool {
        let inner = self.inner.borrow();
        inner.closing && inner.out.is_empty()
    }
}

impl Sink for Replies<'_> {
    fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        let mut inner = self.inner.borrow_mut();
        if inner.broken.is_some() || inner.closing {
            // Nothing more passes; the session ends.
            return Ok(data.len());
        }
        if inner.out.len() >= OUT_CAP {
            return Err(ErrorKind::WouldBlock.into());
        }
        inner.partial.extend_from_slice(data);
        if let Err(e) = inner.take_messages(Instant::now()) {
            inner.broken = Some(e.to_string());
        }
        Ok(data.len())
    }

    fn shutdown_write(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.settle();
        inner.ended = true;
    }
}
