//! Udp routes over real sockets: datagrams pass exactly, each client gets its own answers,
//! and faults act on single datagrams: loss drawn per datagram from the seed, duplicates,
//! reordering, latency, a blackhole; the flow table is bounded and forgets idle flows.

use crate::support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use support::datagram::{self, client, number_of, numbered};
use support::{assert_rejected, eventually, spawn_seeded, spawn_switchboard};
use switchboard::telemetry::DatagramStatsSnapshot;

/// One Udp route named `u` in front of `upstream`, with `faults` and extra route fields.
fn udp_route(upstream: std::net::SocketAddr, route_extra: &str, faults: &str) -> String {
    format!(
        r#"(
  routes: [(name: "u", protocol: Udp, listen: "127.0.0.1:0", upstream: "{upstream}"{route_extra})],
  faults: [{faults}],
)"#
    )
}

/// Receives one datagram within `deadline`, or `None`.
async fn recv_within(socket: &tokio::net::UdpSocket, deadline: Duration) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 65_535];
    match tokio::time::timeout(deadline, socket.recv(&mut buf)).await {
        Ok(Ok(n)) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

fn counts(sb: &support::Harness) -> DatagramStatsSnapshot {
    sb.app.metrics().datagram_route("u").snapshot()
}

#[tokio::test]
async fn datagrams_pass_exactly_and_each_client_gets_its_own_answers() {
    let sb = spawn_switchboard(&udp_route(datagram::echo().await, "", "")).await;
    let addr = sb.addr("u").await;
    let one = client("127.0.0.1", addr).await;
    let two = client("127.0.0.2", addr).await;
    // Sizes from 4 bytes up to the largest datagram IPv4 carries.
    let sizes = [4usize, 5, 100, 512, 1232, 1500, 9000, 65_507];
    for (i, len) in sizes.iter().enumerate() {
        for (socket, base) in [(&one, 0u32), (&two, 1000u32)] {
            let sent = numbered(base + i as u32, *len);
            socket.send(&sent).await.expect("send");
            let back = recv_within(socket, Duration::from_secs(5))
                .await
                .unwrap_or_else(|| panic!("no echo of {len} bytes"));
            assert_eq!(back, sent, "{len} bytes came back changed");
        }
    }
    let c = counts(&sb);
    assert_eq!(c.upstream.received, 16);
    assert_eq!(c.upstream.forwarded, 16);
    assert_eq!(c.downstream.forwarded, 16);
    assert_eq!(c.upstream.dropped + c.downstream.dropped, 0);
    let route = sb.api().get("/v1/routes/u").await.body;
    assert_eq!(route["protocol"], "Udp");
    assert_eq!(route["stats"]["open"], 2, "one flow per client: {route}");
    assert_eq!(route["datagrams"]["downstream"]["forwarded"], 16);
}

/// Sends datagrams 0..n through a route with `Drop(probability: 0.3)` towards a sink and
/// returns the numbers that did not arrive, checking the route's own count agrees.
async fn lost_with_seed(seed: u64, n: u32) -> Vec<u32> {
    let (sink, seen) = datagram::sink().await;
    let faults =
        r#"(name: "loss", route: "u", kind: Drop(), probability: 0.3, direction: Upstream)"#;
    let sb = spawn_seeded(&udp_route(sink, "", faults), seed).await;
    let socket = client("127.0.0.1", sb.addr("u").await).await;
    // In batches the kernel's buffers hold, each read by the route before the next is
    // sent: a loss the socket buffer made would not be the fault's.
    let batch = 100;
    for start in (0..n).step_by(batch) {
        for i in start..(start + batch as u32).min(n) {
            socket.send(&numbered(i, 16)).await.expect("send");
        }
        let sent = u64::from((start + batch as u32).min(n));
        eventually(
            Duration::from_secs(10),
            "the route read the batch",
            || async { counts(&sb).upstream.received == sent },
        )
        .await;
    }
    eventually(
        Duration::from_secs(10),
        "the sink got what was forwarded",
        || async { seen.lock().expect("seen").len() as u64 == counts(&sb).upstream.forwarded },
    )
    .await;
    let arrived: HashSet<u32> = seen.lock().expect("seen").iter().copied().collect();
    let lost: Vec<u32> = (0..n).filter(|i| !arrived.contains(i)).collect();
    let c = counts(&sb);
    assert_eq!(
        c.upstream.dropped,
        lost.len() as u64,
        "the route counts the datagrams that were lost"
    );
    assert_eq!(c.upstream.overflowed, 0);
    assert_eq!(sb.app.metrics().times_fired("loss"), lost.len() as u64);
    lost
}

#[tokio::test]
async fn drop_loses_a_binomial_share_and_the_seed_fixes_which() {
    let n = 10_000;
    let lost = lost_with_seed(7, n).await;
    // Binomial(10000, 0.3): mean 3000, standard deviation 45.8; four of them either side.
    let (mean, sd) = (3000.0, (f64::from(n) * 0.3 * 0.7).sqrt());
    let measured = lost.len() as f64;
    assert!(
        (measured - mean).abs() <= 4.0 * sd,
        "{measured} of {n} lost; expected {mean} ± {:.0}",
        4.0 * sd
    );
    assert_eq!(
        lost_with_seed(7, n).await,
        lost,
        "the same seed loses the same datagrams"
    );
    assert_ne!(
        lost_with_seed(8, n).await,
        lost,
        "another seed loses others"
    );
}

#[tokio::test]
async fn duplicate_sends_every_answer_twice() {
    let faults = r#"(name: "twice", route: "u", kind: Duplicate())"#;
    let sb = spawn_switchboard(&udp_route(datagram::echo().await, "", faults)).await;
    let socket = client("127.0.0.1", sb.addr("u").await).await;
    for i in 0..20 {
        socket.send(&numbered(i, 32)).await.expect("send");
        for copy in 0..2 {
            let back = recv_within(&socket, Duration::from_secs(5))
                .await
                .unwrap_or_else(|| panic!("copy {copy} of {i} missing"));
            assert_eq!(number_of(&back), i);
        }
    }
    let c = counts(&sb);
    assert_eq!(c.downstream.duplicated, 20);
    assert_eq!(c.downstream.forwarded, 40);
    assert_eq!(
        c.upstream.duplicated, 0,
        "direction is Downstream by default"
    );
}

#[tokio::test]
async fn reorder_lets_later_datagrams_overtake_the_held_ones() {
    let (sink, seen) = datagram::sink().await;
    let faults = r#"(name: "shuffle", route: "u", kind: Reorder(ms: 30), probability: 0.3, direction: Upstream)"#;
    let sb = spawn_switchboard(&udp_route(sink, "", faults)).await;
    let socket = client("127.0.0.1", sb.addr("u").await).await;
    let n = 200u32;
    for i in 0..n {
        socket.send(&numbered(i, 16)).await.expect("send");
    }
    eventually(
        Duration::from_secs(10),
        "every datagram arrived",
        || async { seen.lock().expect("seen").len() == n as usize },
    )
    .await;
    let order = seen.lock().expect("seen").clone();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "nothing lost or added");
    let overtaken = order.windows(2).filter(|w| w[0] > w[1]).count();
    assert!(overtaken > 0, "no datagram was overtaken: {order:?}");
}

