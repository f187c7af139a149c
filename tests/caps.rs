//! Caps on a fault's blast radius, over real sockets: `max_active` lets at most N connections
//! or requests be under a fault at once, and `Bandwidth(shared: true)` is one budget for the
//! whole route, split fairly among its busy connections.

use crate::support;

use std::time::{Duration, Instant};

use support::from::get_from;
use support::{eventually, http_upstream, route_with, spawn_switchboard, upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A 64-byte round trip on an open connection, timed.
async fn round_trip(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    stream.write_all(&[1u8; 64]).await.expect("write");
    let mut back = [0u8; 64];
    stream.read_exact(&mut back).await.expect("echo");
    started.elapsed()
}

/// Opens `n` connections at once and times one round trip on each; returns the connections
/// with whether each was held by the 400 ms latency.
async fn open_and_time(addr: std::net::SocketAddr, n: usize) -> Vec<(TcpStream, bool)> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                let took = round_trip(&mut stream).await;
                // Anything far below the fault's 400 ms passed untouched.
                assert!(
                    took >= Duration::from_millis(400) || took < Duration::from_millis(200),
                    "a round trip of {took:?} is neither faulted nor clean"
                );
                (stream, took >= Duration::from_millis(400))
            })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.expect("connection task"));
    }
    out
}

async fn active(sb: &support::Harness, fault: &str) -> u64 {
    let answer = sb.api().get(&format!("/v1/faults/{fault}")).await;
    answer.body["active"]
        .as_u64()
        .expect("active is shown for a capped fault")
}

#[tokio::test]
async fn max_active_puts_exactly_that_many_connections_under_a_fault() {
    let faults = r#"(name: "slow-three", route: "db", kind: Latency(ms: 400), max_active: 3)"#;
    let sb = spawn_switchboard(&route_with("db", upstream::echo().await, faults)).await;
    let addr = sb.addr("db").await;
    let mut conns = open_and_time(addr, 20).await;
    let faulted = conns.iter().filter(|(_, f)| *f).count();
    assert_eq!(faulted, 3, "20 concurrent connections, max_active 3");
    assert_eq!(active(&sb, "slow-three").await, 3);
    assert_eq!(sb.app.metrics().times_fired("slow-three"), 3);

    // The three close; their places are free again, and three new connections take them
    // while the seventeen already open stay untouched.
    conns.retain(|(_, f)| !*f);
    eventually(Duration::from_secs(5), "the places to be freed", || async {
        active(&sb, "slow-three").await == 0
    })
    .await;
    let fresh = open_and_time(addr, 3).await;
    assert!(fresh.iter().all(|(_, f)| *f), "the freed places are taken");
    assert_eq!(active(&sb, "slow-three").await, 3);
    for (stream, _) in conns.iter_mut() {
        assert!(round_trip(stream).await < Duration::from_millis(200));
    }
    let again = open_and_time(addr, 5).await;
    assert!(again.iter().all(|(_, f)| !*f), "the cap is full again");
}

#[tokio::test]
async fn max_active_caps_concurrent_http_requests() {
    let upstream = http_upstream::start().await;
    let rules = format!(
        r#"(
  routes: [(name: "api", protocol: Http, listen: "127.0.0.1:0", upstream: "{}")],
  faults: [(name: "slow-two", route: "api", kind: Delay(ms: 500), max_active: 2)],
)"#,
        upstream.url()
    );
    let sb = spawn_switchboard(&rules).await;
    let addr = sb.addr("api").await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            tokio::spawn(async move {
                let started = Instant::now();
                let answer = get_from("127.0.0.1", addr, "/x", &[]).await;
                assert_eq!(answer.status, Some(200));
                started.elapsed()
            })
        })
        .collect();
    let mut held = 0;
    for task in tasks {
        if task.await.expect("request") >= Duration::from_millis(500) {
            held += 1;
        }
    }
    assert_eq!(held, 2, "10 concurrent requests, max_active 2");
    assert_eq!(
        active(&sb, "slow-two").await,
        0,
        "every place was given back"
    );
}

