//! The accept loop of an HTTP route: every connection is served by hyper-util's automatic
//! builder (HTTP/1.1 with keep-alive, or HTTP/2 with prior knowledge) through the route's
//! fault layer.

use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::fault_layer::HttpRoute;
use super::forward;
use super::state::RouteState;
use super::throttle::Throttled;
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
    let client = forward::client(tls.client, ctx.store.clone(), Arc::clone(&name), ctx.seed);
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
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(route = %route.name, error = %e, "accept failed");
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_millis(50)) => continue,
                    }
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let connection = next_connection;
        next_connection += 1;
        let stream = Throttled::new(
            stream,
            route.ctx.store.subscribe(),
            Arc::clone(&route.name),
            route.ctx.seed,
            connection,
        );
        let stats = route.ctx.metrics.route(&route.name);
        let route = Arc::clone(&route);
        let span = tracing::debug_span!("http", route = %route.name, %peer);
        let tracker = route.ctx.tracker.clone();
        let acceptor = acceptor.clone();
        tracker.spawn(
            async move {
                let _open = stats.connection_opened();
                let service = service_fn(move |request| Arc::clone(&route).handle(request, peer));
                let builder = auto::Builder::new(TokioExecutor::new());
                if let Some(acceptor) = acceptor {
                    // The TLS handshake happens in the connection's task, never in the accept loop.
                    let stream = match acceptor.accept(stream).await {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                    };
                    if let Err(e) = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await
                    {
                        tracing::debug!(error = %e, "HTTPS connection ended with an error");
                    }
                    return;
                }
                if let Err(e) = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(error = %e, "HTTP connection ended with an error");
                }
            }
            .instrument(span),
        );
    }
}
