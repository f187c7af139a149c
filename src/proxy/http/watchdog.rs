//! Time limits on the client side of an HTTP connection, for the control endpoint and HTTP
//! routes alike: a client must send a request's head within the header timeout (from accept,
//! or from the first byte of each later request), and a keep-alive connection with no request
//! in progress and no bytes moving is closed after the idle timeout. Without them, slowloris
//! clients hold connections (and descriptors) forever.
//!
//! hyper's own `header_read_timeout` also runs while a keep-alive connection waits for its
//! next request, which would close idle connections after a few seconds: a proxy that did
//! that would inject failures (a request racing the close) nobody asked for. So the two
//! limits are kept here, from what [`WatchedIo`] sees move and what the service has in hand.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::telemetry::RouteStats;
use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;

/// The client-side limits of an HTTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnTimeouts {
    /// From accept (or a later request's first byte) to its complete head.
    pub header: Duration,
    /// A connection with no request in progress and no bytes moving is closed after this.
    pub idle: Duration,
}

impl Default for ConnTimeouts {
    fn default() -> Self {
        ConnTimeouts {
            header: Duration::from_secs(10),
            idle: Duration::from_secs(300),
        }
    }
}

/// What a connection has been doing, shared by its I/O, its service and its watchdog.
#[derive(Debug)]
pub struct Activity {
    origin: Instant,
    /// Milliseconds since `origin` of the last byte moved either way.
    last: AtomicU64,
    /// Milliseconds since `origin`, plus one, at which an unfinished request head began; 0
    /// when none is being read.
    head_since: AtomicU64,
    in_flight: AtomicUsize,
    /// HTTP/2 frames (pings, settings) arrive between requests; only idleness applies.
    h2: AtomicBool,
    seen_bytes: AtomicBool,
}

/// What the watchdog found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Nothing is due; look again after this long.
    Fine(Duration),
    /// A request head took longer than the header timeout.
    HeaderTimeout,
    /// Nothing happened for the idle timeout.
    Idle,
}

/// Why [`drive`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The connection finished on its own (or after a graceful stop).
    Finished,
    /// Closed: a request head was too slow.
    HeaderTimeout,
    /// Closed: idle too long.
    Idle,
    /// The grace period after a stop ran out: the caller resets the connection.
    Aborted,
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

impl Activity {
    /// A connection accepted now: its first request head is due within the header timeout.
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            origin: Instant::now(),
            last: AtomicU64::new(0),
            head_since: AtomicU64::new(1),
            in_flight: AtomicUsize::new(0),
            h2: AtomicBool::new(false),
            seen_bytes: AtomicBool::new(false),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn read(&self, bytes: &[u8]) {
        let now = self.now_ms();
        self.last.store(now, Ordering::Relaxed);
        if !self.seen_bytes.swap(true, Ordering::Relaxed) && bytes.starts_with(H2_PREFACE) {
            self.h2.store(true, Ordering::Relaxed);
            self.head_since.store(0, Ordering::Relaxed);
        }
        if self.h2.load(Ordering::Relaxed) || self.in_flight.load(Ordering::Relaxed) > 0 {
            return;
        }
        // A new request head starts with this read, unless one is already being read.
        let _ = self
            .head_since
            .compare_exchange(0, now + 1, Ordering::Relaxed, Ordering::Relaxed);
    }

    fn wrote(&self) {
        self.last.store(self.now_ms(), Ordering::Relaxed);
    }

    /// A request reached the service: its head is complete. The guard marks it finished
    /// when dropped (wrap the response body in [`Guarded`] so that is after the body).
    pub fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(0, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// Whether a limit ran out, judged now.
    pub fn check(&self, limits: ConnTimeouts) -> Check {
        let now = self.now_ms();
        let head_since = self.head_since.load(Ordering::Relaxed);
        if head_since > 0 {
            let waited = Duration::from_millis(now.saturating_sub(head_since - 1));
            return match limits.header.checked_sub(waited) {
                Some(left) if !left.is_zero() => Check::Fine(left.min(limits.idle)),
                _ => Check::HeaderTimeout,
            };
        }
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Check::Fine(limits.idle);
        }
        let quiet = Duration::from_millis(now.saturating_sub(self.last.load(Ordering::Relaxed)));
        match limits.idle.checked_sub(quiet) {
            Some(left) if !left.is_zero() => Check::Fine(left),
            _ => Check::Idle,
        }
    }
}

