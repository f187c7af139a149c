//! A real dependency behind the proxy: redis-server (installed by `.ci/run` from Debian's
//! packages), driven by the `redis` crate's client.

use crate::rd;
use crate::support;

use std::process::Command;
use std::time::{Duration, Instant};

use rd::*;
use support::spawn_switchboard;

/// TCP faults act on Redis traffic the same through a `Tcp` and a `Redis` route.
#[tokio::test]
async fn redis_through_a_tcp_route_degrades_and_recovers() {
    degrades_and_recovers("Tcp").await;
}

#[tokio::test]
async fn redis_through_a_redis_route_degrades_and_recovers() {
    degrades_and_recovers("Redis").await;
}

async fn degrades_and_recovers(protocol: &str) {
    let redis_server = start_redis().await;
    let upstream = redis_server.addr;
    let rules = |faults: &str| {
        format!(
            r#"(
  routes: [(name: "redis", protocol: {protocol}, listen: "127.0.0.1:0", upstream: "{upstream}")],
  faults: [{faults}],
)"#
        )
    };
    let sb = spawn_switchboard(&rules("")).await;
    let proxy = sb.addr("redis").await;

    // Pass-through: PING and a round trip of data.
    let mut con = blocking(move || connection(proxy))
        .await
        .expect("connect through proxy");
    let (mut con, pong) = blocking(move || {
        let r: redis::RedisResult<String> = redis::cmd("PING").query(&mut con);
        let _: () = redis::cmd("SET")
            .arg("k")
            .arg("v".repeat(100_000))
            .query(&mut con)
            .expect("SET");
        let v: String = redis::cmd("GET").arg("k").query(&mut con).expect("GET");
        assert_eq!(v.len(), 100_000);
        (con, r)
    })
    .await;
    assert_eq!(pong.expect("PING"), "PONG");

    // Latency: every command on the open connection takes at least 100 ms.
    sb.set_rules(&rules(
        r#"(name: "slow", route: "redis", kind: Latency(ms: 100))"#,
    ))
    .await;
    let (mut con, (result, took)) = blocking(move || {
        let r = timed_ping(&mut con);
        (con, r)
    })
    .await;
    assert_eq!(result.expect("PING while slow"), "PONG");
    assert!(took >= Duration::from_millis(100), "PING took {took:?}");

    // Partition by reset: the client gets an error, on its open connection and on new ones.
    sb.set_rules(&rules(
        r#"(name: "cut", route: "redis", kind: Partition(mode: Reset))"#,
    ))
    .await;
    let (result, _) = blocking(move || timed_ping(&mut con)).await;
    assert!(
        result.is_err(),
        "PING through a reset partition: {result:?}"
    );
    let fresh = blocking(move || ping(proxy)).await;
    assert!(
        fresh.is_err(),
        "a new connection during the partition: {fresh:?}"
    );

    // Lifted: a new connection works again.
    sb.set_rules(&rules("")).await;
    let recovered = blocking(move || ping(proxy)).await;
    assert_eq!(recovered.expect("PING after recovery"), "PONG");
}

/// A write refused as a read-only replica refuses it: the client cannot tell the fault from
/// a real `replicaof` replica, alone, pipelined and inside MULTI/EXEC.
#[tokio::test]
async fn an_error_fault_answers_as_a_read_only_replica_does() {
    let primary = start_redis().await;
    let replica = start_redis_with(&[
        "--replicaof".into(),
        "127.0.0.1".into(),
        primary.addr.port().to_string(),
    ])
    .await;
    let sb = spawn_switchboard(&redis_route(
        primary.addr,
        r#"(name: "read-only", route: "cache", when: (command: ["@write"]),
            kind: Error(message: "READONLY You can't write against a read only replica."))"#,
    ))
    .await;
    let proxy = sb.addr("cache").await;
    let commands = [
        "PING",
        "SET orders:1 a",
        "GET orders:1",
        "MULTI",
        "SET orders:1 b",
        "GET orders:1",
        "EXEC",
        "INCR n",
        "MULTI",
        "GET n",
        "EXEC",
        "ECHO done",
    ];
    let real = pipeline(replica.addr, &commands, commands.len()).await;
    let faked = pipeline(proxy, &commands, commands.len()).await;
    assert_eq!(text(&faked), text(&real));
    assert!(text(&real)[1].starts_with("-READONLY"), "{:?}", text(&real));

    // The primary never saw the refused writes, and its transaction state ended cleanly.
    let after = pipeline(primary.addr, &["EXISTS orders:1", "EXISTS n"], 2).await;
    assert_eq!(text(&after), [":0\r\n", ":0\r\n"]);
    let stats = support::api::Api::new(sb.control.local_addr(), None)
        .get("/v1/routes/cache")
        .await
        .body;
    // Three refused writes, and the EXECABORT that the flagged transaction's EXEC got here.
    assert_eq!(stats["commands"]["injected"], 4, "{stats}");
}

