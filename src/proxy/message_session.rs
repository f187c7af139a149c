//! The loop that runs one connection of a protocol route (Redis, PostgreSQL) in one task, as
//! a TCP session is run, with the protocol's messages in place of chunks.
//!
//! A [`Dialect`] cuts the client's bytes into messages, decides on each as it arrives and
//! holds it until it is due; the loop releases what is due, and the dialect sends each one
//! on (itself or a stand-in), answers it in the server's place, or ends the connection. Bytes
//! sent on and the server's answers pass through the same streams as on a TCP route, so
//! every TCP fault acts on these routes too; the server's side ends in the dialect's
//! [`Answers`], which merges the route's own answers into it in order.

use std::io::{self, ErrorKind};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use rand::rngs::StdRng;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::proxy::tcp::{Cut, Ending, Plan, Sink, Stream};
use crate::rules::Direction;
use crate::store::RuleSet;
use crate::telemetry::{Metrics, RouteStats};

/// What a connection's loop and its dialect share: the two sockets, the route's faults on
/// the connection, and where things are counted.
pub struct Io<'a> {
    pub client: &'a TcpStream,
    pub upstream: &'a TcpStream,
    pub plan: Plan,
    pub rng: StdRng,
    pub stats: &'a RouteStats,
    pub metrics: &'a Metrics,
    pub route: &'a str,
}

impl Io<'_> {
    /// Sends `bytes` on to the server through the upstream stream's faults.
    pub fn send(&mut self, up: &mut Stream, bytes: &[u8], now: Instant) -> Result<(), Ending> {
        up.accept(
            bytes,
            self.upstream,
            &mut self.plan,
            &mut self.rng,
            self.stats,
            now,
        )
        .map_err(|e| Ending::Broken(Direction::Upstream, e))
    }
}

/// Messages released together, sent on in one write as the client's pipeline arrived: one
/// system call for the lot instead of one per message.
#[derive(Default)]
pub struct Batch {
    first: Option<Bytes>,
    joined: Option<BytesMut>,
}

impl Batch {
    /// Adds a message behind those already in the batch.
    pub fn push(&mut self, bytes: Bytes) {
        match (&mut self.joined, self.first.take()) {
            (Some(joined), _) => joined.extend_from_slice(&bytes),
            (None, None) => self.first = Some(bytes),
            (None, Some(first)) => {
                let mut joined = BytesMut::with_capacity(first.len() + bytes.len());
                joined.extend_from_slice(&first);
                joined.extend_from_slice(&bytes);
                self.joined = Some(joined);
            }
        }
    }

    /// Sends the batch on to the server, leaving it empty.
    pub fn send(&mut self, io: &mut Io<'_>, up: &mut Stream, now: Instant) -> Result<(), Ending> {
        let bytes = self
            .joined
            .take()
            .map(BytesMut::freeze)
            .or(self.first.take());
        match bytes {
            Some(bytes) => io.send(up, &bytes, now),
            None => Ok(()),
        }
    }
}

/// The client's side of the answer stream: the server's answers, with the route's merged in.
pub trait Answers: Sink {
    /// Writes what the client's socket takes now. `Ok(true)` when bytes are left for it.
    fn write_to(&self, client: &TcpStream, stats: &RouteStats) -> io::Result<bool>;
    /// Why the server's bytes are not the protocol, if they are not.
    fn broken(&self) -> Option<String>;
    /// Whether the server's side ended and everything for the client was written.
    fn finished(&self) -> bool;
    /// Whether the route answered with an ending of its own (a FATAL error), now written.
    fn closed_here(&self) -> bool {
        false
    }
}