/// One request in progress; see [`Activity::request`].
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.wrote();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request counted as in progress until it is dropped.
#[derive(Debug)]
pub struct Guarded<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B> Guarded<B> {
    /// `inner`, holding `in_flight` for as long as it lives.
    pub fn new(inner: B, in_flight: InFlight) -> Self {
        Guarded {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl<B: Body + Unpin> Body for Guarded<B>
where
    B::Data: Buf,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A client stream whose traffic is reported to an [`Activity`].
#[derive(Debug)]
pub struct WatchedIo<T> {
    io: T,
    activity: Arc<Activity>,
    /// A route's counters of bytes each way, when the connection is a route's client.
    bytes: Option<RouteStats>,
}

impl<T> WatchedIo<T> {
    /// Wraps `io`.
    pub fn new(io: T, activity: Arc<Activity>) -> Self {
        WatchedIo {
            io,
            activity,
            bytes: None,
        }
    }

    /// Counts what the client sends as bytes upstream and what it is sent as bytes
    /// downstream, in `stats`.
    pub fn counting(mut self, stats: RouteStats) -> Self {
        self.bytes = Some(stats);
        self
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WatchedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read(&buf.filled()[before..]);
            if let Some(stats) = &self.bytes {
                stats.add_bytes(true, buf.filled().len() - before);
            }
        }
        polled
    }
}

impl<T> WatchedIo<T> {
    fn wrote(&self, n: usize) {
        self.activity.wrote();
        if let Some(stats) = &self.bytes {
            stats.add_bytes(false, n);
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WatchedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled
            && n > 0
        {
            self.wrote(n);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled
            && n > 0
        {
            self.wrote(n);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Runs a served connection until it ends, closing it when a limit runs out, and asking it
/// to finish gracefully (`graceful`) once `stop` fires or it has been idle too long. Returns
/// [`Ended::Aborted`] at once when `abort` fires.
pub async fn drive<C, E>(
    mut conn: Pin<&mut C>,
    activity: &Activity,
    limits: ConnTimeouts,
    (stop, abort): (&CancellationToken, &CancellationToken),
    mut graceful: impl FnMut(Pin<&mut C>),
) -> (Ended, Result<(), E>)
where
    C: Future<Output = Result<(), E>>,
{
    let mut winding_down = None;
    loop {
        let wait = match activity.check(limits) {
            Check::Fine(wait) => wait,
            Check::HeaderTimeout => return (Ended::HeaderTimeout, Ok(())),
            Check::Idle if winding_down.is_none() => {
                graceful(conn.as_mut());
                winding_down = Some(Ended::Idle);
                // A connection told to finish while idle closes at once; should it not,
                // the header limit bounds the wait.
                limits.header
            }
            Check::Idle => limits.header,
        };
        tokio::select! {
            result = conn.as_mut() => return (winding_down.unwrap_or(Ended::Finished), result),
            () = tokio::time::sleep(wait) => {
                if winding_down == Some(Ended::Idle) && matches!(activity.check(limits), Check::Idle) {
                    return (Ended::Idle, Ok(()));
                }
            }
            () = stop.cancelled(), if winding_down.is_none() => {
                graceful(conn.as_mut());
                winding_down = Some(Ended::Finished);
            }
            () = abort.cancelled() => return (Ended::Aborted, Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ConnTimeouts = ConnTimeouts {
        header: Duration::from_secs(10),
        idle: Duration::from_secs(300),
    };

    #[test]
    fn the_first_head_is_due_from_accept() {
        let a = Activity::new();
        assert!(matches!(a.check(LIMITS), Check::Fine(d) if d <= LIMITS.header));
        let _req = a.request();
        assert_eq!(a.check(LIMITS), Check::Fine(LIMITS.idle));
    }

    #[test]
    fn a_finished_request_leaves_the_connection_idle_not_reading_a_head() {
        let a = Activity::new();
        drop(a.request());
        assert!(matches!(a.check(LIMITS), Check::Fine(d) if d > LIMITS.header));
        a.read(b"GET / HT");
        assert!(matches!(a.check(LIMITS), Check::Fine(d) if d <= LIMITS.header));
    }

    #[test]
    fn limits_that_ran_out_are_reported() {
        let a = Activity::new();
        let zero = ConnTimeouts {
            header: Duration::ZERO,
            idle: Duration::ZERO,
        };
        assert_eq!(a.check(zero), Check::HeaderTimeout);
        drop(a.request());
        assert_eq!(a.check(zero), Check::Idle);
    }

    #[test]
    fn http2_frames_between_requests_are_not_a_slow_head() {
        let a = Activity::new();
        a.read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        a.read(b"\0\0\x08\x06\0\0\0\0\0ping....");
        assert!(matches!(a.check(LIMITS), Check::Fine(d) if d > LIMITS.header));
    }
}
