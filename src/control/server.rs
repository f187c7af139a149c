//! The control endpoint's accept loop.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{Auth, router};
use crate::Switchboard;

/// A running control endpoint; dropping it stops accepting.
#[derive(Debug)]
pub struct ControlHandle {
    local_addr: SocketAddr,
    stop: CancellationToken,
}

impl ControlHandle {
    /// Where the endpoint listens (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
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
    serve_with_tls(listener, app, auth, None)
}

/// [`serve`], over TLS when `tls` is given.
pub fn serve_with_tls(
    listener: TcpListener,
    app: Switchboard,
    auth: Auth,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<ControlHandle> {
    let local_addr = listener.local_addr()?;
    let stop = app.stopping();
    let handle = ControlHandle {
        local_addr,
        stop: stop.clone(),
    };
    let auth = Arc::new(auth);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::spawn(async move {
        loop {
            let (stream, peer) = tokio::select! {
                () = stop.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "control endpoint: accept failed");
                        continue;
                    }
                },
            };
            let app = app.clone();
            let auth = Arc::clone(&auth);
            let stop = stop.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    router::handle(request, app.clone(), Arc::clone(&auth))
                });
                match acceptor {
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(stream) => {
                            serve_connection(TokioIo::new(stream), service, stop, peer).await
                        }
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "control endpoint: TLS handshake failed")
                        }
                    },
                    None => serve_connection(TokioIo::new(stream), service, stop, peer).await,
                }
            });
        }
    });
    tracing::info!(addr = %local_addr, "control endpoint listening");
    Ok(handle)
}

async fn serve_connection<I, S>(
    io: I,
    service: S,
    stop: CancellationToken,
    peer: std::net::SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming> + Send,
    S::Future: Send,
    S::ResBody: Send + 'static,
    <S::ResBody as hyper::body::Body>::Data: Send,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let connection = http1::Builder::new().serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "control connection ended with an error");
            }
        }
        () = stop.cancelled() => connection.as_mut().graceful_shutdown(),
    }
}
