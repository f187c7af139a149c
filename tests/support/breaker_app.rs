//! A small app with a known recovery behaviour, for drills to measure: `GET /catalog` always
//! answers; `GET /orders` answers "order placed" while its database is healthy, and 503
//! "ordering is temporarily unavailable" while its circuit breaker is open. The breaker opens
//! on the first failed health check (every 50 ms) and closes only after the database has
//! answered for 2 s without a failure, so a drill must measure a recovery of 2 s plus at
//! most a health-check and a probe interval.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// How long the database must stay healthy before orders are taken again.
pub const CLOSE_AFTER: Duration = Duration::from_secs(2);
const HEALTH_EVERY: Duration = Duration::from_millis(50);

#[derive(Default)]
struct Breaker {
    open: bool,
    healthy_since: Option<Instant>,
}

/// Starts the app on port 0, reaching its database (an echo server) at `db`.
pub async fn start(db: SocketAddr) -> SocketAddr {
    let breaker = Arc::new(Mutex::new(Breaker::default()));
    tokio::spawn(health_checks(db, breaker.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the app");
    let addr = listener.local_addr().expect("app address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let breaker = breaker.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |r: Request<Incoming>| {
                    let open = breaker.lock().map(|b| b.open).unwrap_or(true);
                    async move { Ok::<_, Infallible>(answer(r.uri().path(), open)) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn answer(path: &str, breaker_open: bool) -> Response<Full<Bytes>> {
    let (status, body) = match (path, breaker_open) {
        ("/catalog", _) => (StatusCode::OK, "catalog: kettle, teapot"),
        ("/orders", false) => (StatusCode::OK, "order placed"),
        ("/orders", true) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "ordering is temporarily unavailable",
        ),
        _ => (StatusCode::NOT_FOUND, "no such page"),
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

async fn health_checks(db: SocketAddr, breaker: Arc<Mutex<Breaker>>) {
    let mut ticks = tokio::time::interval(HEALTH_EVERY);
    loop {
        ticks.tick().await;
        let healthy = tokio::time::timeout(Duration::from_millis(200), ping(db))
            .await
            .unwrap_or(false);
        let Ok(mut b) = breaker.lock() else { return };
        if !healthy {
            b.open = true;
            b.healthy_since = None;
        } else if b.open {
            let since = *b.healthy_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= CLOSE_AFTER {
                b.open = false;
                b.healthy_since = None;
            }
        }
    }
}

async fn ping(db: SocketAddr) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(db).await else {
        return false;
    };
    if stream.write_all(b"PING\n").await.is_err() {
        return false;
    }
    let mut answer = [0u8; 5];
    stream.read_exact(&mut answer).await.is_ok() && &answer == b"PING\n"
}
