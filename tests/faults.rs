//! Each fault kind, with its effect measured over real sockets.
//!
//! Lower bounds are exact (a fault must never do less than asked); upper bounds leave room
//! for a loaded CI machine while still catching a fault that does far more than asked.

use crate::support;

use std::io::ErrorKind;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use support::{route_with, spawn_switchboard, upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SLACK: Duration = Duration::from_millis(40);

async fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// Sends `msg` and reads the same number of bytes back; returns the time it took.
async fn round_trip(client: &mut TcpStream, msg: &[u8]) -> Duration {
    let start = Instant::now();
    client.write_all(msg).await.expect("write");
    let mut back = vec![0u8; msg.len()];
    client.read_exact(&mut back).await.expect("echo");
    assert_eq!(back, msg);
    start.elapsed()
}

/// Reads until EOF or error, with a deadline; returns the bytes, how it ended and when.
async fn read_until_end(
    client: &mut TcpStream,
    limit: Duration,
) -> (Vec<u8>, Result<(), ErrorKind>, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(limit, client.read(&mut buf)).await {
            Err(_) => panic!("connection still open after {limit:?}"),
            Ok(Ok(0)) => return (got, Ok(()), start.elapsed()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => return (got, Err(e.kind()), start.elapsed()),
        }
    }
}

/// Asserts nothing arrives for `quiet`.
async fn assert_silent(client: &mut TcpStream, quiet: Duration) {
    let mut buf = [0u8; 16];
    if let Ok(r) = tokio::time::timeout(quiet, client.read(&mut buf)).await {
        panic!("expected silence, got {r:?}");
    }
}

fn within(d: Duration, low: Duration, what: &str) {
    // Shown with --nocapture: the measured effect beside the one asked for.
    eprintln!("measured {what}: {d:?} (asked {low:?})");
    assert!(d >= low, "{what}: {d:?} is less than {low:?}");
    assert!(
        d < low + SLACK,
        "{what}: {d:?} is more than {low:?} + {SLACK:?}"
    );
}

#[tokio::test]
async fn latency_delays_each_chunk_by_the_amount_asked() {
    let faults = r#"(name: "slow", route: "r", kind: Latency(ms: 100))"#;
    let sb = spawn_switchboard(&route_with("r", upstream::echo().await, faults)).await;
    let mut client = connect(sb.addr("r").await).await;
    for _ in 0..3 {
        within(
            round_trip(&mut client, b"ping").await,
            Duration::from_millis(100),
            "round trip",
        );
    }
}

#[tokio::test]
async fn latency_is_measured_from_arrival_so_queued_chunks_do_not_wait_twice() {
    let faults = r#"(name: "slow", route: "r", direction: Upstream, kind: Latency(ms: 100))"#;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let upstream = upstream::serve(move |mut s| {
        let tx = tx.clone();
        async move {
            let mut buf = [0u8; 64];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let _ = tx.send(Instant::now());
            }
        }
    })
    .await;
    let sb = spawn_switchboard(&route_with("r", upstream, faults)).await;
    let mut client = connect(sb.addr("r").await).await;
    let mut sent = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    for _ in 0..10 {
        ticker.tick().await;
        sent.push(Instant::now());
        client.write_all(b"x").await.expect("write");
    }
    for at in sent {
        let arrived = rx.recv().await.expect("chunk arrives");
        within(arrived - at, Duration::from_millis(100), "chunk delay");
    }
}

#[tokio::test]
async fn latency_jitter_stays_within_its_band() {
    let faults =
        r#"(name: "slow", route: "r", direction: Both, kind: Latency(ms: 40, jitter_ms: 20))"#;
    let sb = spawn_switchboard(&route_with("r", upstream::echo().await, faults)).await;
    let mut client = connect(sb.addr("r").await).await;
    for _ in 0..10 {
        let rtt = round_trip(&mut client, b"j").await;
        // Two legs, each 20..=60 ms.
        assert!(rtt >= Duration::from_millis(40), "{rtt:?}");
        assert!(rtt < Duration::from_millis(120) + SLACK, "{rtt:?}");
    }
}

#[tokio::test]
async fn bandwidth_caps_the_rate_within_ten_percent() {
    let faults = r#"(name: "thin", route: "r", kind: Bandwidth(bytes_per_sec: 1000000))"#;
    let payload = vec![1u8; 1_000_000];
    let sb = spawn_switchboard(&route_with("r", upstream::sender(payload).await, faults)).await;
    let mut client = connect(sb.addr("r").await).await;
    let (got, end, took) = read_until_end(&mut client, Duration::from_secs(5)).await;
    assert_eq!(end, Ok(()));
    assert_eq!(got.len(), 1_000_000);
    let rate = got.len() as f64 / took.as_secs_f64();
    eprintln!("measured bandwidth: {rate:.0} B/s (asked 1000000)");
    assert!(
        (900_000.0..=1_100_000.0).contains(&rate),
        "{rate:.0} B/s over {took:?}"
    );
}

