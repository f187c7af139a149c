//! A scripted HTTP upstream on port 0, counting the requests it gets.
//!
//! `GET /bytes/N` answers N bytes, streamed; `POST /count` answers how many body bytes it
//! read; `GET /headers` answers the request's headers as JSON; anything else answers
//! "hello from upstream".

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

pub struct HttpUpstream {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicUsize>,
}

impl HttpUpstream {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn text(body: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(body.into()).boxed_unsync()
}

async fn handle(mut request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path().to_string();
    if path == "/ws" && request.headers().contains_key("upgrade") {
        // Switch protocols, then echo whatever comes over the raw connection.
        let upgrade = hyper::upgrade::on(&mut request);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                let (mut r, mut w) = tokio::io::split(TokioIo::new(upgraded));
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
        let mut response = Response::new(text(""));
        *response.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
        response.headers_mut().insert(
            "connection",
            hyper::header::HeaderValue::from_static("upgrade"),
        );
        response.headers_mut().insert(
            "upgrade",
            hyper::header::HeaderValue::from_static("websocket"),
        );
        return Ok(response);
    }
    if let Some(n) = path
        .strip_prefix("/bytes/")
        .and_then(|n| n.parse::<usize>().ok())
    {
        let chunk = 64 * 1024;
        let stream = futures_util::stream::iter((0..n).step_by(chunk).map(move |start| {
            let len = chunk.min(n - start);
            Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'x'; len])))
        }));
        return Ok(Response::new(StreamBody::new(stream).boxed_unsync()));
    }
    if path == "/count" {
        let mut body = request.into_body();
        let mut total = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                total += data.len();
            }
        }
        return Ok(Response::new(text(total.to_string())));
    }
    if path == "/headers" {
        let headers: serde_json::Map<String, serde_json::Value> = request
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    serde_json::Value::from(v.to_str().unwrap_or("")),
                )
            })
            .collect();
        return Ok(Response::new(text(
            serde_json::Value::Object(headers).to_string(),
        )));
    }
    let mut response = Response::new(text(format!("hello from upstream: {path}")));
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    Ok(response)
}

/// Starts the upstream (HTTP/1.1 and h2c).
pub async fn start() -> HttpUpstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |r| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    handle(r)
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    HttpUpstream { addr, requests }
}
