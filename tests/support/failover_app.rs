//! A small app with a known failover, for drills to measure an RTO against: `GET /orders`
//! answers from the primary database while it answers health checks (every 50 ms). At the
//! first failed check the app starts failing over, answers 503 for exactly
//! [`FAILOVER_TAKES`], then answers from the secondary for good. So a drill that cuts the
//! primary must measure an RTO of `FAILOVER_TAKES` plus at most a health check and a probe
//! interval.

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

/// How long the failover takes, from the first failed health check.
pub const FAILOVER_TAKES: Duration = Duration::from_millis(1500);
const HEALTH_EVERY: Duration = Duration::from_millis(50);

/// Where the app is in its failover.
#[derive(Debug, Clone, Copy)]
enum Serving {
    Primary,
    FailingOver { since: Instant },
    Secondary,
}

/// Starts the app on port 0, its primary database (an echo server) at `primary`.
pub async fn start(primary: SocketAddr) -> SocketAddr {
    let state = Arc::new(Mutex::new(Serving::Primary));
    tokio::spawn(health_checks(primary, state.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the app");
    let addr = listener.local_addr().expect("app address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let state = state.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_: Request<Incoming>| {
                    let now = current(&state);
                    async move { Ok::<_, Infallible>(answer(now)) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// The state now, finishing a failover that has taken its time.
fn current(state: &Mutex<Serving>) -> Serving {
    let mut s = state.lock().expect("state");
    if let Serving::FailingOver { since } = *s
        && since.elapsed() >= FAILOVER_TAKES
    {
        *s = Serving::Secondary;
    }
    *s
}

fn answer(serving: Serving) -> Response<Full<Bytes>> {
    let (status, body) = match serving {
        Serving::Primary => (StatusCode::OK, "orders from the primary"),
        Serving::FailingOver { .. } => (StatusCode::SERVICE_UNAVAILABLE, "failing over"),
        Serving::Secondary => (StatusCode::OK, "orders from the secondary"),
    };
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("response")
}

async fn health_checks(primary: SocketAddr, state: Arc<Mutex<Serving>>) {
    let mut ticks = tokio::time::interval(HEALTH_EVERY);
    loop {
        ticks.tick().await;
        if !matches!(current(&state), Serving::Primary) {
            continue;
        }
        if !healthy(primary).await {
            *state.lock().expect("state") = Serving::FailingOver {
                since: Instant::now(),
            };
        }
    }
}

async fn healthy(db: SocketAddr) -> bool {
    let check = async {
        let mut stream = tokio::net::TcpStream::connect(db).await.ok()?;
        stream.write_all(b"ping").await.ok()?;
        let mut back = [0u8; 4];
        stream.read_exact(&mut back).await.ok()?;
        Some(())
    };
    tokio::time::timeout(Duration::from_millis(200), check)
        .await
        .ok()
        .flatten()
        .is_some()
}
