//! Changing the rules reaches connections that are already open, at their next chunk or,
//! for faults that end a connection, at once even when idle.

use crate::support;

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

/// Bulk flows move by splice(2) while nothing shapes them; a fault switched on in the middle
/// must take hold at once, and no byte may be lost or reordered across the switch either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_switched_on_in_the_middle_of_a_bulk_transfer_takes_hold_and_loses_nothing() {
    const TOTAL: usize = 64 << 20;
    let echo = upstream::echo().await;
    let rules = |enabled: bool| {
        route_with(
            "r",
            echo,
            &format!(
                r#"(name: "thin", route: "r", enabled: {enabled}, kind: Bandwidth(bytes_per_sec: 20000000))"#
            ),
        )
    };
    let sb = spawn_switchboard(&rules(false)).await;
    let client = TcpStream::connect(sb.addr("r").await)
        .await
        .expect("connect");
    let (mut reader, mut writer) = client.into_split();
    // 1 MiB chunks of a pattern that does not line up with the chunk size.
    let pattern = |i: usize| ((i % (1 << 20)) % 251) as u8;
    let sender = tokio::spawn(async move {
        let chunk: Vec<u8> = (0..1 << 20).map(pattern).collect();
        for _ in 0..TOTAL >> 20 {
            writer.write_all(&chunk).await.expect("write");
        }
        writer.shutdown().await.expect("half-close");
    });
    let mut received = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    let mut read_until = async |until: usize, received: &mut usize| {
        while *received < until {
            let n = reader.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed early at {received}");
            for (i, b) in buf[..n].iter().enumerate() {
                assert_eq!(*b, pattern(*received + i), "byte {} differs", *received + i);
            }
            *received += n;
        }
    };
    // Fast and untouched first.
    read_until(16 << 20, &mut received).await;
    // Throttled to 20 MB/s. What the kernel's socket buffers already hold (several MiB on
    // loopback) still arrives at full speed, so the rate is taken after 8 MiB more.
    sb.set_rules(&rules(true)).await;
    read_until(received + (8 << 20), &mut received).await;
    let throttled_from = received;
    let started = Instant::now();
    read_until(throttled_from + (8 << 20), &mut received).await;
    let rate = (received - throttled_from) as f64 / started.elapsed().as_secs_f64();
    assert!(rate < 30_000_000.0, "{rate:.0} B/s with a 20 MB/s limit on");
    // Lifted: the rest, all of it, in order.
    sb.set_rules(&rules(false)).await;
    read_until(TOTAL, &mut received).await;
    let mut rest = [0u8; 1];
    assert_eq!(reader.read(&mut rest).await.expect("eof"), 0);
    sender.await.expect("sender");
}

#[tokio::test]
async fn a_lifted_connect_delay_releases_the_dials_it_holds() {
    let echo = upstream::echo().await;
    let rules = |enabled: bool| {
        route_with(
            "r",
            echo,
            &format!(
                r#"(name: "slow-dial", route: "r", enabled: {enabled}, kind: ConnectDelay(ms: 60000))"#
            ),
        )
    };
    let sb = spawn_switchboard(&rules(true)).await;
    let mut client = TcpStream::connect(sb.addr("r").await)
        .await
        .expect("connect");
    client.write_all(b"held").await.expect("write");
    // The dial waits on the delay; lifting it lets the dial go at once, not a minute later.
    sb.set_rules(&rules(false)).await;
    let mut back = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut back))
        .await
        .expect("the echo within 5 s of the lift")
        .expect("read");
    assert_eq!(&back, b"held");
}

#[tokio::test]
async fn a_stop_ends_dials_held_by_a_connect_delay() {
    let echo = upstream::echo().await;
    let sb = spawn_switchboard(&route_with(
        "r",
        echo,
        r#"(name: "slow-dial", route: "r", kind: ConnectDelay(ms: 60000))"#,
    ))
    .await;
    let mut client = TcpStream::connect(sb.addr("r").await)
        .await
        .expect("connect");
    support::eventually(
        Duration::from_secs(5),
        "the connection to be held",
        || async { sb.app.metrics().route("r").snapshot().open == 1 },
    )
    .await;
    let started = Instant::now();
    // With a 30 s grace period, a held dial that ignored the stop would keep it waiting.
    let reset = sb.app.shutdown(Duration::from_secs(30)).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        reset, 0,
        "it ended on its own, not reset when the grace ran out"
    );
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut byte))
        .await
        .expect("the client is let go");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert_eq!(sb.app.metrics().route("r").snapshot().failed, 1);
}