#[tokio::test]
async fn a_shared_bandwidth_is_one_budget_split_fairly() {
    const RATE: u64 = 1_000_000;
    const WINDOW: Duration = Duration::from_secs(3);
    let source = upstream::sender(vec![b's'; 16 * 1024 * 1024]).await;
    let faults = format!(
        r#"(name: "shared-pipe", route: "dl", kind: Bandwidth(bytes_per_sec: {RATE}, shared: true))"#
    );
    let sb = spawn_switchboard(&route_with("dl", source, &faults)).await;
    let addr = sb.addr("dl").await;
    let mut streams = Vec::new();
    for _ in 0..6 {
        streams.push(TcpStream::connect(addr).await.expect("connect"));
    }
    // Every connection is open before the window starts; each then counts what it receives.
    let start = tokio::time::Instant::now();
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut total = 0u64;
                while let Ok(Ok(n)) =
                    tokio::time::timeout_at(start + WINDOW, stream.read(&mut buf)).await
                {
                    assert!(n > 0, "the source ended early");
                    total += n as u64;
                }
                total
            })
        })
        .collect();
    let mut each = Vec::new();
    for reader in readers {
        each.push(reader.await.expect("reader"));
    }
    let total: u64 = each.iter().sum();
    let budget = RATE as f64 * WINDOW.as_secs_f64();
    eprintln!(
        "shared bandwidth: total {total} bytes in {WINDOW:?} (budget {budget}); each {each:?}"
    );
    assert!(
        (total as f64 - budget).abs() <= 0.10 * budget,
        "the route moved {total} bytes against a budget of {budget}"
    );
    let fair = total as f64 / 6.0;
    for (i, got) in each.iter().enumerate() {
        assert!(
            (*got as f64 - fair).abs() <= 0.25 * fair,
            "connection {i} got {got} bytes; a fair share is {fair:.0}"
        );
    }
}

#[tokio::test]
async fn caps_that_cannot_hold_are_refused_with_the_field_named() {
    let table = [
        (
            r#"(routes: [(name: "t", protocol: Tcp, listen: "127.0.0.1:1", upstream: "h:1")],
                faults: [(name: "f", route: "t", kind: Latency(ms: 5), max_active: 0)])"#,
            "max_active must be at least 1",
        ),
        (
            r#"(routes: [(name: "w", protocol: Http, listen: "127.0.0.1:1", upstream: "http://h:1")],
                faults: [(name: "f", route: "w", kind: Bandwidth(bytes_per_sec: 5, shared: true))])"#,
            "route \"w\" is Http",
        ),
        (
            r#"(routes: [(name: "p", protocol: Postgres, listen: "127.0.0.1:1", upstream: "h:1")],
                faults: [(name: "f", route: "p", kind: Reject(code: "53300", message: "m"), max_active: 2)])"#,
            "max_active does not apply",
        ),
    ];
    for (text, needle) in table {
        support::assert_rejected(text, needle);
    }
}

#[tokio::test]
async fn the_api_sets_patches_and_refuses_caps_and_clients() {
    let sb = spawn_switchboard(&route_with("db", upstream::echo().await, "")).await;
    let api = sb.api();
    let created = api
        .post(
            "/v1/faults",
            serde_json::json!({
                "name": "capped", "route": "db", "kind": {"Latency": {"ms": 10}},
                "max_active": 2, "when": {"client": ["127.0.0.2"]}
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["max_active"], 2);
    assert_eq!(created.body["active"], 0);
    assert_eq!(created.body["when"]["client"][0], "127.0.0.2");

    let patched = api
        .patch("/v1/faults/capped", serde_json::json!({"max_active": 7}))
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(patched.body["max_active"], 7);
    let lifted = api
        .patch("/v1/faults/capped", serde_json::json!({"max_active": null}))
        .await;
    assert_eq!(lifted.status, 200);
    assert!(lifted.body.get("max_active").is_none(), "{:?}", lifted.body);
    assert!(lifted.body.get("active").is_none(), "{:?}", lifted.body);

    for (body, field) in [
        (
            serde_json::json!({"name": "z", "route": "db", "kind": {"Latency": {"ms": 1}}, "max_active": 0}),
            "max_active",
        ),
        (
            serde_json::json!({"name": "z", "route": "db", "kind": {"Latency": {"ms": 1}}, "when": {"client": ["nope"]}}),
            "when.client",
        ),
        (
            serde_json::json!({"name": "z", "route": "db", "kind": {"Latency": {"ms": 1}}, "when": {"path": "/x"}}),
            "when",
        ),
    ] {
        let refused = api.post("/v1/faults", body.clone()).await;
        assert_eq!(refused.status, 400, "{body}: {:?}", refused.body);
        let named = refused.body["field"].as_str().unwrap_or_default();
        assert!(
            named.starts_with(field),
            "{body}: field {named:?} in {:?}",
            refused.body
        );
    }
    assert_eq!(
        api.patch("/v1/faults/capped", serde_json::json!({"max_active": 0}))
            .await
            .status,
        400
    );
}