/// Writes what the client's socket takes of `out` now, counting it as bytes downstream;
/// once `out` is empty and `half_close` is asked, passes the end of the stream on.
/// `Ok(true)` when bytes are left for the client.
pub fn write_out(
    out: &mut BytesMut,
    client: &TcpStream,
    stats: &RouteStats,
    half_close: bool,
) -> io::Result<bool> {
    while !out.is_empty() {
        match client.try_write(out) {
            Ok(n) => {
                stats.add_bytes(false, n);
                let _ = out.split_to(n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(true),
            Err(e) => return Err(e),
        }
    }
    if half_close {
        // The peer may already be gone; its half-close is then moot.
        let _ = socket2::SockRef::from(client).shutdown(std::net::Shutdown::Write);
    }
    Ok(false)
}

/// Why reading the client ended the connection.
pub enum Failed {
    Io(io::Error),
    Protocol(String),
}

/// One protocol's part of a session.
pub trait Dialect {
    type Answers: Answers;
    /// The protocol's name, for logs.
    const NAME: &'static str;

    fn answers(&self) -> &Self::Answers;
    /// Reads what the client sent and decides on every whole message in it.
    fn read_client(&mut self, io: &mut Io<'_>, rules: &RuleSet) -> Result<(), Failed>;
    /// Whether the client is to be read: it has not ended and not too much is held.
    fn wants_client(&self) -> bool;
    /// When the oldest held message is due, unless it waits for answers first.
    fn next_due(&self) -> Option<Instant>;
    /// Sends on, answers or ends on every held message that is due, in order.
    fn release(&mut self, io: &mut Io<'_>, up: &mut Stream, now: Instant) -> Result<(), Ending>;
    /// Counts a connection closed for bytes that are not the protocol.
    fn count_protocol_error(&self);
}

/// Runs until both directions are done or something ends the connection.
pub async fn run<D: Dialect>(
    mut io: Io<'_>,
    mut dialect: D,
    rules: &mut watch::Receiver<Arc<RuleSet>>,
) -> Ending {
    let mut up = Stream::new(Direction::Upstream);
    let mut down = Stream::new(Direction::Downstream);
    let mut snapshot = rules.borrow().clone();
    let mut client_blocked = false;
    let mut timer = crate::proxy::timer::sleep_until(Instant::now());
    loop {
        let now = Instant::now();
        if let Some(ending) = cut(&io.plan, now) {
            return ending;
        }
        if let Err(ending) = dialect.release(&mut io, &mut up, now) {
            return ending;
        }
        if let Err(e) = up.flush(io.upstream, &io.plan, &mut io.rng, io.stats, now) {
            return Ending::Broken(Direction::Upstream, e);
        }
        let answers = dialect.answers();
        if let Err(e) = down.flush(answers, &io.plan, &mut io.rng, io.stats, now) {
            return Ending::Broken(Direction::Downstream, e);
        }
        if let Some(why) = answers.broken() {
            return protocol_error(&dialect, &io, Direction::Downstream, why);
        }
        if !io.plan.blackholed() {
            match answers.write_to(io.client, io.stats) {
                Ok(blocked) => client_blocked = blocked,
                Err(e) => return Ending::Broken(Direction::Downstream, e),
            }
            // The answer stream takes server bytes again once the client has read.
            if !client_blocked {
                down.write_blocked = false;
            }
        }
        if answers.closed_here() {
            return Ending::Cut(Cut::Close("fatal error answered"));
        }
        if up.limit_spent() || down.limit_spent() {
            return Ending::Cut(Cut::Close("limit data"));
        }
        if up.done() && answers.finished() {
            return Ending::Finished;
        }

        let held = io.plan.blackholed();
        let wake = [
            io.plan.deadline().map(|(at, _)| at),
            up.wake(&io.plan),
            down.wake(&io.plan),
            dialect.next_due().filter(|_| !held),
        ]
        .into_iter()
        .flatten()
        .min();
        if let Some(at) = wake {
            timer.reset(at);
        }
        let read_client = dialect.wants_client() && up.wants_read(held, true);

        tokio::select! {
            changed = rules.changed() => {
                if changed.is_err() {
                    return Ending::Stopped;
                }
                snapshot = rules.borrow_and_update().clone();
                apply(&mut io, &snapshot, &mut up, &mut down);
            }
            ready = io.client.readable(), if read_client => {
                if let Err(e) = ready {
                    return Ending::Broken(Direction::Upstream, e);
                }
                match dialect.read_client(&mut io, &snapshot) {
                    Ok(()) => {}
                    Err(Failed::Io(e)) => return Ending::Broken(Direction::Upstream, e),
                    Err(Failed::Protocol(why)) => {
                        return protocol_error(&dialect, &io, Direction::Upstream, why);
                    }
                }
            }
            ready = io.upstream.readable(), if down.wants_read(held, io.plan.paces(Direction::Downstream)) => {
                let result = ready.and_then(|()| down.read(
                    io.upstream, dialect.answers(), &mut io.plan, &mut io.rng, io.stats, Instant::now(),
                ));
                if let Err(e) = result {
                    return Ending::Broken(Direction::Downstream, e);
                }
            }
            ready = io.upstream.writable(), if up.write_blocked && !held => {
                if let Err(e) = ready {
                    return Ending::Broken(Direction::Upstream, e);
                }
                up.write_blocked = false;
            }
            ready = io.client.writable(), if client_blocked && !held => {
                if let Err(e) = ready {
                    return Ending::Broken(Direction::Downstream, e);
                }
            }
            () = &mut timer, if wake.is_some() => {}
        }
    }
}

/// How a fault or the route's state ends the connection now, if one does.
fn cut(plan: &Plan, now: Instant) -> Option<Ending> {
    if let Some((at, cut)) = plan.deadline()
        && at <= now
    {
        return Some(Ending::Cut(cut));
    }
    if plan.route_gone() {
        return Some(Ending::Cut(Cut::Close("route disabled")));
    }
    plan.partition_cut().map(Ending::Cut)
}

fn apply(io: &mut Io<'_>, rules: &RuleSet, up: &mut Stream, down: &mut Stream) {
    let before = [
        io.plan.latency_key(Direction::Upstream),
        io.plan.latency_key(Direction::Downstream),
    ];
    io.plan.refresh(rules, Instant::now(), io.metrics);
    if io.plan.latency_key(Direction::Upstream) != before[0] {
        up.retime(&io.plan, &mut io.rng);
    }
    if io.plan.latency_key(Direction::Downstream) != before[1] {
        down.retime(&io.plan, &mut io.rng);
    }
}

/// Counts and logs bytes that broke the protocol; the connection ends.
fn protocol_error<D: Dialect>(dialect: &D, io: &Io<'_>, side: Direction, why: String) -> Ending {
    dialect.count_protocol_error();
    let from = match side {
        Direction::Upstream => "client",
        _ => "server",
    };
    tracing::warn!(route = %io.route, protocol = D::NAME, from, error = %why, "closing a connection: bytes that are not its protocol");
    Ending::Broken(side, io::Error::new(ErrorKind::InvalidData, why))
}
