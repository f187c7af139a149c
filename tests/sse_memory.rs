//! `/v1/events` subscribers that never read cost a bounded amount of memory (issue 16: 200 of
//! them and 5,000 toggles took the process from 18 MB to 1.17 GB). In a file of its own: it
//! measures this process's resident memory, which other tests running beside it would move.

mod support;

use std::time::Duration;

use support::{route_with, spawn_switchboard};
use switchboard::app::FaultUpdate;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// This process's resident set size in bytes, from `/proc` (Linux). A failure to read it
/// fails the test: a memory check that reads 0 would always pass.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib * 1024
}

async fn subscribe(addr: std::net::SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    // A small receive window, so the server's writes stop early and events pile up there.
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let mut stream = socket.connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("request");
    let mut buf = [0u8; 512];
    let mut seen = String::new();
    while !seen.contains(": connected") {
        let n = stream.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_that_never_read_cost_bounded_memory_and_learn_they_lagged() {
    let sb = spawn_switchboard(&route_with(
        "r",
        "127.0.0.1:1".parse().expect("addr"),
        r#"(name: "flip", route: "r", enabled: false, kind: Latency(ms: 1))"#,
    ))
    .await;
    let addr = sb.control.local_addr();
    let mut subscribers = Vec::new();
    for _ in 0..200 {
        subscribers.push(subscribe(addr).await);
    }
    let before = rss();
    for i in 0..5000 {
        let update = FaultUpdate {
            enabled: Some(i % 2 == 0),
            // A long kind name makes every event bigger, as real ones are.
            ..FaultUpdate::default()
        };
        sb.app.update_fault("flip", update).await.expect("toggle");
    }
    // Let the subscriber tasks take what they can.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown = rss().saturating_sub(before);
    println!(
        "200 subscribers, 5000 toggles: resident memory grew by {:.1} MiB",
        grown as f64 / (1024.0 * 1024.0)
    );
    assert!(
        grown < 64 * 1024 * 1024,
        "resident memory grew by {grown} bytes for subscribers that do not read"
    );

    // One of them starts reading: it is told how much it missed.
    let mut reader = subscribers.pop().expect("one");
    let mut seen = String::new();
    let mut buf = vec![0u8; 64 * 1024];
    tokio::time::timeout(Duration::from_secs(10), async {
        while !seen.contains("event: lagged") {
            let n = reader.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed before a lagged event");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no lagged event; saw {} bytes", seen.len()));
    assert!(
        seen.contains(r#"data: {"skipped": "#),
        "{}",
        &seen[..seen.len().min(2000)]
    );
}