#[tokio::test]
async fn slow_close_holds_the_close() {
    let faults = r#"(name: "lingering", route: "r", kind: SlowClose(ms: 300))"#;
    let sb = spawn_switchboard(&route_with(
        "r",
        upstream::sender(b"bye".to_vec()).await,
        faults,
    ))
    .await;
    let mut client = connect(sb.addr("r").await).await;
    let mut first = [0u8; 3];
    client
        .read_exact(&mut first)
        .await
        .expect("data comes at once");
    let (rest, end, took) = read_until_end(&mut client, Duration::from_secs(5)).await;
    assert!(rest.is_empty());
    assert_eq!(end, Ok(()));
    within(
        took,
        Duration::from_millis(300) - Duration::from_millis(5),
        "close delay",
    );
}

#[tokio::test]
async fn timeout_drops_data_then_closes() {
    let faults = r#"(name: "stall", route: "r", kind: Timeout(ms: 300))"#;
    let sb = spawn_switchboard(&route_with("r", upstream::echo().await, faults)).await;
    let mut client = connect(sb.addr("r").await).await;
    client.write_all(b"hello?").await.expect("write");
    let (got, end, took) = read_until_end(&mut client, Duration::from_secs(5)).await;
    assert!(got.is_empty(), "the echo was dropped");
    assert_eq!(end, Ok(()), "closed, not reset");
    within(
        took,
        Duration::from_millis(300) - Duration::from_millis(5),
        "close after",
    );
}

#[tokio::test]
async fn timeout_zero_holds_forever() {
    let faults = r#"(name: "hole", route: "r", kind: Timeout(ms: 0))"#;
    let sb = spawn_switchboard(&route_with("r", upstream::echo().await, faults)).await;
    let mut client = connect(sb.addr("r").await).await;
    client.write_all(b"anyone?").await.expect("write");
    assert_silent(&mut client, Duration::from_millis(500)).await;
}

#[tokio::test]
async fn reset_peer_is_seen_as_connection_reset() {
    let faults = r#"(name: "rst", route: "r", kind: ResetPeer(after_ms: 150))"#;
    let sb = spawn_switchboard(&route_with("r", upstream::echo().await, faults)).await;
    let mut client = connect(sb.addr("r").await).await;
    round_trip(&mut client, b"still fine").await;
    let (_, end, took) = read_until_end(&mut client, Duration::from_secs(5)).await;
    assert_eq!(end, Err(ErrorKind::ConnectionReset));
    assert!(took < Duration::from_millis(150) + SLACK, "{took:?}");
}

#[tokio::test]
async fn slicer_splits_data_into_small_pieces() {
    let faults = r#"(name: "slices", route: "r", kind: Slicer(avg_bytes: 10, variation_bytes: 5, delay_us: 3000))"#;
    let payload: Vec<u8> = (0..200u8).collect();
    let sb = spawn_switchboard(&route_with(
        "r",
        upstream::sender(payload.clone()).await,
        faults,
    ))
    .await;
    let mut client = connect(sb.addr("r").await).await;
    let start = Instant::now();
    let mut got = Vec::new();
    let mut reads = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = client.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        reads.push(n);
    }
    let took = start.elapsed();
    eprintln!(
        "measured Slicer: 200 bytes in {} reads {reads:?} over {took:?}",
        reads.len()
    );
    assert_eq!(got, payload);
    // The promise is at the sender: pieces of at most 15 bytes, 3 ms apart, so 200 bytes
    // take at least 14 pieces and 13 gaps. A reader scheduled late may find two pieces in
    // its socket at once, so read sizes alone prove nothing; the time they took does.
    assert!(took >= Duration::from_millis(13 * 3), "{took:?}");
    // And most reads do see single pieces (all of them on an idle machine).
    let mut sorted = reads.clone();
    sorted.sort_unstable();
    assert!(sorted[sorted.len() / 2] <= 15, "median read of {reads:?}");
}

