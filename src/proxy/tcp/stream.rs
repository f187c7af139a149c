//! One direction of a proxied connection: what has been read, what waits to be written and
//! when, and whether the end has been passed on.
//!
//! Bytes go straight from the read buffer to the other socket while nothing shapes their
//! timing. Otherwise each chunk is queued with its arrival time and the time it is due, and
//! written once due, in order, paced by bandwidth and slicer faults at write time.

use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use tokio::net::TcpStream;

use super::plan::Plan;
use crate::rules::Direction;
use crate::telemetry::RouteStats;

/// Bytes read at once. Large buffers are what make a userspace proxy fast.
const READ_BUF: usize = 64 * 1024;

/// How much a stream queues before it stops reading, so that a slow or delayed stream pushes
/// back on its sender through TCP rather than growing without bound.
const QUEUE_CAP: usize = 1024 * 1024;

#[derive(Debug)]
struct Pending {
    arrival: Instant,
    due: Instant,
    data: Vec<u8>,
    written: usize,
}

/// The state of one direction.
#[derive(Debug)]
pub struct Stream {
    direction: Direction,
    buf: Option<Box<[u8]>>,
    queue: VecDeque<Pending>,
    queued: usize,
    eof_at: Option<Instant>,
    shut: bool,
    /// The last write hit a full socket buffer; wait for writability.
    pub write_blocked: bool,
    gate: Option<Instant>,
    bandwidth_next: Option<Instant>,
    limit_reached: bool,
}

impl Stream {
    /// A direction with nothing read yet.
    pub fn new(direction: Direction) -> Self {
        Stream {
            direction,
            buf: None,
            queue: VecDeque::new(),
            queued: 0,
            eof_at: None,
            shut: false,
            write_blocked: false,
            gate: None,
            bandwidth_next: None,
            limit_reached: false,
        }
    }

    /// Whether to wait for the source to be readable.
    pub fn wants_read(&self, held: bool) -> bool {
        !held && self.eof_at.is_none() && !self.limit_reached && self.queued < QUEUE_CAP
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
        to: &TcpStream,
        plan: &mut Plan,
        rng: &mut StdRng,
        stats: &RouteStats,
        now: Instant,
    ) -> io::Result<()> {
        let mut buf = self
            .buf
            .take()
            .unwrap_or_else(|| vec![0; READ_BUF].into_boxed_slice());
        let result = match from.try_read(&mut buf) {
            Ok(0) => {
                self.eof_at = Some(now);
                Ok(())
            }
            Ok(n) => self.accept(&buf[..n], to, plan, rng, stats, now),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        };
        self.buf = Some(buf);
        result
    }

    fn accept(
        &mut self,
        mut data: &[u8],
        to: &TcpStream,
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
                    stats.add_bytes(self.upstream(), n);
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
        self.queue.push_back(Pending {
            arrival: now,
            due,
            data: data.to_vec(),
            written: 0,
        });
        Ok(())
    }

    fn upstream(&self) -> bool {
        self.direction == Direction::Upstream
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
        to: &TcpStream,
        plan: &Plan,
        rng: &mut StdRng,
        stats: &RouteStats,
        now: Instant,
    ) -> io::Result<()> {
        if plan.blackholed() || self.write_blocked {
            return Ok(());
        }
        let bandwidth = plan.bandwidth(self.direction);
        if bandwidth.is_none() {
            self.bandwidth_next = None;
        }
        let slicer = plan.slicer(self.direction);
        while let Some(head) = self.queue.front_mut() {
            if head.due > now || self.gate.is_some_and(|g| g > now) {
                break;
            }
            let mut piece = head.data.len() - head.written;
            if let Some(s) = &slicer {
                piece = piece.min(s.piece(rng));
            }
            if let Some(b) = &bandwidth {
                piece = piece.min(b.piece());
            }
            let n = match to.try_write(&head.data[head.written..head.written + piece]) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.write_blocked = true;
                    break;
                }
                Err(e) => return Err(e),
            };
            stats.add_bytes(self.direction == Direction::Upstream, n);
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
            if head.written == head.data.len() {
                self.queued -= head.data.len();
                self.queue.pop_front();
            }
        }
        if self.queue.is_empty()
            && !self.shut
            && let Some(eof_at) = self.eof_at
            && now >= eof_at + plan.slow_close(self.direction)
        {
            // The peer may already be gone; its half-close is then moot.
            let _ = socket2::SockRef::from(to).shutdown(Shutdown::Write);
            self.shut = true;
        }
        Ok(())
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
