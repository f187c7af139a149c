//! HTTP routes: a reverse proxy whose faults act on requests, over HTTP/1.1 and HTTP/2 (h2c),
//! against a real HTTP upstream, seen by a real HTTP client.

use crate::support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use support::http_upstream::{self, HttpUpstream};
use support::{spawn_seeded, spawn_switchboard};

#[derive(Debug, Clone, Copy)]
enum Proto {
    H1,
    H2,
}

const BOTH: [Proto; 2] = [Proto::H1, Proto::H2];

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client(proto: Proto) -> HttpClient {
    let mut builder = Client::builder(TokioExecutor::new());
    if let Proto::H2 = proto {
        builder.http2_only(true);
    }
    builder.build_http()
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Result<Bytes, String>,
}

async fn call(
    client: &HttpClient,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<Answer, String> {
    let mut request = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let request = request.body(Full::new(body)).map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .map_err(|_| "no answer within 10 s".to_string())?
        .map_err(|e| format!("{e:?}"))?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| format!("{e:?}"));
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

async fn get(client: &HttpClient, url: &str) -> Answer {
    call(client, Method::GET, url, &[], Bytes::new())
        .await
        .expect("an answer")
}

fn http_route(upstream: &HttpUpstream, faults: &str) -> String {
    format!(
        r#"(
  routes: [(name: "web", protocol: Http, listen: "127.0.0.1:0", upstream: "{}")],
  faults: [{faults}],
)"#,
        upstream.url()
    )
}

async fn proxied(faults: &str) -> (support::Harness, HttpUpstream, SocketAddr) {
    let upstream = http_upstream::start().await;
    let sb = spawn_switchboard(&http_route(&upstream, faults)).await;
    let addr = sb.addr("web").await;
    (sb, upstream, addr)
}

#[tokio::test]
async fn passes_requests_through_as_a_reverse_proxy() {
    let (_sb, upstream, addr) = proxied("").await;
    for proto in BOTH {
        let c = client(proto);
        let hello = get(&c, &format!("http://{addr}/some/path?q=1")).await;
        assert_eq!(hello.status, 200, "{proto:?}");
        assert_eq!(
            hello.body.as_deref(),
            Ok(&b"hello from upstream: /some/path"[..]),
            "{proto:?}"
        );
        assert!(
            hello.headers["via"]
                .to_str()
                .is_ok_and(|v| v.contains("switchboard")),
            "{proto:?}"
        );

        let seen = get(&c, &format!("http://{addr}/headers")).await;
        let headers: serde_json::Value =
            serde_json::from_slice(&seen.body.expect("body")).expect("json");
        assert_eq!(
            headers["x-forwarded-for"], "127.0.0.1",
            "{proto:?}: {headers}"
        );
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(
            headers["host"],
            addr.to_string(),
            "the client's host is passed on"
        );
        assert!(
            headers["via"]
                .as_str()
                .is_some_and(|v| v.contains("switchboard"))
        );
    }
    assert_eq!(upstream.seen(), 4);
}