/// A matching command answered with a null, as a cache that lost its data answers, in RESP2
/// and RESP3, while other keys and commands pass.
#[tokio::test]
async fn a_nil_fault_is_a_cache_miss_in_both_protocols() {
    let server = start_redis().await;
    let sb = spawn_switchboard(&redis_route(
        server.addr,
        r#"(name: "miss", route: "cache", when: (command: ["GET"], key: "session:*"), kind: Nil())"#,
    ))
    .await;
    let proxy = sb.addr("cache").await;
    let replies = pipeline(
        proxy,
        &[
            "SET session:1 s",
            "SET other o",
            "GET session:1",
            "GET other",
        ],
        4,
    )
    .await;
    assert_eq!(
        text(&replies),
        ["+OK\r\n", "+OK\r\n", "$-1\r\n", "$1\r\no\r\n"]
    );

    let replies = pipeline(proxy, &["HELLO 3", "GET session:1", "GET other"], 3).await;
    assert!(replies[0].starts_with(b"%"), "{:?}", text(&replies));
    assert_eq!(text(&replies[1..]), ["_\r\n", "$1\r\no\r\n"]);
}

/// A delayed command holds back the replies after it, in order; the delay is what was asked.
#[tokio::test]
async fn a_delayed_command_keeps_pipelined_replies_in_order() {
    let server = start_redis().await;
    let sb = spawn_switchboard(&redis_route(
        server.addr,
        r#"(name: "slow", route: "cache", when: (command: ["INCR"]), kind: Delay(ms: 150))"#,
    ))
    .await;
    let proxy = sb.addr("cache").await;
    let mut commands = Vec::new();
    for i in 0..100 {
        commands.push(if i % 25 == 0 {
            "INCR n".to_string()
        } else {
            format!("ECHO {i}")
        });
    }
    let refs: Vec<&str> = commands.iter().map(String::as_str).collect();
    let start = Instant::now();
    let replies = pipeline(proxy, &refs, 100).await;
    let took = start.elapsed();
    let mut incr = 0;
    for (i, reply) in text(&replies).iter().enumerate() {
        if i % 25 == 0 {
            incr += 1;
            assert_eq!(reply, &format!(":{incr}\r\n"));
        } else {
            assert_eq!(reply, &format!("${}\r\n{i}\r\n", i.to_string().len()));
        }
    }
    // Four delayed commands: each waits its 150 ms after arriving, and all arrive together.
    assert!(took >= Duration::from_millis(150), "took {took:?}");
}

/// Bytes that are not RESP end that connection, are counted, and touch no other connection.
#[tokio::test]
async fn garbage_from_a_client_closes_only_its_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start_redis().await;
    let sb = spawn_switchboard(&redis_route(server.addr, "")).await;
    let proxy = sb.addr("cache").await;
    let mut bad = tokio::net::TcpStream::connect(proxy)
        .await
        .expect("connect");
    bad.write_all(b"*2\r\n$3\r\nGET\r\nxx\r\n")
        .await
        .expect("write");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), bad.read_to_end(&mut rest))
        .await
        .expect("closed within 10 s");
    assert!(read.is_err() || rest.is_empty(), "got {rest:?}");
    let replies = pipeline(proxy, &["PING"], 1).await;
    assert_eq!(text(&replies), ["+PONG\r\n"]);
    let stats = support::api::Api::new(sb.control.local_addr(), None)
        .get("/v1/routes/cache")
        .await
        .body;
    assert_eq!(stats["commands"]["protocol_errors"], 1, "{stats}");
}