#[tokio::test]
async fn latency_delays_answers_and_a_blackhole_swallows_them_until_lifted() {
    let slow = r#"(name: "slow", route: "u", kind: Latency(ms: 100))"#;
    let upstream = datagram::echo().await;
    let sb = spawn_switchboard(&udp_route(upstream, "", slow)).await;
    let socket = client("127.0.0.1", sb.addr("u").await).await;
    for i in 0..3 {
        let started = Instant::now();
        socket.send(&numbered(i, 16)).await.expect("send");
        recv_within(&socket, Duration::from_secs(5))
            .await
            .expect("echo");
        assert!(
            started.elapsed() >= Duration::from_millis(100),
            "{:?}",
            started.elapsed()
        );
    }
    let dark = r#"(name: "dark", route: "u", kind: Partition(mode: Blackhole))"#;
    sb.set_rules(&udp_route(upstream, "", dark)).await;
    socket.send(&numbered(9, 16)).await.expect("send");
    assert_eq!(recv_within(&socket, Duration::from_millis(500)).await, None);
    let c = counts(&sb);
    assert_eq!(
        c.upstream.dropped, 1,
        "a partition drops both ways, whatever the direction"
    );
    sb.set_rules(&udp_route(upstream, "", "")).await;
    socket.send(&numbered(10, 16)).await.expect("send");
    let back = recv_within(&socket, Duration::from_secs(5))
        .await
        .expect("echo after the lift");
    assert_eq!(number_of(&back), 10);
}

