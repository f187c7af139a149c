//! The demo web shop: a catalog module backed by a Redis cache, and an orders module that
//! calls an inventory service and stores orders in PostgreSQL. Every dependency is reached
//! through Switchboard.
//!
//! Its reduced-functionality mode is the point of the demo: when the inventory is
//! unreachable or the database refuses writes, `POST /orders` answers 503 "ordering is
//! temporarily unavailable" at once, while `GET /catalog` keeps serving (from the cache, or
//! from its own list when the cache is down too) and `GET /orders`, the order history, keeps
//! reading.
//!
//! Settings: `SHOP_LISTEN` (default `0.0.0.0:8080`), `CACHE_ADDR` (a Redis `host:port`),
//! `INVENTORY_URL` (e.g. `http://switchboard:28080`), `ORDERS_DB` (a libpq connection string,
//! e.g. `host=switchboard port=25432 user=shop dbname=postgres`; without it orders are not
//! stored). `shop --health URL` is a health check.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[path = "support/health.rs"]
mod health;

const PRODUCTS: &str =
    r#"[{"sku":"kettle","price":25},{"sku":"teapot","price":18},{"sku":"mug","price":6}]"#;

/// How long a dependency may take before the shop gives up on it.
const DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(1);

#[path = "support/orders_db.rs"]
mod orders_db;

struct Shop {
    cache_addr: String,
    inventory_url: String,
    http: Client<HttpConnector, Empty<Bytes>>,
    orders_db: Option<orders_db::OrdersDb>,
}

/// One Redis command over RESP; returns the reply line and, for bulk strings, the payload.
async fn redis(addr: &str, args: &[&str]) -> std::io::Result<Option<String>> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut command = format!("*{}\r\n", args.len());
    for arg in args {
        command.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(command.as_bytes()).await?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let bad = || std::io::Error::other(format!("unexpected Redis reply {line:?}"));
    match line.as_bytes().first() {
        Some(b'+') => Ok(None),
        Some(b'$') if line.starts_with("$-1") => Ok(None),
        Some(b'$') => {
            let mut payload = String::new();
            reader.read_line(&mut payload).await?;
            Ok(Some(payload.trim_end().to_string()))
        }
        _ => Err(bad()),
    }
}

impl Shop {
    /// The catalog: from the cache when it answers, else from the shop's own list (and the
    /// cache is refilled when it comes back).
    async fn catalog(&self) -> (StatusCode, String, &'static str) {
        let cached = tokio::time::timeout(
            DEPENDENCY_TIMEOUT,
            redis(&self.cache_addr, &["GET", "catalog"]),
        )
        .await;
        match cached {
            Ok(Ok(Some(products))) => (StatusCode::OK, products, "cache"),
            Ok(Ok(None)) => {
                let _ = tokio::time::timeout(
                    DEPENDENCY_TIMEOUT,
                    redis(&self.cache_addr, &["SET", "catalog", PRODUCTS]),
                )
                .await;
                (StatusCode::OK, PRODUCTS.to_string(), "origin")
            }
            _ => (StatusCode::OK, PRODUCTS.to_string(), "fallback"),
        }
    }

    /// An order: reserves the item with the inventory, or says ordering is unavailable.
    async fn order(&self) -> (StatusCode, String) {
        let unavailable = || {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"error":"ordering is temporarily unavailable"}"#.to_string(),
            )
        };
        let Ok(uri) = format!("{}/reserve?sku=kettle", self.inventory_url).parse::<hyper::Uri>()
        else {
            return unavailable();
        };
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .body(Empty::new());
        let Ok(request) = request else {
            return unavailable();
        };
        let call = async {
            let response = self.http.request(request).await.ok()?;
            let status = response.status();
            let body = response.into_body().collect().await.ok()?.to_bytes();
            status
                .is_success()
                .then(|| String::from_utf8_lossy(&body).into_owned())
        };
        let Ok(Some(reservation)) = tokio::time::timeout(DEPENDENCY_TIMEOUT, call).await else {
            return unavailable();
        };
        let id = match &self.orders_db {
            None => None,
            Some(db) => match db.place("kettle").await {
                Ok(id) => Some(id),
                Err(e) => {
                    eprintln!("orders: storing the order failed: {e}");
                    return unavailable();
                }
            },
        };
        let id = id.map_or("null".to_string(), |id| id.to_string());
        (
            StatusCode::CREATED,
            format!(r#"{{"order":"placed","id":{id},"inventory":{reservation}}}"#),
        )
    }

    /// The order history, read from the database.
    async fn history(&self) -> (StatusCode, String) {
        let Some(db) = &self.orders_db else {
            return (StatusCode::OK, r#"{"orders":[]}"#.to_string());
        };
        match db.recent().await {
            Ok(orders) => (StatusCode::OK, format!(r#"{{"orders":{orders}}}"#)),
            Err(e) => {
                eprintln!("orders: reading the history failed: {e}");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    r#"{"error":"order history is temporarily unavailable"}"#.to_string(),
                )
            }
        }
    }
}

async fn handle(
    request: Request<hyper::body::Incoming>,
    shop: Arc<Shop>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body, source) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/healthz") => (StatusCode::OK, r#"{"status":"ok"}"#.to_string(), None),
        (&Method::GET, "/catalog") => {
            let (status, body, source) = shop.catalog().await;
            (status, body, Some(source))
        }
        (&Method::POST, "/orders") => {
            let (status, body) = shop.order().await;
            (status, body, None)
        }
        (&Method::GET, "/orders") => {
            let (status, body) = shop.history().await;
            (status, body, None)
        }
        _ => (
            StatusCode::NOT_FOUND,
            r#"{"error":"not found"}"#.to_string(),
            None,
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    if let Some(source) = source {
        headers.insert(
            "x-catalog-source",
            hyper::header::HeaderValue::from_static(source),
        );
    }
    Ok(response)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    if let Some(code) = health::check_from_args().await {
        std::process::exit(code);
    }
    let env =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_string());
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(DEPENDENCY_TIMEOUT));
    let shop = Arc::new(Shop {
        cache_addr: env("CACHE_ADDR", "127.0.0.1:6379"),
        inventory_url: env("INVENTORY_URL", "http://127.0.0.1:8081")
            .trim_end_matches('/')
            .to_string(),
        http: Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector),
        orders_db: match std::env::var("ORDERS_DB") {
            Ok(conninfo) => Some(orders_db::OrdersDb::new(&conninfo, DEPENDENCY_TIMEOUT)?),
            Err(_) => None,
        },
    });
    if let Some(db) = &shop.orders_db {
        db.create_table_in_background();
    }
    let listener = tokio::net::TcpListener::bind(env("SHOP_LISTEN", "0.0.0.0:8080")).await?;
    eprintln!("shop listening on {}", listener.local_addr()?);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = term.recv() => return Ok(()),
        };
        let shop = Arc::clone(&shop);
        tokio::spawn(async move {
            let service = service_fn(move |r| handle(r, Arc::clone(&shop)));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
