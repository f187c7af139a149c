//! `GET /v1/events`: every event as server-sent events, from the moment of the call.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::http::Body;
use crate::Switchboard;

/// Chunks queued for one subscriber. A subscriber that stops reading holds at most this many
/// (plus what the socket buffers); further events wait in the bus's shared, bounded ring and,
/// once it wraps, are skipped and reported to it as a `lagged` event.
const QUEUE: usize = 16;

/// A comment line now and then keeps proxies from closing an idle stream, and tells the
/// server that a client went away.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The event stream.
pub fn events(app: &Switchboard) -> Response<Body> {
    let mut events = app.events().subscribe();
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(QUEUE);
    let stop = app.stopping();
    // The first line tells a client the subscription is in place.
    let _ = tx.try_send(Ok(Frame::data(Bytes::from_static(b": connected\n\n"))));
    tokio::spawn(async move {
        loop {
            let chunk = tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(KEEP_ALIVE) => Bytes::from_static(b": keep-alive\n\n"),
                event = events.recv() => match event {
                    Ok(event) => {
                        let data = serde_json::to_string(&event).unwrap_or_default();
                        let kind = serde_json::to_value(&event.kind)
                            .ok()
                            .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
                            .unwrap_or_else(|| "event".into());
                        Bytes::from(format!("event: {kind}\ndata: {data}\n\n"))
                    }
                    Err(RecvError::Lagged(n)) => Bytes::from(format!(
                        "event: lagged\ndata: {{\"skipped\": {n}}}\n\n"
                    )),
                    Err(RecvError::Closed) => break,
                },
            };
            // Waits while the subscriber's queue is full: it costs nothing more meanwhile.
            let sent = tokio::select! {
                () = stop.cancelled() => break,
                sent = tx.send(Ok(Frame::data(chunk))) => sent,
            };
            if sent.is_err() {
                break;
            }
        }
    });
    let body = StreamBody::new(ReceiverStream::new(rx)).boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