#[tokio::test]
async fn abort_answers_without_calling_the_upstream() {
    let (_sb, upstream, addr) =
        proxied(r#"(name: "down", route: "web", kind: Abort(status: 503, body: "down for the drill", headers: {"retry-after": "5"}))"#).await;
    for proto in BOTH {
        let a = get(&client(proto), &format!("http://{addr}/x")).await;
        assert_eq!(a.status, 503, "{proto:?}");
        assert_eq!(a.body.as_deref(), Ok(&b"down for the drill"[..]));
        assert_eq!(a.headers["retry-after"], "5");
    }
    assert_eq!(upstream.seen(), 0);
}

#[tokio::test]
async fn delay_holds_the_request_and_response_delay_the_response() {
    for (fault, what) in [
        (
            r#"(name: "slow", route: "web", kind: Delay(ms: 150))"#,
            "Delay",
        ),
        (
            r#"(name: "slow", route: "web", kind: ResponseDelay(ms: 150))"#,
            "ResponseDelay",
        ),
    ] {
        let (_sb, _upstream, addr) = proxied(fault).await;
        for proto in BOTH {
            let start = Instant::now();
            let a = get(&client(proto), &format!("http://{addr}/x")).await;
            let took = start.elapsed();
            assert_eq!(a.status, 200);
            eprintln!("measured {what} {proto:?}: {took:?} (asked 150 ms)");
            assert!(
                took >= Duration::from_millis(150),
                "{what} {proto:?}: {took:?}"
            );
            assert!(
                took < Duration::from_millis(400),
                "{what} {proto:?}: {took:?}"
            );
        }
    }
}

#[tokio::test]
async fn slow_body_drips_the_response() {
    let (_sb, _upstream, addr) =
        proxied(r#"(name: "drip", route: "web", kind: SlowBody(bytes_per_sec: 20000))"#).await;
    for proto in BOTH {
        let start = Instant::now();
        let a = get(&client(proto), &format!("http://{addr}/bytes/10000")).await;
        let took = start.elapsed();
        assert_eq!(a.body.map(|b| b.len()), Ok(10_000));
        eprintln!("measured SlowBody {proto:?}: 10000 bytes in {took:?} (asked 20000 B/s)");
        assert!(took >= Duration::from_millis(450), "{proto:?}: {took:?}");
        assert!(took < Duration::from_millis(900), "{proto:?}: {took:?}");
    }
}

/// The body bytes that arrive before the body fails, and the error; `Ok` if it completed.
async fn body_until_error(client: &HttpClient, url: &str) -> (Vec<u8>, Result<(), String>) {
    let request = Request::get(url)
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .expect("a response head within 10 s")
        .expect("a response head");
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), body.frame()).await {
            Err(_) => return (seen, Err("stalled for 10 s".into())),
            Ok(None) => return (seen, Ok(())),
            Ok(Some(Err(e))) => return (seen, Err(format!("{e:?}"))),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    seen.extend_from_slice(&data);
                }
            }
        }
    }
}

