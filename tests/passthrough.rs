//! With no fault enabled, bytes arrive unchanged, in order, both ways, half-close included.

use crate::support;

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::{route_with, spawn_switchboard, upstream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const MIB: usize = 1024 * 1024;

/// Writes `len` seeded random bytes in uneven chunks, then half-closes.
async fn write_stream(mut w: impl AsyncWrite + Unpin, seed: u64, len: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut chunk = vec![0u8; 256 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(1 + (rng.next_u32() as usize % chunk.len()));
        rng.fill_bytes(&mut chunk[..n]);
        w.write_all(&chunk[..n]).await.expect("write");
        left -= n;
    }
    w.shutdown().await.expect("half-close");
}

/// Reads to EOF, checking every byte against the stream `write_stream(seed, len)` sent.
async fn expect_stream(mut r: impl AsyncRead + Unpin, seed: u64, len: usize) {
    // Regenerate the sender's byte sequence: same RNG, same chunking draws.
    let mut rng = StdRng::seed_from_u64(seed);
    let mut expected = Vec::with_capacity(len);
    let mut chunk = vec![0u8; 256 * 1024];
    while expected.len() < len {
        let n = (len - expected.len()).min(1 + (rng.next_u32() as usize % chunk.len()));
        rng.fill_bytes(&mut chunk[..n]);
        expected.extend_from_slice(&chunk[..n]);
    }
    let mut got = Vec::with_capacity(len);
    r.read_to_end(&mut got).await.expect("read to EOF");
    assert_eq!(got.len(), len, "byte count");
    let first_bad = got.iter().zip(&expected).position(|(a, b)| a != b);
    assert_eq!(first_bad, None, "bytes differ");
}

#[tokio::test]
async fn sixty_four_mib_each_way_at_once() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let upstream = upstream::serve(move |mut s| {
        let tx = tx.clone();
        async move {
            let (r, w) = s.split();
            tokio::join!(expect_stream(r, 2, 64 * MIB), write_stream(w, 1, 64 * MIB));
            let _ = tx.send(());
        }
    })
    .await;
    let sb = spawn_switchboard(&route_with("bulk", upstream, "")).await;
    let mut client = TcpStream::connect(sb.addr("bulk").await)
        .await
        .expect("connect");
    let (r, w) = client.split();
    tokio::join!(expect_stream(r, 1, 64 * MIB), write_stream(w, 2, 64 * MIB));
    rx.recv().await.expect("upstream checked its bytes");
}

#[tokio::test]
async fn client_half_close_during_a_16_mib_echo_loses_nothing() {
    let sb = spawn_switchboard(&route_with("echo", upstream::echo().await, "")).await;
    let mut client = TcpStream::connect(sb.addr("echo").await)
        .await
        .expect("connect");
    let (r, w) = client.split();
    // The writer half-closes while most of the echo is still on its way back.
    tokio::join!(expect_stream(r, 3, 16 * MIB), write_stream(w, 3, 16 * MIB));
}

#[tokio::test]
async fn upstream_half_close_keeps_the_other_way_open() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let upstream = upstream::serve(move |mut s| {
        let tx = tx.clone();
        async move {
            // Say everything first and half-close, then keep listening.
            s.write_all(b"greeting").await.expect("greet");
            s.shutdown().await.expect("half-close");
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.expect("read");
            let _ = tx.send(got.len());
        }
    })
    .await;
    let sb = spawn_switchboard(&route_with("half", upstream, "")).await;
    let mut client = TcpStream::connect(sb.addr("half").await)
        .await
        .expect("connect");
    let mut greeting = Vec::new();
    client
        .read_to_end(&mut greeting)
        .await
        .expect("read greeting to EOF");
    assert_eq!(greeting, b"greeting");
    // The upstream closed its side; ours is still open and must deliver everything.
    client
        .write_all(&vec![7u8; 4 * MIB])
        .await
        .expect("write after peer's FIN");
    client.shutdown().await.expect("half-close");
    assert_eq!(rx.recv().await, Some(4 * MIB));
}

#[tokio::test]
async fn two_hundred_concurrent_connections() {
    let sb = spawn_switchboard(&route_with("echo", upstream::echo().await, "")).await;
    let addr = sb.addr("echo").await;
    let tasks: Vec<_> = (0..200u64)
        .map(|i| {
            tokio::spawn(async move {
                let mut client = TcpStream::connect(addr).await.expect("connect");
                let (r, w) = client.split();
                tokio::join!(
                    expect_stream(r, 100 + i, 64 * 1024),
                    write_stream(w, 100 + i, 64 * 1024)
                );
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("connection task");
    }
    let stats = sb.app.metrics().route("echo").snapshot();
    assert_eq!(stats.total, 200);
    assert_eq!(stats.bytes_upstream, 200 * 64 * 1024);
    support::eventually(Duration::from_secs(5), "all connections closed", || async {
        sb.app.metrics().route("echo").snapshot().open == 0
    })
    .await;
}

#[tokio::test]
async fn failed_upstream_dial_closes_the_client_and_is_counted() {
    // A socket bound but never listening: dials to its port are refused, and no other test
    // can take the port while it is held (a freed port could be reused meanwhile).
    let dead = tokio::net::TcpSocket::new_v4().expect("socket");
    dead.bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let dead_addr = dead.local_addr().expect("addr");
    let sb = spawn_switchboard(&route_with("dead", dead_addr, "")).await;
    let mut client = TcpStream::connect(sb.addr("dead").await)
        .await
        .expect("connect");
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
        .await
        .expect("the client is closed promptly");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert_eq!(sb.app.metrics().route("dead").snapshot().dial_errors, 1);
}
