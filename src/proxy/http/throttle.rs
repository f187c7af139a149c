//! `Bandwidth` on HTTP routes: the client connection itself is paced, as on a TCP route. Reads
//! (client → proxy) follow the faults on the `Upstream` stream, writes (proxy → client) those
//! on `Downstream`. Whether a fault applies is drawn once per connection (and decided by its
//! `when: (client: ...)` and `max_active`); the rules are read again only when they change.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use crate::faults::{Bandwidth, FaultKind, rng};
use crate::proxy::caps::Permit;
use crate::proxy::gate::Gate;
use crate::rules::Direction;
use crate::store::RuleSet;

/// One direction's pace.
#[derive(Default)]
struct Pace {
    limit: Option<Bandwidth>,
    next: Option<std::time::Instant>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Pace {
    /// Ready when the pace allows the next bytes.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(next) = self.next else {
            return Poll::Ready(());
        };
        if self.limit.is_none() || next <= std::time::Instant::now() {
            return Poll::Ready(());
        }
        let at = Instant::from_std(next);
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        sleep.as_mut().reset(at);
        sleep.as_mut().poll(cx)
    }

    fn record(&mut self, n: usize) {
        if let Some(limit) = self.limit {
            self.next = Some(limit.next_after(self.next, std::time::Instant::now(), n));
        }
    }

    fn piece(&self, len: usize) -> usize {
        self.limit.map_or(len, |l| len.min(l.piece()))
    }
}

/// A connection paced by the route's `Bandwidth` faults.
pub struct Throttled<S> {
    inner: S,
    rules: watch::Receiver<Arc<RuleSet>>,
    route: Arc<str>,
    seed: u64,
    connection: u64,
    up: Pace,
    down: Pace,
    gate: Gate,
    /// Places under capped bandwidth faults in force on this connection, by fault name.
    permits: Vec<(String, Permit)>,
    /// Where a paced read lands first, so that no read takes more than its piece.
    scratch: Vec<u8>,
}

impl<S> Throttled<S> {
    /// Paces `inner`, connection number `connection` of `route`.
    pub fn new(
        inner: S,
        rules: watch::Receiver<Arc<RuleSet>>,
        route: Arc<str>,
        seed: u64,
        connection: u64,
        gate: Gate,
    ) -> Self {
        let mut throttled = Throttled {
            inner,
            rules,
            route,
            seed,
            connection,
            up: Pace::default(),
            down: Pace::default(),
            gate,
            permits: Vec::new(),
            scratch: Vec::new(),
        };
        throttled.rules.mark_changed();
        throttled
    }

    fn refresh(&mut self) {
        if !self.rules.has_changed().unwrap_or(false) {
            return;
        }
        let rules = Arc::clone(&self.rules.borrow_and_update());
        let mut held = std::mem::take(&mut self.permits);
        let mut in_force = Vec::new();
        for f in rules.faults_for(&self.route) {
            let FaultKind::Bandwidth(b) = f.kind else {
                continue;
            };
            if !f.enabled
                || !self.gate.client_allowed(f)
                || !rng::decide(
                    self.seed,
                    &self.route,
                    &f.name,
                    self.connection,
                    f.probability,
                )
            {
                continue;
            }
            if f.max_active.is_some() {
                // A place taken earlier is kept; a new one is taken if the cap has room.
                match held.iter().position(|(name, _)| *name == f.name) {
                    Some(i) => self.permits.push(held.swap_remove(i)),
                    None => match self.gate.admit(f) {
                        Some(Some(permit)) => self.permits.push((f.name.clone(), permit)),
                        _ => continue,
                    },
                }
            }
            in_force.push((f.direction, b));
        }
        let limit = |stream: Direction| {
            in_force
                .iter()
                .filter(|(direction, _)| direction.covers(stream))
                .map(|(_, b)| *b)
                .min_by_key(|b| b.bytes_per_sec)
        };
        self.up.limit = limit(Direction::Upstream);
        self.down.limit = limit(Direction::Downstream);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Throttled<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.refresh();
        ready!(self.up.poll_ready(cx));
        let piece = self.up.piece(buf.remaining());
        if piece == buf.remaining() {
            let before = buf.filled().len();
            ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
            let n = buf.filled().len() - before;
            self.up.record(n);
            return Poll::Ready(Ok(()));
        }
        // A read as large as the caller's buffer could take several seconds' budget at once.
        let this = &mut *self;
        this.scratch.resize(piece, 0);
        let mut limited = ReadBuf::new(&mut this.scratch[..piece]);
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut limited))?;
        let n = limited.filled().len();
        buf.put_slice(limited.filled());
        this.up.record(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Throttled<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.refresh();
        ready!(self.down.poll_ready(cx));
        let piece = self.down.piece(data.len());
        let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &data[..piece]))?;
        self.down.record(n);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
