//! Changing the rules reaches connections that are already open, at their next chunk or,
//! for faults that end a connection, at once even when idle.

mod support;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use support::{route_with, spawn_switchboard, upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn echo_once(client: &mut TcpStream, msg: &[u8]) -> Duration {
    let start = Instant::now();
    client.write_all(msg).await.expect("write");
    let mut back = vec![0u8; msg.len()];
    client.read_exact(&mut back).await.expect("read");
    assert_eq!(back, msg);
    start.elapsed()
}

#[tokio::test]
async fn a_fault_enabled_on_an_open_connection_takes_effect() {
    let echo = upstream::echo().await;
    let rules = |enabled: bool| {
        route_with(
            "r",
            echo,
            &format!(r#"(name: "slow", route: "r", enabled: {enabled}, kind: Latency(ms: 150))"#),
        )
    };
    let sb = spawn_switchboard(&rules(false)).await;
    let mut client = TcpStream::connect(sb.addr("r").await)
        .await
        .expect("connect");
    client.set_nodelay(true).expect("nodelay");
    assert!(echo_once(&mut client, b"a").await < Duration::from_millis(100));

    sb.set_rules(&rules(true)).await;
    assert!(echo_once(&mut client, b"b").await >= Duration::from_millis(150));

    sb.set_rules(&rules(false)).await;
    assert!(echo_once(&mut client, b"c").await < Duration::from_millis(100));
}

#[tokio::test]
async fn an_idle_open_connection_gets_a_new_reset_promptly() {
    let echo = upstream::echo().await;
    let sb = spawn_switchboard(&route_with("r", echo, "")).await;
    let mut client = TcpStream::connect(sb.addr("r").await)
        .await
        .expect("connect");
    echo_once(&mut client, b"open").await;

    let enabled_at = Instant::now();
    sb.set_rules(&route_with(
        "r",
        echo,
        r#"(name: "cut", route: "r", kind: Partition(mode: Reset))"#,
    ))
    .await;
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(2), client.read(&mut buf))
        .await
        .expect("the idle connection is reset without sending anything");
    assert_eq!(read.map_err(|e| e.kind()), Err(ErrorKind::ConnectionReset));
    // Notification, not polling: well under any polling interval one would choose.
    assert!(
        enabled_at.elapsed() < Duration::from_millis(100),
        "{:?}",
        enabled_at.elapsed()
    );
}

fn two_routes(echo: std::net::SocketAddr, faults: &str) -> String {
    format!(
        r#"(
  routes: [
    (name: "a", protocol: Tcp, listen: "127.0.0.1:0", upstream: "{echo}"),
    (name: "b", protocol: Tcp, listen: "127.0.0.1:0", upstream: "{echo}"),
  ],
  faults: [{faults}],
)"#
    )
}

#[tokio::test]
async fn an_idle_open_connection_gets_a_new_timeout_and_blackhole() {
    let echo = upstream::echo().await;
    let sb = spawn_switchboard(&two_routes(echo, "")).await;
    let mut timed = TcpStream::connect(sb.addr("a").await)
        .await
        .expect("connect");
    let mut holed = TcpStream::connect(sb.addr("b").await)
        .await
        .expect("connect");
    echo_once(&mut timed, b"x").await;
    echo_once(&mut holed, b"y").await;

    sb.set_rules(&two_routes(
        echo,
        r#"(name: "stall", route: "a", kind: Timeout(ms: 100)),
           (name: "hole", route: "b", kind: Partition(mode: Blackhole))"#,
    ))
    .await;
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(2), timed.read(&mut buf))
        .await
        .expect("closed by the timeout");
    assert_eq!(read.expect("clean close"), 0);

    holed.write_all(b"held").await.expect("write");
    let silent = tokio::time::timeout(Duration::from_millis(300), holed.read(&mut buf)).await;
    assert!(
        silent.is_err(),
        "nothing may come back while blackholed: {silent:?}"
    );
}

#[tokio::test]
async fn removing_a_latency_fault_delivers_held_bytes_in_order() {
    let echo = upstream::echo().await;
    let slow = route_with(
        "r",
        echo,
        r#"(name: "slow", route: "r", direction: Both, kind: Latency(ms: 5000))"#,
    );
    let sb = spawn_switchboard(&slow).await;
    let mut client = TcpStream::connect(sb.addr("r").await)
        .await
        .expect("connect");
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    for piece in payload.chunks(1000) {
        client.write_all(piece).await.expect("write");
    }
    // Everything is held inside the proxy; lifting the fault must release all of it.
    let mut first = [0u8; 1];
    let held = tokio::time::timeout(Duration::from_millis(300), client.read(&mut first)).await;
    assert!(
        held.is_err(),
        "nothing comes back while the latency holds: {held:?}"
    );
    sb.set_rules(&route_with("r", echo, "")).await;
    let mut back = vec![0u8; payload.len()];
    tokio::time::timeout(Duration::from_secs(3), client.read_exact(&mut back))
        .await
        .expect("held bytes are released at once")
        .expect("read");
    assert_eq!(back, payload);
}

#[tokio::test]
async fn connections_keep_their_probability_decision_across_changes() {
    let echo = upstream::echo().await;
    let fault = |ms: u64| {
        route_with(
            "r",
            echo,
            &format!(r#"(name: "maybe", route: "r", probability: 0.5, kind: Latency(ms: {ms}))"#),
        )
    };
    let sb = spawn_switchboard(&fault(100)).await;
    let mut clients = Vec::new();
    for _ in 0..8 {
        let c = TcpStream::connect(sb.addr("r").await)
            .await
            .expect("connect");
        c.set_nodelay(true).expect("nodelay");
        clients.push(c);
    }
    let mut before = Vec::new();
    for c in clients.iter_mut() {
        before.push(echo_once(c, b"?").await >= Duration::from_millis(100));
    }
    assert!(
        before.contains(&true) && before.contains(&false),
        "{before:?}"
    );
    sb.set_rules(&fault(120)).await;
    for (c, was_slow) in clients.iter_mut().zip(before) {
        let slow = echo_once(c, b"?").await >= Duration::from_millis(120);
        assert_eq!(slow, was_slow, "a connection changed its draw");
    }
}