#[tokio::test]
async fn truncate_delivers_exactly_the_bytes_before_the_cut_then_fails_the_body() {
    let (sb, _upstream, addr) =
        proxied(r#"(name: "cut", route: "web", kind: Truncate(after_bytes: 1000))"#).await;
    for proto in BOTH {
        let (seen, ended) =
            body_until_error(&client(proto), &format!("http://{addr}/bytes/200000")).await;
        assert_eq!(seen.len(), 1000, "{proto:?}: the first 1000 bytes arrive");
        assert!(
            seen.iter().all(|b| *b == b'x'),
            "{proto:?}: and they are the upstream's"
        );
        let error = ended.expect_err("a truncated body is an error, not a short body");
        assert!(
            !error.contains("stalled"),
            "{proto:?}: cut, not stalled: {error}"
        );
    }
    // A body shorter than the limit passes whole, and that is not a firing.
    let short = get(&client(Proto::H1), &format!("http://{addr}/bytes/1000")).await;
    assert_eq!(short.body.map(|b| b.len()), Ok(1000));
    assert_eq!(sb.app.metrics().times_fired("cut"), 2);
}

#[tokio::test]
async fn drop_closes_without_an_answer_at_once() {
    let (sb, upstream, addr) = proxied(r#"(name: "gone", route: "web", kind: Drop())"#).await;
    for proto in BOTH {
        let started = Instant::now();
        let a = call(
            &client(proto),
            Method::GET,
            &format!("http://{addr}/x"),
            &[],
            Bytes::new(),
        )
        .await;
        let error = a.expect_err("no answer");
        // The client's own 10 s limit would also be an error; a Drop is a close, long before.
        assert!(!error.contains("within 10 s"), "{proto:?}: {error}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{proto:?}: {:?}",
            started.elapsed()
        );
    }
    assert_eq!(upstream.seen(), 0);
    assert_eq!(sb.app.metrics().times_fired("gone"), 2);
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let (sb, _upstream, addr) =
        proxied(r#"(name: "limit", route: "web", kind: RateLimit(per_sec: 3))"#).await;
    let c = client(Proto::H1);
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let a = get(&c, &format!("http://{addr}/x")).await;
        if a.status == 429 {
            assert!(a.headers.contains_key("retry-after"));
        }
        statuses.push(a.status.as_u16());
    }
    assert_eq!(&statuses[..3], [200, 200, 200]);
    assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
    // Only the limited requests count as firings, not those that took a token.
    assert_eq!(sb.app.metrics().times_fired("limit"), 3);
}

#[tokio::test]
async fn set_headers_and_replace_body_rewrite() {
    let faults = r#"
        (name: "tag", route: "web", kind: SetHeaders(request: {"x-chaos": "on"}, response: {"x-injected": "yes", "content-type": ""})),
        (name: "empty", route: "web", when: (path: "/list"), kind: ReplaceBody(body: "{\"items\": []}", content_type: "application/json")),
    "#;
    let (_sb, _upstream, addr) = proxied(faults).await;
    for proto in BOTH {
        let c = client(proto);
        let seen = get(&c, &format!("http://{addr}/headers")).await;
        assert_eq!(seen.headers["x-injected"], "yes");
        let headers: serde_json::Value =
            serde_json::from_slice(&seen.body.expect("body")).expect("json");
        assert_eq!(headers["x-chaos"], "on", "{proto:?}");
        let plain = get(&c, &format!("http://{addr}/other")).await;
        assert!(
            !plain.headers.contains_key("content-type"),
            "an empty value removes the header"
        );

        let list = get(&c, &format!("http://{addr}/list")).await;
        assert_eq!(list.body.as_deref(), Ok(&br#"{"items": []}"#[..]));
        assert_eq!(list.headers["content-type"], "application/json");
    }
}

#[tokio::test]
async fn fail_nth_fails_exactly_every_nth() {
    let (_sb, _upstream, addr) =
        proxied(r#"(name: "brownout", route: "web", kind: FailNth(n: 3))"#).await;
    let c = client(Proto::H2);
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(get(&c, &format!("http://{addr}/x")).await.status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 503, 200, 200, 503, 200]);
}

#[tokio::test]
async fn grpc_abort_answers_grpc_requests_only() {
    let (sb, _upstream, addr) = proxied(
        r#"(name: "grpc", route: "web", kind: GrpcAbort(code: 14, message: "unavailable"))"#,
    )
    .await;
    let c = client(Proto::H2);
    let grpc = call(
        &c,
        Method::POST,
        &format!("http://{addr}/pkg.Svc/Call"),
        &[("content-type", "application/grpc")],
        Bytes::new(),
    )
    .await
    .expect("answer");
    assert_eq!(grpc.status, 200);
    assert_eq!(grpc.headers["grpc-status"], "14");
    assert_eq!(grpc.headers["grpc-message"], "unavailable");
    let plain = get(&c, &format!("http://{addr}/x")).await;
    assert_eq!(plain.status, 200);
    assert!(!plain.headers.contains_key("grpc-status"));
    assert_eq!(
        sb.app.metrics().times_fired("grpc"),
        1,
        "the plain request is not a firing"
    );
}

#[tokio::test]
async fn when_selects_requests_by_method_path_headers_and_query() {
    // POST /orders fails with 503 while GET /products stays fast, for tenant "test" only.
    let faults = r#"
        (name: "orders-down", route: "web",
         when: (method: "POST", path: "/orders/*", headers: {"x-tenant": "test"}),
         kind: Abort(status: 503)),
        (name: "dry-run", route: "web", when: (query: {"dryrun": "1"}), kind: Abort(status: 204)),
    "#;
    let (_sb, _upstream, addr) = proxied(faults).await;
    let c = client(Proto::H1);
    let post = |path: &'static str, tenant: &'static str| {
        let c = c.clone();
        async move {
            call(
                &c,
                Method::POST,
                &format!("http://{addr}{path}"),
                &[("x-tenant", tenant)],
                Bytes::from_static(b"{}"),
            )
            .await
            .expect("answer")
            .status
        }
    };
    assert_eq!(post("/orders", "test").await, 503);
    assert_eq!(post("/orders/42", "test").await, 503);
    assert_eq!(
        post("/orders/42", "prod").await,
        200,
        "another tenant must not match"
    );
    assert_eq!(
        post("/products", "test").await,
        200,
        "another path must not match"
    );
    assert_eq!(
        get(&c, &format!("http://{addr}/orders/42")).await.status,
        200,
        "GET must not match"
    );
    assert_eq!(
        get(&c, &format!("http://{addr}/products?dryrun=1"))
            .await
            .status,
        204
    );
    assert_eq!(
        get(&c, &format!("http://{addr}/products?dryrun=0"))
            .await
            .status,
        200
    );
}

async fn abort_pattern(seed: u64) -> Vec<bool> {
    let upstream = http_upstream::start().await;
    let sb = spawn_seeded(
        &http_route(
            &upstream,
            r#"(name: "flaky", route: "web", probability: 0.3, kind: Abort(status: 500))"#,
        ),
        seed,
    )
    .await;
    let addr = sb.addr("web").await;
    let c = client(Proto::H1);
    let mut pattern = Vec::new();
    for _ in 0..300 {
        pattern.push(get(&c, &format!("http://{addr}/x")).await.status == 500);
    }
    pattern
}

#[tokio::test]
async fn probability_is_per_request_and_seeded() {
    let first = abort_pattern(11).await;
    let aborted = first.iter().filter(|a| **a).count();
    assert!((60..=120).contains(&aborted), "{aborted} of 300 at p=0.3");
    assert_eq!(
        abort_pattern(11).await,
        first,
        "same seed, same requests fail"
    );
    assert_ne!(abort_pattern(12).await, first);
}

#[tokio::test]
async fn partitions_act_on_http_routes() {
    let upstream = http_upstream::start().await;
    let rules = |enabled: bool, mode: &str| {
        http_route(
            &upstream,
            &format!(
                r#"(name: "cut", route: "web", enabled: {enabled}, kind: Partition(mode: {mode}))"#
            ),
        )
    };
    let sb = spawn_switchboard(&rules(true, "Refuse")).await;
    let addr = sb.addr("web").await;
    let c = client(Proto::H1);
    assert!(
        call(
            &c,
            Method::GET,
            &format!("http://{addr}/x"),
            &[],
            Bytes::new()
        )
        .await
        .is_err()
    );

    sb.set_rules(&rules(true, "Blackhole")).await;
    let held = tokio::spawn({
        let c = c.clone();
        async move { get(&c, &format!("http://{addr}/x")).await.status }
    });
    // The request reached the route and the partition took hold of it: it is held, not lost.
    support::eventually(
        Duration::from_secs(5),
        "the blackhole to hold the request",
        || async { sb.app.metrics().times_fired("cut") == 2 },
    )
    .await;
    assert!(!held.is_finished(), "a blackholed request is held");
    assert_eq!(upstream.seen(), 0, "and not forwarded");
    sb.set_rules(&rules(false, "Blackhole")).await;
    assert_eq!(
        held.await.expect("task"),
        200,
        "and answered once the partition lifts"
    );
}

#[tokio::test]
async fn kinds_must_fit_the_route_protocol() {
    let table = [
        (
            r#"(routes: [(name: "t", protocol: Tcp, listen: "127.0.0.1:1", upstream: "h:1")],
                faults: [(name: "f", route: "t", kind: Abort(status: 503))])"#,
            "does not fit a Tcp route",
        ),
        (
            r#"(routes: [(name: "w", protocol: Http, listen: "127.0.0.1:1", upstream: "http://h:1")],
                faults: [(name: "f", route: "w", kind: Latency(ms: 5))])"#,
            "does not fit a Http route",
        ),
        (
            r#"(routes: [(name: "t", protocol: Tcp, listen: "127.0.0.1:1", upstream: "h:1")],
                faults: [(name: "f", route: "t", when: (method: "GET"), kind: Latency(ms: 5))])"#,
            "its when takes only client",
        ),
        (
            r#"(routes: [(name: "r", protocol: Redis, listen: "127.0.0.1:1", upstream: "h:1")],
                faults: [(name: "f", route: "r", kind: Abort(status: 503))])"#,
            "does not fit a Redis route",
        ),
        (
            r#"(routes: [(name: "r", protocol: Redis, listen: "127.0.0.1:1", upstream: "h:1")],
                faults: [(name: "f", route: "r", when: (path: "/x"), kind: Nil())])"#,
            "match HTTP requests; route \"r\" is Redis",
        ),
        (
            r#"(routes: [(name: "r", protocol: Redis, listen: "127.0.0.1:1", upstream: "h:1")],
                faults: [(name: "f", route: "r", when: (command: ["@nosuch"]), kind: Nil())])"#,
            "@nosuch",
        ),
        (
            r#"(routes: [(name: "p", protocol: Postgres, listen: "127.0.0.1:1", upstream: "h:1")],
                faults: [(name: "f", route: "p", kind: Nil())])"#,
            "does not fit a Postgres route; it takes SqlError, Shutdown, Reject, Delay, Drop",
        ),
        (
            r#"(routes: [(name: "r", protocol: Redis, listen: "127.0.0.1:1", upstream: "h:1")],
                faults: [(name: "f", route: "r", kind: SqlError(code: "25006", message: "m"))])"#,
            "does not fit a Redis route; it takes Error, Nil, Delay, Drop",
        ),
        (
            r#"(routes: [(name: "p", protocol: Postgres, listen: "127.0.0.1:1", upstream: "h:1")],
                faults: [(name: "f", route: "p", when: (command: ["GET"]), kind: Drop())])"#,
            "command and key match Redis commands; route \"p\" is Postgres",
        ),
        (
            r#"(routes: [(name: "p", protocol: Postgres, listen: "127.0.0.1:1", upstream: "h:1")],
                faults: [(name: "f", route: "p", when: (statement: ["@writes"]), kind: Drop())])"#,
            "\"@writes\" is not a statement category",
        ),
        (
            r#"(routes: [(name: "p", protocol: Postgres, listen: "127.0.0.1:1", upstream: "h:1")],
                faults: [(name: "f", route: "p", when: (matches: "(unclosed"), kind: Drop())])"#,
            "matches: not a regular expression",
        ),
        (
            r#"(routes: [(name: "p", protocol: Postgres, listen: "127.0.0.1:1", upstream: "h:1")],
                faults: [(name: "f", route: "p", kind: SqlError(code: "2500", message: "m"))])"#,
            "\"2500\" is not an SQLSTATE",
        ),
        (
            r#"(routes: [(name: "w", protocol: Http, listen: "127.0.0.1:1", upstream: "h:1")])"#,
            "not an http:// or https://host:port URL",
        ),
        (
            r#"(routes: [(name: "w", protocol: Http, listen: "127.0.0.1:1", upstream: "http://h:1")],
                faults: [(name: "f", route: "w", kind: Abort(status: 42))])"#,
            "not a final HTTP status",
        ),
    ];
    for (text, needle) in table {
        support::assert_rejected(text, needle);
    }
}

