//! The accept loop of one TCP route.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::conn;
use crate::proxy::ProxyContext;
use crate::proxy::accept::AcceptErrors;
use crate::rules::{Protocol, Route};

/// A bound route. Dropping it stops accepting; open connections carry on.
#[derive(Debug)]
pub struct RouteHandle {
    local_addr: SocketAddr,
    /// The route as it was bound; a change to anything but faults and upstream rebinds.
    bound: Route,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RouteHandle {
    /// A handle on an accept loop running as `task`, stopped through `stop`.
    pub(crate) fn new(
        local_addr: SocketAddr,
        route: &Route,
        stop: CancellationToken,
        task: tokio::task::JoinHandle<()>,
    ) -> Self {
        RouteHandle {
            local_addr,
            bound: route.clone(),
            stop,
            task: Some(task),
        }
    }

    /// The address the route listens on (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether this handle still serves `route` as it is now: same listen address (as the
    /// rules wrote it), protocol and TLS settings. (The upstream is read per connection.)
    pub fn serves(&self, route: &Route) -> bool {
        let b = &self.bound;
        route.enabled
            && b.listen == route.listen
            && b.protocol == route.protocol
            && b.tls == route.tls
            && b.upstream_ca == route.upstream_ca
            && b.insecure_skip_verify == route.insecure_skip_verify
    }

    /// Stops accepting and returns once the listening socket is closed, so that a client
    /// told "the route is down" finds it refusing connections.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            // The task only ends by cancellation; a join error would mean it panicked, and
            // its socket is closed either way.
            let _ = task.await;
        }
    }
}

impl Drop for RouteHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The address `listener` is bound to. A bound listener always knows it; should the OS not
/// say, the address the route asked for stands in.
pub(crate) fn bound_addr(listener: &TcpListener, route: &Route) -> SocketAddr {
    listener
        .local_addr()
        .ok()
        .or_else(|| route.listen.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// Starts serving a TCP or protocol route; `tls` terminates TLS for a PostgreSQL route whose
/// clients ask for it.
pub fn start(
    listener: TcpListener,
    route: &Route,
    tls: Option<tokio_rustls::TlsAcceptor>,
    ctx: ProxyContext,
) -> RouteHandle {
    let local_addr = bound_addr(&listener, route);
    let stop = ctx.shutdown.child_token();
    let name: Arc<str> = Arc::from(route.name.as_str());
    tracing::info!(route = %name, listen = %local_addr, upstream = %route.upstream, "route listening");
    let task = tokio::spawn(accept_loop(
        listener,
        name,
        route.protocol,
        tls,
        ctx,
        stop.clone(),
    ));
    RouteHandle::new(local_addr, route, stop, task)
}

async fn accept_loop(
    listener: TcpListener,
    route: Arc<str>,
    protocol: Protocol,
    tls: Option<tokio_rustls::TlsAcceptor>,
    ctx: ProxyContext,
    stop: CancellationToken,
) {
    let mut next_connection: u64 = 0;
    let mut errors = AcceptErrors::new(format!("route {route}"));
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    errors.succeeded();
                    let connection = next_connection;
                    next_connection += 1;
                    let span = tracing::debug_span!("conn", route = %route, %peer, id = connection);
                    let task = conn::serve(client, peer, Arc::clone(&route), protocol, tls.clone(), connection, ctx.clone());
                    ctx.tracker.spawn(task.instrument(span));
                }
                Err(e) => {
                    let pause = errors.failed(&e);
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
    }
    tracing::debug!(route = %route, "route stopped listening");
}
