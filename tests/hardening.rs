//! Hardening (issue 16): slow and idle clients are bounded, input cannot panic the server or
//! overflow its clocks, names stay addressable, web pages cannot drive the control endpoint,
//! the rules watch survives its directory, HTTP upstreams have time limits, and an injected
//! answer keeps the client's connection usable.

use crate::support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use support::{
    Harness, TEST_LOAD, eventually, http_upstream, rules, scratch_dir, spawn_switchboard,
};
use switchboard::Config;
use switchboard::control::{Auth, ControlOptions};
use switchboard::proxy::http::watchdog::ConnTimeouts;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SHORT: ConnTimeouts = ConnTimeouts {
    header: Duration::from_millis(300),
    idle: Duration::from_millis(1500),
};

async fn with_options(options: ControlOptions) -> Harness {
    support::start_with(
        rules("(routes: [], faults: [])"),
        Config {
            seed: Some(7),
            ..Config::default()
        },
        Auth::open(),
        options,
    )
    .await
}

/// Reads until the peer closes; None if it is still open after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, read_all).await.ok()?;
    Some(String::from_utf8_lossy(&seen).into_owned())
}

/// Reads one HTTP/1.1 response with a Content-Length body.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&seen).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("a response within 10 s")
            .expect("read");
        assert!(n > 0, "closed before a whole response: {text}");
        seen.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn a_slow_request_head_is_cut_off_at_the_header_timeout() {
    let sb = with_options(ControlOptions {
        timeouts: SHORT,
        ..ControlOptions::default()
    })
    .await;
    // Slowloris: a head that never ends.
    let mut slow = TcpStream::connect(sb.control.local_addr())
        .await
        .expect("connect");
    slow.write_all(b"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .expect("write");
    let said = closed_within(&mut slow, Duration::from_secs(5)).await;
    assert!(said.is_some(), "a slowloris connection stayed open");
    // A connection that never sends anything is bounded the same way.
    let mut silent = TcpStream::connect(sb.control.local_addr())
        .await
        .expect("connect");
    assert!(
        closed_within(&mut silent, Duration::from_secs(5))
            .await
            .is_some(),
        "a silent connection stayed open"
    );
}

#[tokio::test]
async fn a_kept_alive_connection_outlives_the_header_timeout_and_closes_when_idle() {
    let sb = with_options(ControlOptions {
        timeouts: SHORT,
        ..ControlOptions::default()
    })
    .await;
    let mut conn = TcpStream::connect(sb.control.local_addr())
        .await
        .expect("connect");
    let request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    conn.write_all(request).await.expect("write");
    assert!(read_response(&mut conn).await.starts_with("HTTP/1.1 200"));
    // Idle between requests for longer than the header timeout: a client's pool must be able
    // to reuse the connection (closing it here would make requests race the close).
    tokio::time::sleep(SHORT.header * 2).await;
    conn.write_all(request).await.expect("write");
    assert!(read_response(&mut conn).await.starts_with("HTTP/1.1 200"));
    // Then nothing: the idle timeout closes it.
    assert!(
        closed_within(&mut conn, SHORT.idle * 4).await.is_some(),
        "an idle connection stayed open past the idle timeout"
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_get_a_503_and_are_closed() {
    let sb = with_options(ControlOptions {
        max_connections: 3,
        ..ControlOptions::default()
    })
    .await;
    let addr = sb.control.local_addr();
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = TcpStream::connect(addr).await.expect("connect");
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .expect("write");
        assert!(read_response(&mut c).await.starts_with("HTTP/1.1 200"));
        held.push(c);
    }
    let mut over = TcpStream::connect(addr).await.expect("connect");
    let answer = closed_within(&mut over, Duration::from_secs(5))
        .await
        .expect("the connection over the cap is closed");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("at most 3 connections"), "{answer}");
    // A slot freed is a slot usable again.
    held.pop();
    eventually(
        Duration::from_secs(5),
        "a freed slot serves again",
        || async {
            let mut c = TcpStream::connect(addr).await.expect("connect");
            let _ = c
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .await;
            closed_within(&mut c, Duration::from_secs(2))
                .await
                .is_some_and(|a| a.starts_with("HTTP/1.1 200"))
        },
    )
    .await;
}

#[tokio::test]
async fn http_routes_bound_slow_heads_and_idle_clients() {
    let upstream = http_upstream::start().await;
    let sb = spawn_switchboard(&format!(
        r#"(routes: [(name: "web", protocol: Http, listen: "127.0.0.1:0", upstream: "{}",
             timeouts: (header: "300ms", idle: "1500ms"))], faults: [])"#,
        upstream.url()
    ))
    .await;
    let addr = sb.addr("web").await;
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: shop\r\nX-Slow: ")
        .await
        .expect("write");
    assert!(
        closed_within(&mut slow, Duration::from_secs(5))
            .await
            .is_some(),
        "a slowloris connection to an HTTP route stayed open"
    );
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(b"GET / HTTP/1.1\r\nHost: shop\r\n\r\n")
        .await
        .expect("write");
    assert!(read_response(&mut idle).await.starts_with("HTTP/1.1 200"));
    assert!(
        closed_within(&mut idle, Duration::from_secs(6))
            .await
            .is_some(),
        "an idle client of an HTTP route stayed open"
    );
}

