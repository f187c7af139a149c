//! The region-failover demo's services, one binary with two roles (docker/region-failover.yaml).
//!
//! `ROLE=store`: a region's orders store. `POST /orders` stores an order and answers
//! `{"id": "<REGION>-<n>"}`; `GET /orders/<id>` answers 200 or 404; `PUT /replica/<id>` takes
//! an order replicated from the other region. With `REPLICATE_TO=host:port` every order is
//! sent there `REPLICATION_LAG_MS` after it was stored, once: an asynchronous replica that
//! loses what was not sent when the link is cut. Listens on every address of `LISTEN`
//! (comma-separated; default `0.0.0.0:8080`).
//!
//! `ROLE=shop`: the shop's orders front. For every request it resolves `ORDERS_NAME` with an
//! A query to `RESOLVER` (Switchboard's Dns route), then forwards the request to that address
//! on `ORDERS_PORT`, so a changed answer moves the next request to the other region.
//!
//! `region --health URL` exits 0 when URL answers 200, for the image's health check.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

#[path = "../support/health.rs"]
mod health;
mod resolve;

type Answer = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: String) -> Answer {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// A region's orders.
struct Store {
    region: String,
    orders: Mutex<(u64, HashSet<String>)>,
    replicate_to: Option<String>,
    lag: Duration,
}

impl Store {
    async fn handle(self: Arc<Self>, request: Request<hyper::body::Incoming>) -> Answer {
        let path = request.uri().path().to_string();
        match (request.method().clone(), path.as_str()) {
            (Method::GET, "/healthz") => reply(StatusCode::OK, r#"{"status":"ok"}"#.into()),
            (Method::POST, "/orders") => {
                let id = {
                    let mut orders = self.orders.lock().unwrap_or_else(|e| e.into_inner());
                    orders.0 += 1;
                    let id = format!("{}-{}", self.region, orders.0);
                    orders.1.insert(id.clone());
                    id
                };
                if let Some(to) = &self.replicate_to {
                    tokio::spawn(replicate(to.clone(), id.clone(), self.lag));
                }
                reply(
                    StatusCode::CREATED,
                    format!(r#"{{"id":"{id}","region":"{}"}}"#, self.region),
                )
            }
            (method, path) => {
                let Some(id) = path
                    .strip_prefix("/orders/")
                    .or_else(|| path.strip_prefix("/replica/"))
                else {
                    return reply(StatusCode::NOT_FOUND, r#"{"error":"not found"}"#.into());
                };
                let mut orders = self.orders.lock().unwrap_or_else(|e| e.into_inner());
                if method == Method::PUT && path.starts_with("/replica/") {
                    orders.1.insert(id.to_string());
                    return reply(StatusCode::NO_CONTENT, String::new());
                }
                if orders.1.contains(id) {
                    reply(
                        StatusCode::OK,
                        format!(r#"{{"id":"{id}","region":"{}"}}"#, self.region),
                    )
                } else {
                    reply(
                        StatusCode::NOT_FOUND,
                        format!(r#"{{"error":"no order {id} in {}"}}"#, self.region),
                    )
                }
            }
        }
    }
}

/// Sends one order to the other region after the lag; a failure loses it, as a cut
/// asynchronous replication stream does.
async fn replicate(to: String, id: String, lag: Duration) {
    tokio::time::sleep(lag).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let Ok(request) =
        Request::put(format!("http://{to}/replica/{id}")).body(Full::new(Bytes::new()))
    else {
        return;
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), client.request(request)).await;
}

/// The shop's front: resolve, then forward.
struct Shop {
    resolver: String,
    name: String,
    port: u16,
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
}

impl Shop {
    async fn handle(self: Arc<Self>, request: Request<hyper::body::Incoming>) -> Answer {
        if request.uri().path() == "/healthz" {
            return reply(StatusCode::OK, r#"{"status":"ok"}"#.into());
        }
        match tokio::time::timeout(Duration::from_secs(2), self.forward(request)).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(why)) => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(r#"{{"error":"{why}"}}"#),
            ),
            Err(_) => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"error":"the orders store did not answer"}"#.into(),
            ),
        }
    }

    async fn forward(&self, request: Request<hyper::body::Incoming>) -> Result<Answer, String> {
        let address = resolve::a_record(&self.resolver, &self.name)
            .await
            .map_err(|e| format!("resolving {}: {e}", self.name))?;
        let (parts, body) = request.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let forwarded = Request::builder()
            .method(parts.method)
            .uri(format!("http://{address}:{}{path}", self.port))
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        let response = self
            .client
            .request(forwarded)
            .await
            .map_err(|e| format!("orders store at {address}: {e}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(reply(status, String::from_utf8_lossy(&body).into_owned()))
    }
}

async fn serve<F, Fut>(listen: &str, handler: F) -> std::io::Result<()>
where
    F: Fn(Request<hyper::body::Incoming>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Answer> + Send + 'static,
{
    let mut loops = tokio::task::JoinSet::new();
    for address in listen.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let listener = tokio::net::TcpListener::bind(address).await?;
        eprintln!("listening on {}", listener.local_addr()?);
        let handler = handler.clone();
        loops.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |r| {
                        let answer = handler(r);
                        async move { Ok::<_, Infallible>(answer.await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    term.recv().await;
    Ok(())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    if let Some(code) = health::check_from_args().await {
        std::process::exit(code);
    }
    let listen = env("LISTEN", "0.0.0.0:8080");
    match env("ROLE", "store").as_str() {
        "shop" => {
            let shop = Arc::new(Shop {
                resolver: env("RESOLVER", "127.0.0.1:5353"),
                name: env("ORDERS_NAME", "orders.shop.internal"),
                port: env("ORDERS_PORT", "8080").parse().unwrap_or(8080),
                client: hyper_util::client::legacy::Client::builder(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .pool_idle_timeout(Duration::from_secs(5))
                .build_http(),
            });
            serve(&listen, move |r| Arc::clone(&shop).handle(r)).await
        }
        _ => {
            let store = Arc::new(Store {
                region: env("REGION", "primary"),
                orders: Mutex::new((0, HashSet::new())),
                replicate_to: std::env::var("REPLICATE_TO").ok().filter(|s| !s.is_empty()),
                lag: Duration::from_millis(
                    env("REPLICATION_LAG_MS", "2000").parse().unwrap_or(2000),
                ),
            });
            serve(&listen, move |r| Arc::clone(&store).handle(r)).await
        }
    }
}
