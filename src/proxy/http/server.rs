//! The accept loop of an HTTP route: every connection is served by hyper-util's automatic
//! builder (HTTP/1.1 with keep-alive, or HTTP/2 with prior knowledge) through the route's
//! fault layer.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::fault_layer::{HttpRoute, NoResponse};
use super::forward;
use super::state::RouteState;
use super::throttle::Throttled;
use super::watchdog::{self, Activity, ConnTimeouts, Ended, Guarded, WatchedIo};
use crate::proxy::accept::AcceptErrors;
use crate::proxy::gate::Gate;
use crate::proxy::tcp::RouteHandle;
use crate::proxy::{ProxyContext, ProxyError};
use crate::rules::Route;
use crate::tls;

/// The TLS configurations of an HTTP route, built before it is committed to.
#[derive(Debug, Clone)]
pub struct HttpTls {
    server: Option<Arc<rustls::ServerConfig>>,
    client: Arc<rustls::ClientConfig>,
}

impl HttpTls {
    /// The acceptor for the route's own certificate, when it terminates TLS.
    pub fn acceptor(&self) -> Option<tokio_rustls::TlsAcceptor> {
        self.server.clone().map(tokio_rustls::TlsAcceptor::from)
    }
}

/// Loads `route`'s TLS files.
pub fn prepare(route: &Route) -> Result<HttpTls, ProxyError> {
    let error = |source| ProxyError::Tls {
        route: route.name.clone(),
        source,
    };
    let server = match &route.tls {
        Some(files) => Some(tls::server_config(&files.cert, &files.key).map_err(error)?),
        None => None,
    };
    let client = tls::client_config(route.upstream_ca.as_deref(), route.insecure_skip_verify)
        .map_err(error)?;
    Ok(HttpTls { server, client })
}

/// Starts serving HTTP on a listener bound by [`crate::proxy::tcp::bind`].
pub fn start(listener: TcpListener, route: &Route, tls: HttpTls, ctx: ProxyContext) -> RouteHandle {
    let local_addr = crate::proxy::tcp::bound_addr(&listener, route);
    let stop = ctx.shutdown.child_token();
    let name: Arc<str> = Arc::from(route.name.as_str());
    let ctx_metrics = Arc::clone(&ctx.metrics);
    let client = forward::client(tls.client, &ctx, Arc::clone(&name));
    let http = Arc::new(HttpRoute {
        name,
        ctx,
        client,
        state: RouteState::default(),
        tls: tls.server.is_some(),
        stats: ctx_metrics.http_route(&route.name),
    });
    let acceptor = tls.server.map(tokio_rustls::TlsAcceptor::from);
    tracing::info!(route = %http.name, listen = %local_addr, upstream = %route.upstream, "HTTP route listening");
    let task = tokio::spawn(accept_loop(listener, http, acceptor, stop.clone()));
    RouteHandle::new(local_addr, route, stop, task)
}

async fn accept_loop(
    listener: TcpListener,
    route: Arc<HttpRoute>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    stop: CancellationToken,
) {
    let mut next_connection: u64 = 0;
    let mut errors = AcceptErrors::new(format!("route {}", route.name));
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
        let _ = stream.set_nodelay(true);
        let fd = stream.as_raw_fd();
        let connection = next_connection;
        next_connection += 1;
        let stream = Throttled::new(
            stream,
            route.ctx.store.subscribe(),
            Arc::clone(&route.name),
            route.ctx.seed,
            connection,
            Gate::new(peer.ip(), Arc::clone(&route.ctx.caps)),
        );
        let route = Arc::clone(&route);
        let span = tracing::debug_span!("http", route = %route.name, %peer);
        let tracker = route.ctx.tracker.clone();
        let acceptor = acceptor.clone();
        tracker.spawn(serve_connection(route, stream, fd, peer, acceptor).instrument(span));
    }
}

/// Serves one client connection until it ends, a time limit runs out, or the process stops.
async fn serve_connection(
    route: Arc<HttpRoute>,
    stream: Throttled<TcpStream>,
    fd: RawFd,
    peer: SocketAddr,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
) {
    let stats = route.ctx.metrics.route(&route.name);
    let _open = stats.connection_opened();
    let limits = route
        .ctx
        .store
        .current()
        .route(&route.name)
        .map(|r| ConnTimeouts {
            header: r.timeouts.header,
            idle: r.timeouts.idle,
        })
        .unwrap_or_default();
    let activity = Activity::new();
    match acceptor {
        // The TLS handshake happens in the connection's task, never in the accept loop, and
        // counts against the header timeout.
        Some(acceptor) => {
            match tokio::time::timeout(limits.header, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => serve_http(route, stream, fd, peer, activity, limits).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        }
        None => serve_http(route, stream, fd, peer, activity, limits).await,
    }
}

async fn serve_http<S>(
    route: Arc<HttpRoute>,
    stream: S,
    fd: RawFd,
    peer: SocketAddr,
    activity: Arc<Activity>,
    limits: ConnTimeouts,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let counted = WatchedIo::new(stream, Arc::clone(&activity))
        .counting(route.ctx.metrics.route(&route.name));
    let io = TokioIo::new(counted);
    let stop = route.ctx.shutdown.clone();
    let abort = route.ctx.abort.clone();
    let service_route = Arc::clone(&route);
    let service_activity = Arc::clone(&activity);
    let service = service_fn(move |request| {
        let in_flight = service_activity.request();
        let answer = Arc::clone(&service_route).handle(request, peer);
        async move {
            let response = answer.await?;
            Ok::<_, NoResponse>(response.map(|body| Guarded::new(body, in_flight)))
        }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(connection);
    let (ended, result) = watchdog::drive(
        connection.as_mut(),
        &activity,
        limits,
        (&stop, &abort),
        |c| c.graceful_shutdown(),
    )
    .await;
    match ended {
        Ended::HeaderTimeout => tracing::debug!("connection closed: request head too slow"),
        Ended::Idle => tracing::debug!("connection closed: idle"),
        Ended::Aborted => {
            tracing::debug!("connection reset: the grace period after a stop ran out");
            reset_on_close(fd);
        }
        Ended::Finished => {}
    }
    if let Err(e) = result {
        tracing::debug!(error = %e, "HTTP connection ended with an error");
    }
}

/// Makes the socket behind `fd` send RST instead of FIN when it is closed.
fn reset_on_close(fd: RawFd) {
    // SAFETY: `fd` is the client socket of the connection that the caller still holds (it is
    // dropped after this returns), so it is open and owned for the whole borrow.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let _ = socket2::SockRef::from(&borrowed).set_linger(Some(std::time::Duration::ZERO));
}