#[tokio::test]
async fn a_ttl_beyond_the_maximum_is_a_400_naming_ttl() {
    let sb = spawn_switchboard(&support::route_with(
        "r",
        "127.0.0.1:1".parse().expect("addr"),
        "",
    ))
    .await;
    for ttl in [json!("300000000000years"), json!("400days"), json!(1e300)] {
        let answer = sb
            .api()
            .post(
                "/v1/faults",
                json!({"name": "f", "route": "r", "kind": {"Latency": {"ms": 1}}, "ttl": ttl}),
            )
            .await;
        assert_eq!(answer.status, 400, "{ttl}: {:?}", answer.body);
        assert_eq!(answer.body["field"], "ttl", "{:?}", answer.body);
    }
    // The server is still there and nothing was created.
    let faults = sb.api().get("/v1/faults").await;
    assert_eq!(faults.body, json!([]));
    let ok = sb
        .api()
        .post(
            "/v1/faults",
            json!({"name": "f", "route": "r", "kind": {"Latency": {"ms": 1}}, "ttl": "365days"}),
        )
        .await;
    assert_eq!(ok.status, 201, "{:?}", ok.body);
    let patched = sb
        .api()
        .patch("/v1/faults/f", json!({"ttl": "300000000000years"}))
        .await;
    assert_eq!(patched.status, 400, "{:?}", patched.body);
    assert_eq!(patched.body["field"], "ttl");
}

#[tokio::test]
async fn a_drill_with_an_absurd_duration_is_refused_and_the_next_one_runs() {
    let probe_target = http_upstream::start().await;
    let sb = spawn_switchboard(&support::route_with(
        "r",
        "127.0.0.1:1".parse().expect("addr"),
        r#"(name: "slow", route: "r", enabled: false, kind: Latency(ms: 1))"#,
    ))
    .await;
    let drill = |observe: &str| {
        format!(
            r#"(name: "d", baseline: "200ms", observe: "{observe}",
                probes: [(name: "p", check: Http(url: "{}/"), interval: "50ms", steady: (window: "100ms"))],
                steps: [(at: "0s", action: Enable("slow")), (at: "100ms", action: Disable("slow"))])"#,
            probe_target.url()
        )
    };
    let refused = sb
        .api()
        .post("/v1/drills", json!({"ron": drill("300000000000years")}))
        .await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert!(
        refused.body["error"]
            .as_str()
            .unwrap_or("")
            .contains("observe"),
        "{:?}",
        refused.body
    );
    let started = sb
        .api()
        .post("/v1/drills", json!({"ron": drill("1s")}))
        .await;
    assert_eq!(started.status, 201, "{:?}", started.body);
}

