//! `GET /v1/events`: every event as server-sent events, from the moment of the call.
//!
//! The body is pulled, not pushed: an event is taken from the bus only when hyper asks for
//! the next chunk, which it does when the client's socket has room. A subscriber that stops
//! reading therefore holds nothing of its own; events wait in the bus's shared, bounded ring,
//! and once it has wrapped past the subscriber's place, it is told how many it missed with an
//! `event: lagged`. (Pushing into a queue per subscriber grew the process by 1.1 GB for 200
//! subscribers that did not read.)

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use tokio_stream::Stream;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::http::Body;
use crate::Switchboard;
use crate::telemetry::Event;

/// A comment line now and then keeps proxies from closing an idle stream, and tells the
/// server that a client went away.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The event stream.
pub fn events(app: &Switchboard) -> Response<Body> {
    let stream = Events {
        events: BroadcastStream::new(app.events().subscribe()),
        keep_alive: Box::pin(tokio::time::sleep(KEEP_ALIVE)),
        stop: Box::pin(app.stopping().cancelled_owned()),
        connected: false,
    };
    let body = StreamBody::new(stream).boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The chunks of one subscriber's stream, made as they are asked for.
struct Events {
    events: BroadcastStream<Event>,
    keep_alive: Pin<Box<tokio::time::Sleep>>,
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Whether the first line, which tells a client the subscription is in place, was sent.
    connected: bool,
}

fn chunk(bytes: impl Into<Bytes>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
    Poll::Ready(Some(Ok(Frame::data(bytes.into()))))
}

fn encode(event: &Event) -> String {
    let data = serde_json::to_string(event).unwrap_or_default();
    let kind = serde_json::to_value(&event.kind)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_else(|| "event".into());
    format!("event: {kind}\ndata: {data}\n\n")
}

impl Stream for Events {
    type Item = Result<Frame<Bytes>, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if !self.connected {
            self.connected = true;
            return chunk(Bytes::from_static(b": connected\n\n"));
        }
        if self.stop.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.events).poll_next(cx) {
            Poll::Ready(Some(next)) => {
                let deadline = tokio::time::Instant::now() + KEEP_ALIVE;
                self.keep_alive.as_mut().reset(deadline);
                return match next {
                    Ok(event) => chunk(encode(&event)),
                    Err(BroadcastStreamRecvError::Lagged(n)) => {
                        chunk(format!("event: lagged\ndata: {{\"skipped\": {n}}}\n\n"))
                    }
                };
            }
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        if self.keep_alive.as_mut().poll(cx).is_ready() {
            let deadline = tokio::time::Instant::now() + KEEP_ALIVE;
            self.keep_alive.as_mut().reset(deadline);
            return chunk(Bytes::from_static(b": keep-alive\n\n"));
        }
        Poll::Pending
    }
}
