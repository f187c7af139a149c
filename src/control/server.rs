//! The control endpoint's accept loop: a bounded number of connections, each with a header
//! and an idle timeout, and browsers from other origins turned away before any handler runs.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::Response;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::http::Body;
use super::origin::OriginPolicy;
use super::{Auth, router};
use crate::Switchboard;
use crate::proxy::accept::AcceptErrors;
use crate::proxy::http::watchdog::{self, Activity, ConnTimeouts, Ended, Guarded, WatchedIo};

/// How the control endpoint treats its clients.
#[derive(Debug, Clone)]
pub struct ControlOptions {
    /// Header and idle timeouts of every connection.
    pub timeouts: ConnTimeouts,
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Names besides loopback ones that a request's `Host` may carry on a loopback bind.
    pub allowed_hosts: Vec<String>,
    /// Serve over TLS.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for ControlOptions {
    fn default() -> Self {
        ControlOptions {
            timeouts: ConnTimeouts::default(),
            max_connections: 256,
            allowed_hosts: Vec::new(),
            tls: None,
        }
    }
}

/// A running control endpoint; dropping it stops accepting.
#[derive(Debug)]
pub struct ControlHandle {
    local_addr: SocketAddr,
    stop: CancellationToken,
    connections: TaskTracker,
}

impl ControlHandle {
    /// Where the endpoint listens (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and asks open connections to finish what they are answering; waits
    /// up to `grace` for them. Returns whether they all finished (event streams never do on
    /// their own: they are cut when the wait ends).
    pub async fn shutdown(self, grace: std::time::Duration) -> bool {
        self.stop.cancel();
        self.connections.close();
        tokio::time::timeout(grace, self.connections.wait())
            .await
            .is_ok()
    }
}

impl Drop for ControlHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Serves the control API for `app` on `listener` until the handle is dropped or the app
/// stops.
pub fn serve(
    listener: TcpListener,
    app: Switchboard,
    auth: Auth,
) -> std::io::Result<ControlHandle> {
    serve_with(listener, app, auth, ControlOptions::default())
}

/// [`serve`], over TLS when `tls` is given.
pub fn serve_with_tls(
    listener: TcpListener,
    app: Switchboard,
    auth: Auth,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<ControlHandle> {
    let options = ControlOptions {
        tls,
        ..ControlOptions::default()
    };
    serve_with(listener, app, auth, options)
}

/// Everything one connection needs, shared by all of them.
struct Shared {
    app: Switchboard,
    auth: Arc<Auth>,
    origin: OriginPolicy,
    timeouts: ConnTimeouts,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    stop: CancellationToken,
}

/// [`serve`] with every option.
pub fn serve_with(
    listener: TcpListener,
    app: Switchboard,
    auth: Auth,
    options: ControlOptions,
) -> std::io::Result<ControlHandle> {
    let local_addr = listener.local_addr()?;
    let stop = app.stopping();
    let connections = TaskTracker::new();
    let handle = ControlHandle {
        local_addr,
        stop: stop.clone(),
        connections: connections.clone(),
    };
    // Rebinding matters where nothing else stands in the way: loopback without a token.
    let check_host = local_addr.ip().is_loopback() && !auth.requires_token();
    let shared = Arc::new(Shared {
        origin: OriginPolicy::new(local_addr, check_host, options.allowed_hosts),
        app,
        auth: Arc::new(auth),
        timeouts: options.timeouts,
        acceptor: options.tls.map(tokio_rustls::TlsAcceptor::from),
        stop: stop.clone(),
    });
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let max = options.max_connections.max(1);
    tokio::spawn(async move {
        let mut errors = AcceptErrors::new("control endpoint");
        loop {
            let (stream, peer) = tokio::select! {
                () = stop.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        let pause = errors.failed(&e);
                        tokio::select! {
                            () = stop.cancelled() => break,
                            () = tokio::time::sleep(pause) => continue,
                        }
                    }
                },
            };
            errors.succeeded();
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                connections.spawn(refuse(stream, max));
                continue;
            };
            let shared = Arc::clone(&shared);
            connections.spawn(async move {
                serve_one(stream, peer, shared).await;
                drop(slot);
            });
        }
    });
    tracing::info!(addr = %local_addr, "control endpoint listening");
    Ok(handle)
}

/// Answers a connection over the cap with a 503 and closes it, so the client learns why
/// instead of hanging in the backlog.
async fn refuse(mut stream: TcpStream, max: usize) {
    tracing::debug!(max, "control endpoint: connection cap reached");
    let body = format!(
        "{{\"error\": \"the control endpoint serves at most {max} connections at once\"}}\n"
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let write = stream.write_all(answer.as_bytes());
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), write).await;
}

async fn serve_one(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let activity = Activity::new();
    match &shared.acceptor {
        Some(acceptor) => {
            let handshake = acceptor.accept(stream);
            match tokio::time::timeout(shared.timeouts.header, handshake).await {
                Ok(Ok(stream)) => serve_http(stream, peer, activity, shared).await,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "control endpoint: TLS handshake failed")
                }
                Err(_) => tracing::debug!(%peer, "control endpoint: TLS handshake timed out"),
            }
        }
        None => serve_http(stream, peer, activity, shared).await,
    }
}

async fn serve_http<S>(stream: S, peer: SocketAddr, activity: Arc<Activity>, shared: Arc<Shared>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(WatchedIo::new(stream, Arc::clone(&activity)));
    let service_shared = Arc::clone(&shared);
    let service_activity = Arc::clone(&activity);
    let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        let in_flight = service_activity.request();
        let shared = Arc::clone(&service_shared);
        async move {
            let response: Response<Body> = match shared.origin.check(request.headers()) {
                Err(e) => super::http::error(&e),
                Ok(()) => {
                    match router::handle(request, shared.app.clone(), Arc::clone(&shared.auth))
                        .await
                    {
                        Ok(r) => r,
                        Err(never) => match never {},
                    }
                }
            };
            Ok::<_, std::convert::Infallible>(response.map(|body| Guarded::new(body, in_flight)))
        }
    });
    let connection = http1::Builder::new().serve_connection(io, service);
    tokio::pin!(connection);
    let (ended, result) = watchdog::drive(
        connection.as_mut(),
        &activity,
        shared.timeouts,
        (&shared.stop, &CancellationToken::new()),
        |c| c.graceful_shutdown(),
    )
    .await;
    match ended {
        Ended::HeaderTimeout => {
            tracing::debug!(%peer, "control connection closed: request head too slow")
        }
        Ended::Idle => tracing::debug!(%peer, "control connection closed: idle"),
        Ended::Finished | Ended::Aborted => {}
    }
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "control connection ended with an error");
    }
}
