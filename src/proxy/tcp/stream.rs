//! One direction of a proxied connection: what has been read, what waits to be written and
//! when, and whether the end has been passed on.
//!
//! Bytes go straight from the read buffer to the other socket while nothing shapes their
//! timing. Otherwise each chunk is queued with its arrival time and the time it is due, and
//! written once due, in order, paced by bandwidth and slicer faults at write time.
//!
//! Memory: reads go into one large buffer per worker thread, not per connection, so an idle
//! connection holds no buffer at all. Queued bytes live in one ring per direction that is
//! reused chunk after chunk (no allocation per chunk) and freed once it drains.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use tokio::net::TcpStream;

use super::plan::Plan;
use super::splice;
use crate::faults::Bandwidth;
use crate::proxy::caps::Share;
use crate::rules::Direction;
use crate::telemetry::RouteStats;

/// Bytes read at once. Large reads are what make a userspace proxy fast: with 8 KiB reads a
/// bulk transfer spends its time in system calls.
const READ_BUF: usize = 256 * 1024;

/// A drained ring larger than this is freed rather than kept for the next burst.
const KEEP_RING: usize = 16 * 1024;

thread_local! {
    /// The read buffer of every connection this worker thread runs: a read is always
    /// finished (forwarded or queued) before the task yields, so one buffer serves them all.
    static READ_BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BUF].into_boxed_slice());
}

/// How much a stream queues before it stops reading, so that a slow or delayed stream pushes
/// back on its sender through TCP rather than growing without bound.
const QUEUE_CAP: usize = 1024 * 1024;

/// One chunk as read; its bytes are the next `len - written` bytes of the ring.
#[derive(Debug)]
struct Pending {
    arrival: Instant,
    due: Instant,
    len: usize,
    written: usize,
}

/// Where a direction's bytes go: the other socket, or (in benchmarks) anything that takes
/// bytes without blocking.
pub trait Sink {
    /// Writes what it can now; `WouldBlock` when it can take nothing.
    fn try_write(&self, data: &[u8]) -> io::Result<usize>;
    /// Passes the end of the stream on.
    fn shutdown_write(&self);
    /// The socket behind it, for splicing.
    fn socket(&self) -> Option<&TcpStream> {
        None
    }
}

impl Sink for TcpStream {
    fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        TcpStream::try_write(self, data)
    }

    fn shutdown_write(&self) {
        // The peer may already be gone; its half-close is then moot.
        let _ = socket2::SockRef::from(self).shutdown(Shutdown::Write);
    }

    fn socket(&self) -> Option<&TcpStream> {
        Some(self)
    }
}

/// The state of one direction.
#[derive(Debug)]
pub struct Stream {
    direction: Direction,
    queue: VecDeque<Pending>,
    ring: VecDeque<u8>,
    queued: usize,
    eof_at: Option<Instant>,
    shut: bool,
    /// The last write hit a full socket buffer; wait for writability.
    pub write_blocked: bool,
    gate: Option<Instant>,
    bandwidth_next: Option<Instant>,
    /// This stream's part of a shared bandwidth budget, held while it has bytes waiting.
    share: Option<(Arc<str>, Share)>,
    limit_reached: bool,
    /// Bulk is flowing with nothing to shape it: move it with splice(2).
    bulk: bool,
    pipe: Option<splice::Pipe>,
    /// Bytes spliced into the pipe and not yet out of it.
    in_pipe: usize,
    /// Bytes read from the source and written to the sink, for timing round trips.
    received: u64,
    delivered: u64,
}

impl Stream {
    /// A direction with nothing read yet.
    pub fn new(direction: Direction) -> Self {
        Stream {
            direction,
            queue: VecDeque::new(),
            ring: VecDeque::new(),
            queued: 0,
            eof_at: None,
            shut: false,
            write_blocked: false,
            gate: None,
            bandwidth_next: None,
            share: None,
            limit_reached: false,
            bulk: false,
            pipe: None,
            in_pipe: 0,
            received: 0,
            delivered: 0,
        }
    }

