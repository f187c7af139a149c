//! Response bodies as faults shape them: dripped (SlowBody) or cut short (Truncate). Both
//! stream: nothing is buffered whole.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use tokio::time::Instant;

/// Errors a proxied body can end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every body the HTTP proxy answers with.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// A body that holds places under capped faults until it is done or dropped.
pub struct HoldingBody {
    inner: ProxyBody,
    _permits: Vec<crate::proxy::caps::Permit>,
}

impl HoldingBody {
    /// `inner`, holding `permits` as long as it lives.
    pub fn new(inner: ProxyBody, permits: Vec<crate::proxy::caps::Permit>) -> Self {
        HoldingBody {
            inner,
            _permits: permits,
        }
    }
}

impl Body for HoldingBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The error a truncated body ends with; the client sees an aborted response.
#[derive(Debug, thiserror::Error)]
#[error("response truncated by a fault after {0} bytes")]
pub struct Truncated(pub u64);

/// Passes `limit` bytes of `inner`, then fails.
pub struct TruncatedBody {
    inner: ProxyBody,
    left: u64,
    limit: u64,
    done: bool,
    /// The cut comes one poll after the last bytes, so that the server writes them (and the
    /// response head) before it aborts.
    flushed: bool,
    /// Called once, when the body is actually cut (a shorter body is passed whole).
    on_cut: Option<OnCut>,
}

/// What a truncated body does when it cuts.
pub type OnCut = Box<dyn FnOnce() + Send>;

impl TruncatedBody {
    /// Cuts `inner` after `limit` bytes, calling `on_cut` if it does.
    pub fn new(inner: ProxyBody, limit: u64, on_cut: OnCut) -> Self {
        TruncatedBody {
            inner,
            left: limit,
            limit,
            done: false,
            flushed: false,
            on_cut: Some(on_cut),
        }
    }

    fn cut(&mut self, sent: u64) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.done = true;
        if let Some(on_cut) = self.on_cut.take() {
            on_cut();
        }
        Poll::Ready(Some(Err(Box::new(Truncated(sent)))))
    }
}

impl Body for TruncatedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.left == 0 {
            if !self.flushed {
                self.flushed = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            // A body of exactly the limit ends here untouched; only one with more is cut.
            return match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(None) => {
                    self.done = true;
                    Poll::Ready(None)
                }
                Poll::Ready(Some(_)) => {
                    let sent = self.limit;
                    self.cut(sent)
                }
            };
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(mut data) => {
                    let keep = usize::try_from(self.left)
                        .unwrap_or(usize::MAX)
                        .min(data.len());
                    data.truncate(keep);
                    self.left -= keep as u64;
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                // Trailers after the cut would make the body look complete.
                Err(_) => {
                    let sent = self.limit - self.left;
                    self.cut(sent)
                }
            },
            // A body shorter than the limit is passed whole.
            other => other,
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Drips `inner` at `bytes_per_sec`, in pieces of 50 ms worth.
pub struct SlowBody {
    inner: ProxyBody,
    bytes_per_sec: u64,
    pending: Bytes,
    started: Option<Instant>,
    sent: u64,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl SlowBody {
    /// Paces `inner` to `bytes_per_sec` (at least 1).
    pub fn new(inner: ProxyBody, bytes_per_sec: u64) -> Self {
        SlowBody {
            inner,
            bytes_per_sec: bytes_per_sec.max(1),
            pending: Bytes::new(),
            started: None,
            sent: 0,
            sleep: None,
        }
    }

    /// When the bytes sent so far are due, at the rate.
    fn due(&self, started: Instant) -> Instant {
        started + Duration::from_secs_f64(self.sent as f64 / self.bytes_per_sec as f64)
    }
}

impl Body for SlowBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.pending.is_empty() {
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => self.pending = data,
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                other => return other,
            }
            if self.pending.is_empty() {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        let started = *self.started.get_or_insert_with(Instant::now);
        let due = self.due(started);
        if due > Instant::now() {
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
            sleep.as_mut().reset(due);
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        let piece_len = usize::try_from(self.bytes_per_sec / 20)
            .unwrap_or(usize::MAX)
            .max(1)
            .min(self.pending.len());
        let piece = self.pending.split_to(piece_len);
        self.sent += piece.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }
}

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}
