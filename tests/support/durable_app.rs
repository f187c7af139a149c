//! A small app that loses a known part of its data when it fails over, for drills to measure
//! an RPO against. `POST /orders` stores an order in the primary database (reached through a
//! Switchboard route) and answers `{"id": N}`; `GET /orders/N` finds it (200) or not (404). The
//! secondary is fed asynchronously, [`LAG`] behind. When a write or a health check (every
//! 50 ms) finds the primary gone, the app fails over: for [`FAILOVER_TAKES`] it answers 503,
//! then it serves from the secondary, which never got the orders of the primary's last `LAG`.
//! It remembers which orders it lost and when it had acknowledged them.

use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// How far the secondary runs behind the primary.
pub const LAG: Duration = Duration::from_secs(2);
/// How long the failover takes, from the moment the primary is found gone.
pub const FAILOVER_TAKES: Duration = Duration::from_secs(1);
const HEALTH_EVERY: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Serving {
    Primary,
    FailingOver { since: Instant },
    Secondary,
}

#[derive(Debug)]
struct State {
    serving: Serving,
    next_id: u64,
    /// Orders the primary acknowledged, and when.
    primary: BTreeMap<u64, Instant>,
    /// Orders the secondary has (after the failover).
    secondary: HashSet<u64>,
    /// Orders acknowledged by the primary that the secondary never got.
    lost: BTreeMap<u64, Instant>,
}

/// The running app.
#[derive(Clone)]
pub struct DurableApp {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl DurableApp {
    /// The orders it acknowledged and then lost, with when it acknowledged them.
    pub fn lost(&self) -> BTreeMap<u64, Instant> {
        self.state.lock().expect("state").lost.clone()
    }
}

/// Starts the app on port 0, its primary database (an echo server) at `primary`.
pub async fn start(primary: SocketAddr) -> DurableApp {
    let state = Arc::new(Mutex::new(State {
        serving: Serving::Primary,
        next_id: 1,
        primary: BTreeMap::new(),
        secondary: HashSet::new(),
        lost: BTreeMap::new(),
    }));
    tokio::spawn(health_checks(primary, state.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the app");
    let addr = listener.local_addr().expect("app address");
    let shared = state.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let state = shared.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |r: Request<Incoming>| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(answer(r, &state, primary).await) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    DurableApp { addr, state }
}

/// The state's serving mode now, finishing a failover that has taken its time.
fn serving(state: &Mutex<State>) -> Serving {
    let mut s = state.lock().expect("state");
    if let Serving::FailingOver { since } = s.serving
        && since.elapsed() >= FAILOVER_TAKES
    {
        s.serving = Serving::Secondary;
    }
    s.serving
}

/// The primary is gone at `at`: what the secondary had by then is all that is left.
fn fail_over(state: &Mutex<State>, at: Instant) {
    let mut s = state.lock().expect("state");
    if s.serving != Serving::Primary {
        return;
    }
    s.serving = Serving::FailingOver { since: at };
    let replicated_before = at.checked_sub(LAG).unwrap_or(at);
    let primary = std::mem::take(&mut s.primary);
    for (id, acked) in primary {
        if acked <= replicated_before {
            s.secondary.insert(id);
        } else {
            s.lost.insert(id, acked);
        }
    }
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::from(body)))
        .expect("response")
}

async fn answer(
    request: Request<Incoming>,
    state: &Mutex<State>,
    primary: SocketAddr,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_string();
    let mode = serving(state);
    if let Serving::FailingOver { .. } = mode {
        return reply(StatusCode::SERVICE_UNAVAILABLE, "failing over".into());
    }
    if request.method() == Method::POST && path == "/orders" {
        if mode == Serving::Primary && !reachable(primary).await {
            fail_over(state, Instant::now());
            return reply(StatusCode::SERVICE_UNAVAILABLE, "primary gone".into());
        }
        let mut s = state.lock().expect("state");
        let id = s.next_id;
        s.next_id += 1;
        match s.serving {
            Serving::Primary => {
                s.primary.insert(id, Instant::now());
            }
            _ => {
                s.secondary.insert(id);
            }
        }
        return reply(StatusCode::CREATED, format!("{{\"id\": {id}}}"));
    }
    if let Some(id) = path
        .strip_prefix("/orders/")
        .and_then(|n| n.parse::<u64>().ok())
    {
        let s = state.lock().expect("state");
        let found = match s.serving {
            Serving::Primary => s.primary.contains_key(&id),
            _ => s.secondary.contains(&id),
        };
        return if found {
            reply(StatusCode::OK, format!("{{\"id\": {id}}}"))
        } else {
            reply(StatusCode::NOT_FOUND, "no such order".into())
        };
    }
    reply(StatusCode::NOT_FOUND, "no such page".into())
}

async fn health_checks(primary: SocketAddr, state: Arc<Mutex<State>>) {
    let mut ticks = tokio::time::interval(HEALTH_EVERY);
    loop {
        ticks.tick().await;
        if serving(&state) == Serving::Primary && !reachable(primary).await {
            fail_over(&state, Instant::now());
        }
    }
}

async fn reachable(db: SocketAddr) -> bool {
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