#[tokio::test]
async fn names_outside_the_allowed_set_are_refused_with_the_field() {
    let sb = spawn_switchboard(&support::route_with(
        "r",
        "127.0.0.1:1".parse().expect("addr"),
        "",
    ))
    .await;
    let long = "n".repeat(129);
    for name in ["x/y", "a b", "nul\u{0}", "new\nline", "", long.as_str()] {
        let answer = sb
            .api()
            .post(
                "/v1/faults",
                json!({"name": name, "route": "r", "kind": {"Latency": {"ms": 1}}}),
            )
            .await;
        assert_eq!(answer.status, 400, "{name:?}: {:?}", answer.body);
        assert_eq!(answer.body["field"], "name", "{name:?}: {:?}", answer.body);
        let proxy = sb
            .api()
            .post(
                "/proxies",
                json!({"name": name, "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"}),
            )
            .await;
        assert_eq!(proxy.status, 400, "{name:?}: {:?}", proxy.body);
    }
    // What Toxiproxy's clients make keeps working, `proxy:toxic` names included.
    let proxy = sb
        .api()
        .post(
            "/proxies",
            json!({"name": "redis-1.cache_a", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"}),
        )
        .await;
    assert_eq!(proxy.status, 201, "{:?}", proxy.body);
    let toxic = sb
        .api()
        .post(
            "/proxies/redis-1.cache_a/toxics",
            json!({"name": "latency_downstream", "type": "latency", "attributes": {"latency": 5}}),
        )
        .await;
    assert_eq!(toxic.status, 200, "{:?}", toxic.body);
    let fault = sb
        .api()
        .get("/v1/faults/redis-1.cache_a:latency_downstream")
        .await;
    assert_eq!(fault.status, 200, "{:?}", fault.body);
    assert_eq!(
        sb.api().delete("/proxies/redis-1.cache_a").await.status,
        204
    );
}

/// Sends `request` as it is and returns the whole answer (the request asks to close).
async fn raw_call(addr: SocketAddr, request: &str) -> String {
    let mut c = TcpStream::connect(addr).await.expect("connect");
    c.write_all(request.as_bytes()).await.expect("write");
    closed_within(&mut c, Duration::from_secs(5))
        .await
        .expect("an answer and a close")
}

#[tokio::test]
async fn web_pages_cannot_drive_the_control_endpoint() {
    let sb = with_options(ControlOptions {
        allowed_hosts: vec!["switchboard.test".into()],
        ..ControlOptions::default()
    })
    .await;
    let addr = sb.control.local_addr();
    let body = r#"{"name": "evil", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"}"#;
    let post = |host: &str, origin: Option<&str>| {
        let origin = origin
            .map(|o| format!("Origin: {o}\r\n"))
            .unwrap_or_default();
        format!(
            "POST /proxies HTTP/1.1\r\nHost: {host}\r\n{origin}Content-Type: text/plain\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    // DNS rebinding: the page's own name in Host.
    let rebound = raw_call(addr, &post("attacker.example:8474", None)).await;
    assert!(rebound.starts_with("HTTP/1.1 403"), "{rebound}");
    assert!(rebound.contains("DNS rebinding"), "{rebound}");
    // Cross-site request forgery: a loopback Host, another page's Origin.
    let forged = raw_call(
        addr,
        &post(&addr.to_string(), Some("http://attacker.example")),
    )
    .await;
    assert!(forged.starts_with("HTTP/1.1 403"), "{forged}");
    assert!(forged.contains("cross-origin"), "{forged}");
    assert_eq!(
        sb.api().get("/proxies").await.body,
        json!({}),
        "nothing was created"
    );
    // What must keep working: clients that send no Origin, by loopback name or allowed name,
    // and a page served by the endpoint itself.
    for host in [
        addr.to_string(),
        format!("localhost:{}", addr.port()),
        "switchboard.test".into(),
    ] {
        let answer = raw_call(
            addr,
            &format!("GET /v1/status HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{host}: {answer}");
    }
    let same_origin = raw_call(
        addr,
        &format!(
            "GET /v1/status HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(same_origin.starts_with("HTTP/1.1 200"), "{same_origin}");
}

#[tokio::test]
async fn a_public_bind_with_a_token_takes_any_host_but_no_foreign_origin() {
    // Bound off loopback (as in a compose network), clients reach it by service name.
    let app = switchboard::Switchboard::start(rules("(routes: [], faults: [])"), Config::default())
        .await
        .expect("start");
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let auth =
        Auth::for_bind(listener.local_addr().expect("addr"), Some("s3cret".into())).expect("token");
    let _control = switchboard::control::serve(listener, app, auth).expect("serve");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let by_name = raw_call(
        addr,
        "GET /version HTTP/1.1\r\nHost: toxiproxy:8474\r\nAuthorization: bearer s3cret\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(by_name.starts_with("HTTP/1.1 200"), "{by_name}");
    let foreign = raw_call(
        addr,
        "GET /version HTTP/1.1\r\nHost: toxiproxy:8474\r\nAuthorization: Bearer s3cret\r\nOrigin: http://evil.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(foreign.starts_with("HTTP/1.1 403"), "{foreign}");
}

#[tokio::test]
async fn the_rules_watch_comes_back_with_its_directory() {
    let dir = scratch_dir("rearm");
    let write = |dir: &std::path::Path, fault: &str| {
        let text = format!(
            r#"(routes: [(name: "r", protocol: Tcp, listen: "127.0.0.1:0", upstream: "127.0.0.1:1")],
                faults: [(name: "{fault}", route: "r", enabled: false, kind: Latency(ms: 1))])"#
        );
        std::fs::write(dir.join("rules.ron"), text).expect("write rules");
    };
    write(&dir, "before");
    let sb = support::spawn_in_dir(&dir).await;
    std::fs::remove_dir_all(&dir).expect("rm -rf");
    eventually(
        Duration::from_secs(10),
        "status says the directory is gone",
        || async {
            sb.api().get("/v1/status").await.body["rules_watch"]
                .as_str()
                .is_some_and(|s| s.contains("is gone"))
        },
    )
    .await;
    std::fs::create_dir_all(&dir).expect("mkdir");
    write(&dir, "after");
    eventually(
        Duration::from_secs(10),
        "the new directory is loaded",
        || async { sb.api().get("/v1/faults/after").await.status == 200 },
    )
    .await;
    let status = sb.api().get("/v1/status").await.body;
    assert_eq!(status["rules_watch"], "watching", "{status}");
    assert!(status["last_rejected"].is_null(), "{status}");
    // And it keeps watching the new directory.
    write(&dir, "later");
    eventually(
        Duration::from_secs(10),
        "a later edit is loaded",
        || async { sb.api().get("/v1/faults/later").await.status == 200 },
    )
    .await;
}

/// A listener whose backlog is full: further connection attempts get no answer at all, as
/// a blackholed host gives none.
fn blackholed_upstream() -> (socket2::Socket, Vec<std::net::TcpStream>, SocketAddr) {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind");
    socket.listen(0).expect("listen");
    let addr = socket
        .local_addr()
        .expect("addr")
        .as_socket()
        .expect("inet");
    let mut fill = Vec::new();
    for _ in 0..4 {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        s.set_nonblocking(true).expect("nonblocking");
        let _ = s.connect(&addr.into());
        fill.push(std::net::TcpStream::from(s));
    }
    (socket, fill, addr)
}

#[tokio::test]
async fn http_upstreams_have_a_connect_timeout_and_an_optional_response_timeout() {
    let (_socket, _fill, blackholed) = blackholed_upstream();
    let silent = support::upstream::serve(|mut s| async move {
        // Reads the request, never answers.
        let mut buf = [0u8; 1024];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    let sb = spawn_switchboard(&format!(
        r#"(routes: [
            (name: "gone", protocol: Http, listen: "127.0.0.1:0", upstream: "http://{blackholed}",
             timeouts: (connect: "300ms")),
            (name: "mute", protocol: Http, listen: "127.0.0.1:0", upstream: "http://{silent}",
             timeouts: (response: "300ms")),
        ], faults: [])"#
    ))
    .await;
    let gone = raw_call(
        sb.addr("gone").await,
        "GET / HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(gone.starts_with("HTTP/1.1 502"), "{gone}");
    assert!(gone.contains("timed out"), "{gone}");
    let mute = raw_call(
        sb.addr("mute").await,
        "GET / HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(mute.starts_with("HTTP/1.1 504"), "{mute}");
    assert!(mute.contains("response timeout"), "{mute}");
}

#[tokio::test]
async fn an_injected_answer_keeps_the_clients_connection_usable() {
    let upstream = http_upstream::start().await;
    let sb = spawn_switchboard(&format!(
        r#"(routes: [(name: "web", protocol: Http, listen: "127.0.0.1:0", upstream: "{}")],
            faults: [(name: "orders-down", route: "web", when: (method: "POST"),
                      kind: Abort(status: 503, body: "down"))])"#,
        upstream.url()
    ))
    .await;
    let addr = sb.addr("web").await;
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    let body = vec![b'o'; 100 * 1024];
    for round in 0..20 {
        let head = format!(
            "POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes()).await.expect("head");
        conn.write_all(&body).await.expect("body");
        let answer = read_response(&mut conn).await;
        assert!(
            answer.starts_with("HTTP/1.1 503"),
            "round {round}: {answer}"
        );
        assert!(answer.ends_with("down"), "round {round}: {answer}");
        assert!(
            !answer.to_ascii_lowercase().contains("connection: close"),
            "round {round}: {answer}"
        );
    }
    // The same connection still reaches the upstream.
    conn.write_all(b"GET /ok HTTP/1.1\r\nHost: shop\r\n\r\n")
        .await
        .expect("write");
    let answer = read_response(&mut conn).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("hello from upstream: /ok"), "{answer}");
}

#[tokio::test]
async fn an_injected_answer_to_a_body_past_the_bound_says_connection_close() {
    let upstream = http_upstream::start().await;
    let sb = spawn_switchboard(&format!(
        r#"(routes: [(name: "web", protocol: Http, listen: "127.0.0.1:0", upstream: "{}")],
            faults: [(name: "down", route: "web", kind: Abort(status: 503, body: "down"))])"#,
        upstream.url()
    ))
    .await;
    let mut conn = TcpStream::connect(sb.addr("web").await)
        .await
        .expect("connect");
    let size = 4 * 1024 * 1024;
    let head = format!("POST /upload HTTP/1.1\r\nHost: shop\r\nContent-Length: {size}\r\n\r\n");
    conn.write_all(head.as_bytes()).await.expect("head");
    let (mut reader, mut writer) = conn.into_split();
    // The proxy stops reading past its bound; the writer may be left blocked.
    let writing = tokio::spawn(async move {
        let _ = writer.write_all(&vec![b'u'; size]).await;
        writer
    });
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let got = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
            if String::from_utf8_lossy(&seen).ends_with("down") {
                break;
            }
        }
    })
    .await;
    assert!(got.is_ok(), "no answer");
    let answer = String::from_utf8_lossy(&seen).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 503"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    writing.abort();
}

#[test]
fn check_refuses_listen_addresses_that_cannot_both_bind() {
    let text = r#"(routes: [
        (name: "a", protocol: Tcp, listen: "0.0.0.0:18555", upstream: "127.0.0.1:1"),
        (name: "b", protocol: Tcp, listen: "127.0.0.1:18555", upstream: "127.0.0.1:1"),
    ])"#;
    let loaded = switchboard::rules::load_texts(&[("t.ron".into(), text.into())], TEST_LOAD);
    let error = loaded
        .expect_err("overlapping listens are refused")
        .to_string();
    assert!(error.contains("t.ron:3:"), "{error}");
    assert!(error.contains("cannot be bound beside"), "{error}");
}

#[tokio::test]
async fn api_routes_stay_inside_the_allow_lists() {
    let reach = switchboard::app::RouteReach {
        listen: Some(vec!["127.0.0.0/8".parse().expect("rule")]),
        upstream: Some(vec!["127.0.0.1/32:6379".parse().expect("rule")]),
    };
    let sb = support::start(
        rules("(routes: [], faults: [])"),
        Config {
            reach,
            ..Config::default()
        },
        Auth::open(),
    )
    .await;
    let create =
        |listen: &str, upstream: &str| json!({"name": "p", "listen": listen, "upstream": upstream});
    let outside_upstream = sb
        .api()
        .post("/proxies", create("127.0.0.1:0", "10.0.0.1:80"))
        .await;
    assert_eq!(outside_upstream.status, 400, "{:?}", outside_upstream.body);
    assert!(
        outside_upstream.body["error"]
            .as_str()
            .unwrap_or("")
            .contains("--allow-upstream"),
        "{:?}",
        outside_upstream.body
    );
    let outside_listen = sb
        .api()
        .post("/proxies", create("0.0.0.0:0", "127.0.0.1:6379"))
        .await;
    assert_eq!(outside_listen.status, 400, "{:?}", outside_listen.body);
    assert!(
        outside_listen.body["error"]
            .as_str()
            .unwrap_or("")
            .contains("--allow-listen"),
        "{:?}",
        outside_listen.body
    );
    let inside = sb
        .api()
        .post("/proxies", create("127.0.0.1:0", "127.0.0.1:6379"))
        .await;
    assert_eq!(inside.status, 201, "{:?}", inside.body);
    let moved = sb
        .api()
        .post("/proxies/p", json!({"upstream": "127.0.0.1:5432"}))
        .await;
    assert_eq!(moved.status, 400, "{:?}", moved.body);
}

/// With 100,000 faults loaded, changes are answered: each PATCH and reset cost time in
/// proportion to the whole set squared before (37 s and 56 s). Speed itself is measured in
/// `benches/scale.rs`; this only checks that each call answers while a client still waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_answered_with_100000_faults_loaded() {
    let mut text = String::from(
        r#"(routes: [(name: "r", protocol: Tcp, listen: "127.0.0.1:0", upstream: "127.0.0.1:1")], faults: ["#,
    );
    for i in 0..100_000 {
        text.push_str(&format!(
            r#"(name: "f{i}", route: "r", enabled: false, kind: Latency(ms: 1)),"#
        ));
    }
    text.push_str("])");
    let sb = spawn_switchboard(&text).await;
    let within = Duration::from_secs(10);
    let api = sb.api();
    for i in [0, 49_999, 99_999] {
        let path = format!("/v1/faults/f{i}");
        let patch = api.patch(&path, json!({"enabled": true}));
        let answer = tokio::time::timeout(within, patch)
            .await
            .expect("PATCH answered");
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
    let status = tokio::time::timeout(within, api.get("/v1/status"))
        .await
        .expect("status answered");
    assert_eq!(status.body["faults_enabled"], 3);
    let reset = tokio::time::timeout(within, api.post("/v1/reset", json!(null)))
        .await
        .expect("reset answered");
    assert_eq!(reset.body["turned_off"], json!(["f0", "f49999", "f99999"]));
    let status = sb.api().get("/v1/status").await;
    assert_eq!(status.body["faults_enabled"], 0);
}

#[tokio::test]
async fn a_blackholed_client_that_hangs_up_is_let_go() {
    let echo = support::upstream::echo().await;
    let sb = spawn_switchboard(&support::route_with(
        "r",
        echo,
        r#"(name: "hole", route: "r", kind: Partition(mode: Blackhole))"#,
    ))
    .await;
    let addr = sb.addr("r").await;
    let open = || async { sb.api().get("/v1/routes/r").await.body["stats"]["open"].clone() };
    let client = TcpStream::connect(addr).await.expect("connect");
    eventually(
        Duration::from_secs(5),
        "the held connection is counted",
        || async { open().await == 1 },
    )
    .await;
    drop(client);
    // Before, the task and both sockets stayed until the partition lifted.
    eventually(
        Duration::from_secs(5),
        "the connection is let go",
        || async { open().await == 0 },
    )
    .await;
}
