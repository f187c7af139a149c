//! The precise timer holds one entry per waiting connection, however many round trips it
//! makes: a connection under a far deadline (`CutAfter(1h)`) used to leave an entry behind
//! on every pass of its loop, each kept until the hour was up. The count is the process's, so
//! this is a test binary of its own: other tests' connections would be in it.

mod support;

use support::{route_with, spawn_switchboard, upstream};
use switchboard::proxy::timer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn round_trips_under_a_far_deadline_leave_no_timer_entries_behind() {
    let echo = upstream::echo().await;
    let sb = spawn_switchboard(&route_with(
        "r",
        echo,
        r#"(name: "later", route: "r", kind: CutAfter(ms: 3600000))"#,
    ))
    .await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        let client = TcpStream::connect(sb.addr("r").await)
            .await
            .expect("connect");
        client.set_nodelay(true).expect("nodelay");
        clients.push(client);
    }
    let mut back = [0u8; 8];
    for round in 0..5_000u64 {
        for client in &mut clients {
            client.write_all(&round.to_be_bytes()).await.expect("write");
            client.read_exact(&mut back).await.expect("read");
            assert_eq!(back, round.to_be_bytes());
        }
    }
    // 20,000 round trips: the four connections hold at most one entry each.
    let waiting = timer::waiting();
    assert!(
        waiting <= clients.len(),
        "{waiting} timer entries for {} connections",
        clients.len()
    );
    drop(clients);
    support::eventually(
        std::time::Duration::from_secs(5),
        "the closed connections' entries to go",
        || async { timer::waiting() == 0 },
    )
    .await;
}
