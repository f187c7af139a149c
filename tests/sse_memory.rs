//! `/v1/events` subscribers that never read cost a bounded amount of memory (issue 16: 200 of
//! them and 5,000 toggles took the process from 18 MB to 1.17 GB). In a file of its own: it
//! measures this process's resident memory, which other tests running beside it would move.

use crate::support;

use std::time::Duration;

use support::{route_with, scratch_dir, spawn_in_dir};
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

/// A rules file with `n` faults that each name a missing route: every reload of it is
/// rejected with `n` problems, one event of tens of KiB.
fn broken_rules(n: usize) -> String {
    let faults: Vec<String> = (0..n)
        .map(|i| format!(r#"(name: "fault-{i:04}", route: "missing", kind: Latency(ms: 1))"#))
        .collect();
    format!("(routes: [], faults: [{}])", faults.join(",\n"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_that_never_read_cost_bounded_memory_and_learn_they_lagged() {
    let dir = scratch_dir("sse-memory");
    std::fs::write(
        dir.join("rules.ron"),
        route_with(
            "r",
            "127.0.0.1:1".parse().expect("addr"),
            r#"(name: "flip", route: "r", enabled: false, kind: Latency(ms: 1))"#,
        ),
    )
    .expect("write");
    let sb = spawn_in_dir(&dir).await;
    let addr = sb.control.local_addr();
    let mut subscribers = Vec::new();
    for _ in 0..50 {
        subscribers.push(subscribe(addr).await);
    }
    let before = rss();
    // 400 rejected reloads of ~25 KiB each: 10 MiB per subscriber, more than the kernel
    // buffers of its socket take, so anything queued beyond that is the server's memory.
    std::fs::write(dir.join("broken.ron"), broken_rules(200)).expect("write");
    for _ in 0..400 {
        assert!(
            sb.app.reload().await.is_err(),
            "the broken file is rejected"
        );
        tokio::task::yield_now().await;
    }
    // A window for whatever would move the events into memory (the old design's forwarding
    // tasks did) to do so before measuring; nothing is waited on.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown = rss().saturating_sub(before);
    println!(
        "50 subscribers that do not read, 400 events of ~25 KiB: resident memory grew by {:.1} MiB",
        grown as f64 / (1024.0 * 1024.0)
    );
    assert!(
        grown < 64 * 1024 * 1024,
        "resident memory grew by {grown} bytes for subscribers that do not read"
    );

    // Past the bus's ring (1024 events), one that starts reading is told how much it missed.
    std::fs::remove_file(dir.join("broken.ron")).expect("rm");
    assert!(sb.app.reload().await.is_ok());
    for i in 0..1100 {
        let update = FaultUpdate {
            enabled: Some(i % 2 == 0),
            ..FaultUpdate::default()
        };
        sb.app.update_fault("flip", update).await.expect("toggle");
    }
    let mut reader = subscribers.pop().expect("one");
    let mut seen = String::new();
    let mut buf = vec![0u8; 64 * 1024];
    tokio::time::timeout(Duration::from_secs(20), async {
        while !seen.contains("event: lagged") {
            let n = reader.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed before a lagged event");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no lagged event; saw {} bytes", seen.len()));
    let lagged = &seen[seen.find("event: lagged").unwrap_or(0)..];
    assert!(
        lagged.contains(r#"data: {"skipped": "#),
        "{}",
        &lagged[..lagged.len().min(200)]
    );
}
