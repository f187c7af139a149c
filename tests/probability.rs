//! Probability is decided once per connection per fault, from the seed: a seeded run repeats
//! exactly, and the proportion matches the probability.

use crate::support;

use std::time::Duration;

use support::{route_with, spawn_seeded, upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Opens `n` connections one after another (so each gets the next connection index) and
/// returns, for each, whether the partition refused it.
async fn refused_pattern(seed: u64, n: usize) -> Vec<bool> {
    let faults = r#"(name: "flaky", route: "r", probability: 0.3, kind: Partition(mode: Refuse))"#;
    let sb = spawn_seeded(&route_with("r", upstream::echo().await, faults), seed).await;
    let addr = sb.addr("r").await;
    let mut pattern = Vec::with_capacity(n);
    for _ in 0..n {
        let mut client = TcpStream::connect(addr).await.expect("connect");
        // A refused connection is closed before or after our write lands; either way the
        // read sees the end instead of the echo.
        let _ = client.write_all(b"?").await;
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
            .await
            .expect("answer or close");
        pattern.push(!matches!(read, Ok(1)));
    }
    assert_eq!(
        sb.app.metrics().times_fired("flaky"),
        pattern.iter().filter(|r| **r).count() as u64
    );
    pattern
}

#[tokio::test]
async fn a_seeded_run_repeats_and_lands_near_the_probability() {
    let first = refused_pattern(1234, 1000).await;
    let refused = first.iter().filter(|r| **r).count();
    assert!(
        (240..=360).contains(&refused),
        "{refused} of 1000 refused at p=0.3"
    );

    let again = refused_pattern(1234, 1000).await;
    assert_eq!(first, again, "same seed, same choices");

    let other = refused_pattern(99, 1000).await;
    assert_ne!(first, other, "another seed, other choices");
}