/// A subscribed RESP2 connection gets its messages, and a fault does not answer for the
/// server there: replies no longer line up with commands.
#[tokio::test]
async fn a_subscribed_connection_gets_its_messages_and_no_injected_answers() {
    use tokio::io::AsyncWriteExt;
    let server = start_redis().await;
    let sb = spawn_switchboard(&redis_route(
        server.addr,
        r#"(name: "ping-fails", route: "cache", when: (command: ["PING"]),
            kind: Error(message: "ERR injected"))"#,
    ))
    .await;
    let proxy = sb.addr("cache").await;
    let mut sub = tokio::net::TcpStream::connect(proxy)
        .await
        .expect("connect");
    sub.write_all(b"SUBSCRIBE news\r\n").await.expect("write");
    let confirmed = read_replies(&mut sub, 1).await;
    assert_eq!(
        text(&confirmed),
        ["*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n"]
    );
    let published = pipeline(server.addr, &["PUBLISH news hello"], 1).await;
    assert_eq!(text(&published), [":1\r\n"]);
    sub.write_all(b"PING\r\n").await.expect("write");
    let got = read_replies(&mut sub, 2).await;
    assert_eq!(
        text(&got),
        [
            "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n",
            "*2\r\n$4\r\npong\r\n$0\r\n\r\n",
        ]
    );
    // The subscription ends when the server confirms it; from then on the fault answers
    // PING again. (A command sent before that confirmation passes untouched.)
    sub.write_all(b"UNSUBSCRIBE\r\n").await.expect("write");
    let got = read_replies(&mut sub, 1).await;
    assert_eq!(
        text(&got),
        ["*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:0\r\n"]
    );
    sub.write_all(b"PING\r\n").await.expect("write");
    let got = read_replies(&mut sub, 1).await;
    assert_eq!(text(&got), ["-ERR injected\r\n"]);
}

/// `Drop` closes the connection when the command's turn comes; the server never sees it.
#[tokio::test]
async fn a_drop_fault_closes_before_the_command_reaches_the_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start_redis().await;
    let sb = spawn_switchboard(&redis_route(
        server.addr,
        r#"(name: "gone", route: "cache", when: (command: ["DEL"]), kind: Drop())"#,
    ))
    .await;
    let proxy = sb.addr("cache").await;
    let mut client = tokio::net::TcpStream::connect(proxy)
        .await
        .expect("connect");
    client
        .write_all(b"SET a 1\r\nDEL a\r\nSET b 2\r\n")
        .await
        .expect("write");
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut got))
        .await
        .expect("closed within 10 s");
    assert_eq!(String::from_utf8_lossy(&got), "+OK\r\n");
    let left = pipeline(server.addr, &["EXISTS a", "EXISTS b"], 2).await;
    assert_eq!(text(&left), [":1\r\n", ":0\r\n"]);
}

/// redis-benchmark through the route with no fault, pipelined: every reply is right (the
/// tool stops at the first error or unexpected reply) and the route counts every command.
#[tokio::test]
async fn redis_benchmark_passes_without_errors() {
    let server = start_redis().await;
    let sb = spawn_switchboard(&redis_route(server.addr, "")).await;
    let proxy = sb.addr("cache").await;
    let out = blocking(move || {
        Command::new("redis-benchmark")
            .args(["-h", "127.0.0.1", "-p", &proxy.port().to_string()])
            .args(["-c", "20", "-n", "20000", "-P", "16", "-q"])
            .args(["-t", "ping,set,get,incr,lpush,rpop,sadd,hset,mset"])
            .output()
            .expect("redis-benchmark (Debian's redis-tools)")
    })
    .await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(!text.to_lowercase().contains("error"), "{text}");
    let info = sb.api().get("/v1/routes/cache").await.body;
    let commands = &info["commands"];
    // Ten tests of 20,000 requests (PING twice: inline and bulk), plus the tool's own
    // CONFIG GET calls.
    assert!(
        commands["commands"].as_u64().unwrap_or(0) >= 200_000,
        "{commands}"
    );
    assert_eq!(commands["errors"], 0, "{commands}");
    assert_eq!(commands["protocol_errors"], 0, "{commands}");
}
