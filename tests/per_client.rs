//! `when: (client: [...])`: a fault aimed at one client address (or network) acts on that
//! client's connections, requests and commands only, on every kind of route. Two clients
//! connect from 127.0.0.1 and 127.0.0.2 (both loopback on Linux) through the same route.

use crate::pg;
use crate::rd;
use crate::support;

use std::time::{Duration, Instant};

use support::from::{connect_from, get_from};
use support::{http_upstream, route_with, spawn_switchboard, upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One 64-byte round trip on a fresh connection from `source`, timed.
async fn round_trip_from(source: &str, to: std::net::SocketAddr) -> Duration {
    let mut stream = connect_from(source, to).await;
    let started = Instant::now();
    stream.write_all(&[7u8; 64]).await.expect("write");
    let mut back = [0u8; 64];
    stream.read_exact(&mut back).await.expect("echo");
    started.elapsed()
}

#[tokio::test]
async fn a_tcp_fault_aimed_at_one_client_leaves_the_other_alone() {
    let faults = r#"(name: "slow-for-two", route: "db", kind: Latency(ms: 300),
                     when: (client: ["127.0.0.2"]))"#;
    let sb = spawn_switchboard(&route_with("db", upstream::echo().await, faults)).await;
    let addr = sb.addr("db").await;
    for _ in 0..3 {
        let aimed = round_trip_from("127.0.0.2", addr).await;
        let other = round_trip_from("127.0.0.1", addr).await;
        assert!(
            aimed >= Duration::from_millis(300),
            "127.0.0.2 is aimed at: {aimed:?}"
        );
        assert!(
            other < Duration::from_millis(150),
            "127.0.0.1 is not: {other:?}"
        );
    }
    assert_eq!(sb.app.metrics().times_fired("slow-for-two"), 3);
}

#[tokio::test]
async fn a_network_matches_every_address_in_it() {
    let faults = r#"(name: "cut-net", route: "db", kind: Partition(mode: Refuse),
                     when: (client: ["127.0.0.0/30"]))"#;
    let sb = spawn_switchboard(&route_with("db", upstream::echo().await, faults)).await;
    let addr = sb.addr("db").await;
    for (source, refused) in [
        ("127.0.0.2", true),
        ("127.0.0.3", true),
        ("127.0.0.4", false),
    ] {
        let mut stream = connect_from(source, addr).await;
        let _ = stream.write_all(b"ping").await;
        let mut back = [0u8; 4];
        let got = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut back))
            .await
            .expect("an answer or a close");
        let answered = matches!(got, Ok(4));
        assert_eq!(!answered, refused, "{source}: {got:?}");
    }
}

#[tokio::test]
async fn an_http_fault_aimed_at_one_client_answers_only_it() {
    let upstream = http_upstream::start().await;
    let rules = format!(
        r#"(
  routes: [(name: "api", protocol: Http, listen: "127.0.0.1:0", upstream: "{}")],
  faults: [(name: "down-for-two", route: "api", kind: Abort(status: 503),
            when: (client: ["127.0.0.2"], path: "/orders/*"))],
)"#,
        upstream.url()
    );
    let sb = spawn_switchboard(&rules).await;
    let addr = sb.addr("api").await;
    let aimed = get_from("127.0.0.2", addr, "/orders/7", &[]).await;
    let other = get_from("127.0.0.1", addr, "/orders/7", &[]).await;
    let elsewhere = get_from("127.0.0.2", addr, "/catalog", &[]).await;
    assert_eq!(aimed.status, Some(503), "{aimed:?}");
    assert_eq!(other.status, Some(200), "{other:?}");
    assert_eq!(
        elsewhere.status,
        Some(200),
        "the path must match too: {elsewhere:?}"
    );
    assert_eq!(
        upstream.seen(),
        2,
        "the aimed request never reached the upstream"
    );
}