#[tokio::test]
async fn a_websocket_upgrade_passes_through() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_sb, _upstream, addr) = proxied("").await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: shop\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .expect("handshake");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("handshake answer")
            .expect("read");
        assert_eq!(
            n,
            1,
            "closed during the handshake: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    // After the switch, bytes flow both ways untouched.
    for message in [&b"frame one"[..], &b"\x81\x05hello"[..]] {
        stream.write_all(message).await.expect("write");
        let mut back = vec![0u8; message.len()];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut back))
            .await
            .expect("echo")
            .expect("read");
        assert_eq!(back, message);
    }
}

#[tokio::test]
async fn connect_delay_slows_new_upstream_connections() {
    let (_sb, _upstream, addr) =
        proxied(r#"(name: "slow-dial", route: "web", kind: ConnectDelay(ms: 200))"#).await;
    let c = client(Proto::H1);
    let start = Instant::now();
    assert_eq!(get(&c, &format!("http://{addr}/x")).await.status, 200);
    let first = start.elapsed();
    eprintln!("measured ConnectDelay: first request {first:?} (asked 200 ms)");
    assert!(first >= Duration::from_millis(200), "{first:?}");
    // The upstream connection is pooled: the next request does not dial again.
    let start = Instant::now();
    assert_eq!(get(&c, &format!("http://{addr}/x")).await.status, 200);
    assert!(
        start.elapsed() < Duration::from_millis(150),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn http_metrics_count_requests_by_status_class_and_time_them() {
    let (sb, _upstream, addr) =
        proxied(r#"(name: "brownout", route: "web", kind: FailNth(n: 2))"#).await;
    let c = client(Proto::H1);
    for _ in 0..4 {
        get(&c, &format!("http://{addr}/x")).await;
    }
    let metrics = sb.api().get("/metrics").await;
    let text = String::from_utf8_lossy(&metrics.raw);
    for line in [
        r#"switchboard_http_requests_total{route="web",status="2xx"} 2"#,
        r#"switchboard_http_requests_total{route="web",status="5xx"} 2"#,
        r#"switchboard_http_request_duration_seconds_count{route="web"} 4"#,
        r#"switchboard_http_upstream_duration_seconds_count{route="web"} 2"#,
        r#"switchboard_faults_fired_by_kind_total{kind="FailNth"} 2"#,
        r#"switchboard_fault_fired_total{fault="brownout"} 2"#,
    ] {
        assert!(text.contains(line), "missing {line} in:\n{text}");
    }
}

#[tokio::test]
async fn bandwidth_paces_an_http_connection() {
    let (_sb, _upstream, addr) =
        proxied(r#"(name: "thin", route: "web", kind: Bandwidth(bytes_per_sec: 200000))"#).await;
    for proto in BOTH {
        let start = Instant::now();
        let a = get(&client(proto), &format!("http://{addr}/bytes/200000")).await;
        let took = start.elapsed();
        assert_eq!(a.body.map(|b| b.len()), Ok(200_000));
        eprintln!(
            "measured Bandwidth over HTTP {proto:?}: 200000 bytes in {took:?} (asked 200000 B/s)"
        );
        assert!(took >= Duration::from_millis(900), "{proto:?}: {took:?}");
        assert!(took < Duration::from_millis(1500), "{proto:?}: {took:?}");
    }
}

#[tokio::test]
async fn a_lifted_connect_delay_releases_the_requests_waiting_on_a_dial() {
    let upstream = http_upstream::start().await;
    let rules = |enabled: bool| {
        http_route(
            &upstream,
            &format!(
                r#"(name: "slow-dial", route: "web", enabled: {enabled}, kind: ConnectDelay(ms: 60000))"#
            ),
        )
    };
    let sb = spawn_switchboard(&rules(true)).await;
    let addr = sb.addr("web").await;
    let c = client(Proto::H1);
    let waiting = tokio::spawn(async move { get(&c, &format!("http://{addr}/x")).await.status });
    support::eventually(
        Duration::from_secs(5),
        "the request to wait on its dial",
        || async { sb.app.metrics().route("web").snapshot().open == 1 },
    )
    .await;
    sb.set_rules(&rules(false)).await;
    // `get` gives up after 10 s; a delay that ignored the lift would hold it for 60.
    assert_eq!(waiting.await.expect("task"), 200);
}

#[tokio::test]
async fn bandwidth_paces_an_upload_from_its_first_read() {
    let (_sb, _upstream, addr) = proxied(
        r#"(name: "thin-up", route: "web", direction: Upstream, kind: Bandwidth(bytes_per_sec: 50000))"#,
    )
    .await;
    let started = Instant::now();
    let answer = call(
        &client(Proto::H1),
        Method::POST,
        &format!("http://{addr}/count"),
        &[],
        Bytes::from(vec![b'u'; 100_000]),
    )
    .await
    .expect("an answer");
    let took = started.elapsed();
    assert_eq!(answer.body.as_deref(), Ok(&b"100000"[..]));
    eprintln!("measured upload Bandwidth: 100000 bytes in {took:?} (asked 50000 B/s)");
    // Reads of the whole socket buffer would pass tens of KiB before the pace began.
    assert!(took >= Duration::from_millis(1800), "{took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
}

/// An HTTP route counts the bytes of its clients' connections each way: exactly what the
/// clients sent, and exactly what they received.
#[tokio::test]
async fn http_routes_count_bytes_each_way() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (sb, _upstream, addr) = proxied("").await;
    let (mut sent, mut received) = (0u64, 0u64);
    for i in 0..10 {
        let request = format!(
            "GET /path/{i} HTTP/1.1\r\nHost: {addr}\r\nX-Pad: {}\r\nConnection: close\r\n\r\n",
            "p".repeat(i * 100)
        );
        let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
        socket.write_all(request.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        socket.read_to_end(&mut answer).await.expect("read");
        assert!(
            answer.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
        sent += request.len() as u64;
        received += answer.len() as u64;
    }
    let info = sb.api().get("/v1/routes/web").await.body;
    assert_eq!(info["stats"]["bytes_upstream"], sent, "{info}");
    assert_eq!(info["stats"]["bytes_downstream"], received, "{info}");
}