    /// Bytes read from the source so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Bytes written to the sink so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    fn sent(&mut self, stats: &RouteStats, n: usize) {
        self.delivered += n as u64;
        stats.add_bytes(self.direction == Direction::Upstream, n);
    }

    /// Whether to wait for the source to be readable. Unshaped bytes are not read while
    /// earlier ones wait for the other socket: TCP pushes back, and nothing is copied twice.
    pub fn wants_read(&self, held: bool, shaped: bool) -> bool {
        !held
            && self.eof_at.is_none()
            && !self.limit_reached
            && self.queued < QUEUE_CAP
            && self.in_pipe == 0
            && (shaped || self.queue.is_empty())
    }

    /// The source ended (for a source read elsewhere): the end is passed on once everything
    /// before it has been.
    pub fn end_input(&mut self, now: Instant) {
        self.eof_at.get_or_insert(now);
    }

    /// Whether the stream has ended and its end was passed on.
    pub fn done(&self) -> bool {
        self.shut
    }

    /// Whether a LimitData was reached and everything allowed has been written.
    pub fn limit_spent(&self) -> bool {
        self.limit_reached && self.queue.is_empty()
    }

    /// Reads what `from` has and forwards or queues it.
    pub fn read(
        &mut self,
        from: &TcpStream,
        to: &impl Sink,
        plan: &mut Plan,
        rng: &mut StdRng,
        stats: &RouteStats,
        now: Instant,
    ) -> io::Result<()> {
        let untouched =
            self.queue.is_empty() && plan.passes_untouched(self.direction) && to.socket().is_some();
        if untouched
            && self.bulk
            && let Some(socket) = to.socket()
        {
            return self.splice_read(from, socket, stats, now);
        }
        READ_BUFFER.with_borrow_mut(|buf| match from.try_read(buf) {
            Ok(0) => {
                self.eof_at = Some(now);
                Ok(())
            }
            Ok(n) => {
                self.received += n as u64;
                // A full buffer means more is waiting: bulk, worth splicing from now on.
                self.bulk = untouched && n == buf.len();
                self.accept(&buf[..n], to, plan, rng, stats, now)
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        })
    }

    fn splice_read(
        &mut self,
        from: &TcpStream,
        to: &TcpStream,
        stats: &RouteStats,
        now: Instant,
    ) -> io::Result<()> {
        let pipe = match self.pipe.take() {
            Some(pipe) => pipe,
            None => splice::take()?,
        };
        let result = splice::fill(from, &pipe, splice::PIPE_SIZE);
        self.pipe = Some(pipe);
        match result {
            Ok(0) => self.eof_at = Some(now),
            Ok(n) => {
                self.received += n as u64;
                self.in_pipe += n;
                self.drain_pipe(to, stats)?;
                // The flow slowed: small messages go faster through read and write.
                if n < splice::PIPE_SIZE / 2 {
                    self.bulk = false;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => self.bulk = false,
            Err(e) => return Err(e),
        }
        self.release_pipe();
        Ok(())
    }

    fn drain_pipe(&mut self, to: &TcpStream, stats: &RouteStats) -> io::Result<()> {
        let Some(pipe) = &self.pipe else {
            return Ok(());
        };
        while self.in_pipe > 0 {
            match splice::drain(pipe, to, self.in_pipe) {
                Ok(n) => {
                    self.in_pipe -= n;
                    // The pipe is borrowed: count by field, not through `sent`.
                    self.delivered += n as u64;
                    stats.add_bytes(self.direction == Direction::Upstream, n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.write_blocked = true;
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Gives an empty pipe back to the thread's spares once the bulk flow stops.
    fn release_pipe(&mut self) {
        if self.in_pipe == 0
            && !self.bulk
            && let Some(pipe) = self.pipe.take()
        {
            splice::give_back(pipe);
        }
    }

    /// Forwards or queues one chunk just read, applying the faults that act on bytes.
    pub fn accept(
        &mut self,
        mut data: &[u8],
        to: &impl Sink,
        plan: &mut Plan,
        rng: &mut StdRng,
        stats: &RouteStats,
        now: Instant,
    ) -> io::Result<()> {
        if plan.drops(self.direction) {
            return Ok(());
        }
        if let Some(remaining) = plan.limit_remaining(self.direction) {
            let take = data
                .len()
                .min(usize::try_from(remaining).unwrap_or(usize::MAX));
            data = &data[..take];
            plan.record_passed(self.direction, take);
            if take as u64 == remaining {
                self.limit_reached = true;
            }
        }
        if data.is_empty() {
            return Ok(());
        }
        let direct = self.queue.is_empty() && !plan.paces(self.direction) && !plan.blackholed();
        if direct {
            match to.try_write(data) {
                Ok(n) => {
                    self.sent(stats, n);
                    data = &data[n..];
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.write_blocked = true,
                Err(e) => return Err(e),
            }
            if data.is_empty() {
                return Ok(());
            }
            self.write_blocked = true;
        }
        let delay = plan.latency(self.direction, rng).unwrap_or(Duration::ZERO);
        let due = self.later_than_last(now + delay);
        self.queued += data.len();
        self.ring.extend(data);
        self.queue.push_back(Pending {
            arrival: now,
            due,
            len: data.len(),
            written: 0,
        });
        Ok(())
    }

    /// Keeps due times in arrival order, so a shorter jitter draw never overtakes.
    fn later_than_last(&self, due: Instant) -> Instant {
        self.queue.back().map_or(due, |last| due.max(last.due))
    }

    /// Gives queued chunks new due times after the latency faults changed, measured from each
    /// chunk's arrival. With no latency left, held chunks become due at once, in order.
    pub fn retime(&mut self, plan: &Plan, rng: &mut StdRng) {
        let mut previous: Option<Instant> = None;
        for pending in self.queue.iter_mut() {
            let delay = plan.latency(self.direction, rng).unwrap_or(Duration::ZERO);
            let due = pending.arrival + delay;
            let due = previous.map_or(due, |p| due.max(p));
            pending.due = due;
            previous = Some(due);
        }
    }

    /// Writes every queued chunk that is due, then passes the end on once it is reached.
    pub fn flush(
        &mut self,
        to: &impl Sink,
        plan: &Plan,
        rng: &mut StdRng,
        stats: &RouteStats,
        now: Instant,
    ) -> io::Result<()> {
        if plan.blackholed() || self.write_blocked {
            return Ok(());
        }
        if self.in_pipe > 0
            && let Some(socket) = to.socket()
        {
            // Spliced bytes came first; nothing else goes out before them.
            self.drain_pipe(socket, stats)?;
            if self.in_pipe > 0 {
                return Ok(());
            }
            self.release_pipe();
        }
        let bandwidth = self.pace(plan);
        let slicer = plan.slicer(self.direction);
        while let Some(head) = self.queue.front_mut() {
            if head.due > now || self.gate.is_some_and(|g| g > now) {
                break;
            }
            let mut piece = head.len - head.written;
            if let Some(s) = &slicer {
                piece = piece.min(s.piece(rng));
            }
            if let Some(b) = &bandwidth {
                piece = piece.min(b.piece());
            }
            // The head's bytes start the ring; a write takes what is contiguous.
            let (front, _) = self.ring.as_slices();
            let contiguous = if front.is_empty() {
                self.ring.as_slices().1
            } else {
                front
            };
            let piece = piece.min(contiguous.len());
            let n = match to.try_write(&contiguous[..piece]) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.write_blocked = true;
                    break;
                }
                Err(e) => return Err(e),
            };
            self.delivered += n as u64;
            stats.add_bytes(self.direction == Direction::Upstream, n);
            self.ring.drain(..n);
            head.written += n;
            self.gate = None;
            if let Some(b) = &bandwidth {
                let next = b.next_after(self.bandwidth_next, now, n);
                self.bandwidth_next = Some(next);
                self.gate = Some(next);
            }
            if let Some(s) = &slicer {
                let after = now + s.delay();
                self.gate = Some(self.gate.map_or(after, |g| g.max(after)));
            }
            if head.written == head.len {
                self.queued -= head.len;
                self.queue.pop_front();
            }
        }
        if self.queue.is_empty() {
            // Nothing waits: this connection takes no part of a shared budget until it has.
            self.share = None;
            if self.ring.capacity() > KEEP_RING {
                self.ring = VecDeque::new();
            }
        }
        if self.queue.is_empty()
            && self.in_pipe == 0
            && !self.shut
            && let Some(eof_at) = self.eof_at
            && now >= eof_at + plan.slow_close(self.direction)
        {
            to.shutdown_write();
            self.shut = true;
        }
        Ok(())
    }

    /// The rate this stream is paced at now, if any: a shared budget is split evenly among
    /// the route's connections that have bytes waiting under it, this one counted in.
    fn pace(&mut self, plan: &Plan) -> Option<Bandwidth> {
        let Some((limit, fault)) = plan.bandwidth(self.direction) else {
            self.bandwidth_next = None;
            self.share = None;
            return None;
        };
        let caps = plan.gate().caps().filter(|_| limit.shared);
        let Some(caps) = caps else {
            self.share = None;
            return Some(limit);
        };
        let joined = self
            .share
            .as_ref()
            .is_some_and(|(name, _)| **name == *fault.name);
        if !joined {
            self.share = Some((Arc::from(fault.name.as_str()), caps.join_share(&fault.name)));
        }
        let sharers = self.share.as_ref().map_or(1, |(_, s)| s.sharers());
        Some(limit.share(sharers))
    }

    /// When this stream next needs attention without any socket event.
    pub fn wake(&self, plan: &Plan) -> Option<Instant> {
        if self.write_blocked || plan.blackholed() {
            return None;
        }
        match self.queue.front() {
            Some(head) => Some(self.gate.map_or(head.due, |g| g.max(head.due))),
            None if !self.shut => self.eof_at.map(|t| t + plan.slow_close(self.direction)),
            None => None,
        }
    }
}
