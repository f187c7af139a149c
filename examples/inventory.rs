//! The demo's inventory service: the dependency the shop's orders module calls over HTTP.
//!
//! `POST /reserve?sku=...` reserves one item; `GET /healthz` answers 200. Listens on
//! `INVENTORY_LISTEN` (default `0.0.0.0:8080`). `inventory --health URL` exits 0 when URL
//! answers 200, for a container health check in an image with no shell.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

#[path = "support/health.rs"]
mod health;

async fn handle(
    request: Request<hyper::body::Incoming>,
    reserved: Arc<AtomicU64>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/healthz") => (StatusCode::OK, r#"{"status":"ok"}"#.to_string()),
        (&Method::POST, "/reserve") => {
            let sku = request
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("sku=")))
                .unwrap_or("unknown")
                .to_string();
            let n = reserved.fetch_add(1, Ordering::Relaxed) + 1;
            (
                StatusCode::OK,
                format!(r#"{{"reserved":"{sku}","reservation":{n}}}"#),
            )
        }
        _ => (
            StatusCode::NOT_FOUND,
            r#"{"error":"not found"}"#.to_string(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    if let Some(code) = health::check_from_args().await {
        std::process::exit(code);
    }
    let listen = std::env::var("INVENTORY_LISTEN").unwrap_or_else(|_| "0.0.0.0:8080".into());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("inventory listening on {}", listener.local_addr()?);
    let reserved = Arc::new(AtomicU64::new(0));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = term.recv() => return Ok(()),
        };
        let reserved = Arc::clone(&reserved);
        tokio::spawn(async move {
            let service = service_fn(move |r| handle(r, Arc::clone(&reserved)));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