#[tokio::test]
async fn limit_data_delivers_exactly_the_limit_then_closes() {
    let faults = r#"(name: "cap", route: "r", kind: LimitData(bytes: 1000))"#;
    let sb = spawn_switchboard(&route_with(
        "r",
        upstream::sender(vec![9u8; 5000]).await,
        faults,
    ))
    .await;
    let mut client = connect(sb.addr("r").await).await;
    let (got, end, _) = read_until_end(&mut client, Duration::from_secs(5)).await;
    assert_eq!(got, vec![9u8; 1000]);
    assert_eq!(end, Ok(()), "closed, not reset");
}

#[tokio::test]
async fn partition_refuse_closes_new_connections_at_once() {
    let (echo, accepted) = upstream::counting_echo().await;
    let faults = r#"(name: "gone", route: "r", kind: Partition(mode: Refuse))"#;
    let sb = spawn_switchboard(&route_with("r", echo, faults)).await;
    let mut client = connect(sb.addr("r").await).await;
    let (got, end, _) = read_until_end(&mut client, Duration::from_secs(2)).await;
    assert!(got.is_empty());
    assert_eq!(end, Ok(()), "closed, not reset");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "the upstream was never dialed"
    );
}

#[tokio::test]
async fn partition_reset_resets_new_connections() {
    let faults = r#"(name: "gone", route: "r", kind: Partition(mode: Reset))"#;
    let sb = spawn_switchboard(&route_with("r", upstream::echo().await, faults)).await;
    let mut client = connect(sb.addr("r").await).await;
    let (_, end, _) = read_until_end(&mut client, Duration::from_secs(2)).await;
    assert_eq!(end, Err(ErrorKind::ConnectionReset));
}

#[tokio::test]
async fn partition_blackhole_holds_connections_silently_and_loses_nothing() {
    let (echo, accepted) = upstream::counting_echo().await;
    let route = |enabled: bool| {
        route_with(
            "r",
            echo,
            &format!(
                r#"(name: "gone", route: "r", enabled: {enabled}, kind: Partition(mode: Blackhole))"#
            ),
        )
    };
    let sb = spawn_switchboard(&route(true)).await;
    let mut client = connect(sb.addr("r").await).await;
    client.write_all(b"held").await.expect("write is accepted");
    assert_silent(&mut client, Duration::from_millis(300)).await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "the upstream was never dialed"
    );

    sb.set_rules(&route(false)).await;
    let mut back = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(2), client.read_exact(&mut back))
        .await
        .expect("held bytes flow once the partition lifts")
        .expect("read");
    assert_eq!(&back, b"held");
}

#[tokio::test]
async fn connect_delay_delays_the_dial() {
    let (echo, accepted) = upstream::counting_echo().await;
    let faults = r#"(name: "slow-dial", route: "r", kind: ConnectDelay(ms: 200))"#;
    let sb = spawn_switchboard(&route_with("r", echo, faults)).await;
    let start = Instant::now();
    let mut client = connect(sb.addr("r").await).await;
    round_trip(&mut client, b"hi").await;
    within(
        start.elapsed(),
        Duration::from_millis(200),
        "first round trip",
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    within(
        round_trip(&mut client, b"again").await,
        Duration::ZERO,
        "later round trips",
    );
}

#[tokio::test]
async fn cut_after_closes_the_connection_on_time() {
    let faults = r#"(name: "cut", route: "r", kind: CutAfter(ms: 250))"#;
    let sb = spawn_switchboard(&route_with("r", upstream::echo().await, faults)).await;
    let start = Instant::now();
    let mut client = connect(sb.addr("r").await).await;
    round_trip(&mut client, b"fine for now").await;
    let (_, end, _) = read_until_end(&mut client, Duration::from_secs(5)).await;
    assert_eq!(end, Ok(()));
    within(
        start.elapsed(),
        Duration::from_millis(250) - Duration::from_millis(5),
        "lifetime",
    );
}

#[tokio::test]
async fn faults_on_other_directions_and_disabled_faults_do_nothing() {
    let faults = r#"
        (name: "up-only", route: "r", direction: Upstream, kind: LimitData(bytes: 0)),
        (name: "off", route: "r", enabled: false, kind: Partition(mode: Reset)),
        (name: "never", route: "r", probability: 0.0, kind: Partition(mode: Reset)),
    "#;
    let sb = spawn_switchboard(&route_with(
        "r",
        upstream::sender(b"downstream data".to_vec()).await,
        faults,
    ))
    .await;
    let mut client = connect(sb.addr("r").await).await;
    let (got, end, _) = read_until_end(&mut client, Duration::from_secs(2)).await;
    assert_eq!(end, Ok(()));
    assert_eq!(got, b"downstream data");
}