#[tokio::test]
async fn a_full_flow_table_drops_new_clients_until_a_flow_goes_idle() {
    let extra = r#", max_flows: 1, timeouts: (idle: "1s")"#;
    let sb = spawn_switchboard(&udp_route(datagram::echo().await, extra, "")).await;
    let addr = sb.addr("u").await;
    let first = client("127.0.0.1", addr).await;
    let second = client("127.0.0.2", addr).await;
    first.send(&numbered(1, 8)).await.expect("send");
    recv_within(&first, Duration::from_secs(5))
        .await
        .expect("first client's echo");
    second.send(&numbered(2, 8)).await.expect("send");
    eventually(
        Duration::from_secs(5),
        "the second client is refused",
        || async { counts(&sb).flows_refused == 1 },
    )
    .await;
    assert_eq!(recv_within(&second, Duration::from_millis(100)).await, None);
    eventually(
        Duration::from_secs(10),
        "the first flow is forgotten",
        || async { sb.app.metrics().route("u").snapshot().open == 0 },
    )
    .await;
    second.send(&numbered(3, 8)).await.expect("send");
    let back = recv_within(&second, Duration::from_secs(5))
        .await
        .expect("second client's echo");
    assert_eq!(number_of(&back), 3);
}

#[test]
fn udp_rules_are_checked_with_file_line_col() {
    let file = |route_extra: &str, fault: &str| {
        format!(
            r#"(routes: [(name: "u", protocol: Udp, listen: "127.0.0.1:5353", upstream: "h:53"{route_extra})],
 faults: [{fault}])"#
        )
    };
    assert_rejected(
        &file(
            "",
            r#"(name: "f", route: "u", kind: Partition(mode: Refuse))"#,
        ),
        "Partition does not fit a Udp route",
    );
    assert_rejected(
        &file(
            "",
            r#"(name: "f", route: "u", kind: Drop(), when: (path: "/x"))"#,
        ),
        "its when takes only client",
    );
    assert_rejected(
        &file(
            "",
            r#"(name: "f", route: "u", kind: Drop(), max_active: 2)"#,
        ),
        "max_active counts connections or requests",
    );
    assert_rejected(
        &file("", r#"(name: "f", route: "u", kind: Reorder(ms: 0))"#),
        "Reorder ms",
    );
    assert_rejected(&file(", max_flows: 0", ""), "max_flows must be at least 1");
    assert_rejected(
        &file(r#", timeouts: (connect: "1s")"#, ""),
        "timeouts.connect does not apply to a Udp route",
    );
    assert_rejected(
        r#"(routes: [(name: "t", protocol: Tcp, listen: "127.0.0.1:5000", upstream: "h:1", max_flows: 3)])"#,
        "max_flows bounds",
    );
    // A UDP port and a TCP port of the same number are different sockets.
    let both = r#"(routes: [
        (name: "t", protocol: Tcp, listen: "127.0.0.1:5000", upstream: "h:1"),
        (name: "u", protocol: Udp, listen: "127.0.0.1:5000", upstream: "h:1"),
    ])"#;
    switchboard::rules::load_texts(
        &[(std::path::PathBuf::from("t.ron"), both.to_string())],
        Default::default(),
    )
    .expect("a Tcp and a Udp route share a port number");
    assert_rejected(
        r#"(routes: [
        (name: "d", protocol: Dns, listen: "127.0.0.1:5000", upstream: "h:53"),
        (name: "u", protocol: Udp, listen: "127.0.0.1:5000", upstream: "h:1"),
    ])"#,
        "cannot be bound beside route",
    );
}

#[tokio::test]
async fn a_fault_aimed_at_one_client_drops_only_its_datagrams() {
    let faults = r#"(name: "cut", route: "u", kind: Drop(), direction: Upstream,
        when: (client: ["127.0.0.2"]))"#;
    let sb = spawn_switchboard(&udp_route(datagram::echo().await, "", faults)).await;
    let addr = sb.addr("u").await;
    let spared = client("127.0.0.1", addr).await;
    let aimed = client("127.0.0.2", addr).await;
    for i in 0..20u32 {
        spared.send(&numbered(i, 32)).await.expect("send");
        let back = recv_within(&spared, Duration::from_secs(5)).await;
        assert_eq!(back, Some(numbered(i, 32)), "127.0.0.1 lost datagram {i}");
        aimed.send(&numbered(1000 + i, 32)).await.expect("send");
    }
    // Every datagram from 127.0.0.1 came back, and the route has read the 127.0.0.2 ones.
    eventually(
        Duration::from_secs(5),
        "the route read all 40 datagrams",
        || async { counts(&sb).upstream.received == 40 },
    )
    .await;
    assert_eq!(recv_within(&aimed, Duration::from_millis(300)).await, None);
    let c = counts(&sb);
    assert_eq!(c.upstream.dropped, 20, "{c:?}");
    assert_eq!(c.upstream.forwarded, 20, "{c:?}");
}