#[tokio::test]
async fn a_redis_command_fault_aimed_at_one_client() {
    let server = rd::start_redis().await;
    let faults = r#"(name: "miss-for-two", route: "cache", kind: Nil(),
                     when: (client: ["127.0.0.2"], command: ["GET"]))"#;
    let sb = spawn_switchboard(&rd::redis_route(server.addr, faults)).await;
    let addr = sb.addr("cache").await;
    let mut setter = connect_from("127.0.0.1", addr).await;
    setter.write_all(b"SET k v\r\n").await.expect("set");
    assert_eq!(
        rd::text(&rd::read_replies(&mut setter, 1).await),
        ["+OK\r\n"]
    );
    for (source, want) in [("127.0.0.2", "$-1\r\n"), ("127.0.0.1", "$1\r\nv\r\n")] {
        let mut client = connect_from(source, addr).await;
        client.write_all(b"GET k\r\n").await.expect("get");
        let replies = rd::read_replies(&mut client, 1).await;
        assert_eq!(rd::text(&replies), [want], "GET from {source}");
    }
}

#[tokio::test]
async fn a_sql_fault_aimed_at_one_client() {
    let server = pg::PgServer::start("per-client").await;
    let fault = r#"(name: "read-only-for-two", route: "orders-db", when: (client: ["127.0.0.2"], statement: ["@write"]),
        kind: SqlError(code: "25006", message: "cannot execute {statement} in a read-only transaction"))"#;
    let sb = spawn_switchboard(&pg::pg_route(server.addr, fault)).await;
    let addr = sb.addr("orders-db").await;
    let insert = "INSERT INTO orders (item) VALUES ('x')";
    let mut aimed = pg::Raw::over(connect_from("127.0.0.2", addr).await, "shop")
        .await
        .expect("startup from 127.0.0.2");
    let mut other = pg::Raw::over(connect_from("127.0.0.1", addr).await, "shop")
        .await
        .expect("startup from 127.0.0.1");
    let refused = aimed.query(insert).await.expect("answer");
    assert!(
        refused
            .iter()
            .any(|m| matches!(m, pg::Seen::Error(_, code, _) if code == "25006")),
        "{refused:?}"
    );
    let done = other.query(insert).await.expect("answer");
    assert!(
        done.contains(&pg::Seen::Complete("INSERT 0 1".into())),
        "{done:?}"
    );
    let read = aimed
        .query("SELECT count(*) FROM orders")
        .await
        .expect("answer");
    assert!(
        !read.iter().any(|m| matches!(m, pg::Seen::Error(..))),
        "reads pass for the aimed client: {read:?}"
    );
}

#[tokio::test]
async fn client_conditions_are_checked_where_the_fault_is_decided() {
    let table = [
        (
            r#"(routes: [(name: "t", protocol: Tcp, listen: "127.0.0.1:1", upstream: "h:1")],
                faults: [(name: "f", route: "t", when: (client: ["10.1.2.3/16"]), kind: Latency(ms: 5))])"#,
            "has host bits set below /16; the network is 10.1.0.0/16",
        ),
        (
            r#"(routes: [(name: "t", protocol: Tcp, listen: "127.0.0.1:1", upstream: "h:1")],
                faults: [(name: "f", route: "t", when: (client: ["db.internal"]), kind: Latency(ms: 5))])"#,
            "is not an IP address or CIDR network",
        ),
        (
            r#"(routes: [(name: "r", protocol: Redis, listen: "127.0.0.1:1", upstream: "h:1")],
                faults: [(name: "f", route: "r", when: (command: ["GET"]), kind: Latency(ms: 5))])"#,
            "Latency acts on whole connections of route \"r\", so its when takes only client",
        ),
        (
            r#"(routes: [(name: "w", protocol: Http, listen: "127.0.0.1:1", upstream: "http://h:1")],
                faults: [(name: "f", route: "w", when: (client: ["127.0.0.2"]), kind: ConnectDelay(ms: 5))])"#,
            "acts on the upstream's pooled dials",
        ),
    ];
    for (text, needle) in table {
        support::assert_rejected(text, needle);
    }
    // What is valid: client on a Tcp route, beside other conditions on the others.
    let ok = r#"(routes: [(name: "t", protocol: Tcp, listen: "127.0.0.1:1", upstream: "h:1"),
                          (name: "p", protocol: Postgres, listen: "127.0.0.1:2", upstream: "h:1")],
                 faults: [(name: "f", route: "t", when: (client: ["::1", "10.0.0.0/8"]), kind: Latency(ms: 5)),
                          (name: "g", route: "p", when: (client: ["127.0.0.2"], statement: ["@write"]), kind: Drop())])"#;
    switchboard::rules::load_texts(&[("ok.ron".into(), ok.to_string())], Default::default())
        .expect("valid");
}
