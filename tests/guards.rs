//! Route guards: `guard: (max_error_rate, window, then: Lift)` switches every fault on a route
//! off once its clients see more failures than allowed, so a forgotten toggle cannot take a
//! system down further than planned. What a fault injected does not count unless asked.

use crate::support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::from::get_from;
use support::spawn_switchboard;
use switchboard::telemetry::{EventKind, EventSource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTP upstream that answers 200, or 500 once `failing` is set.
async fn switchable_upstream() -> (SocketAddr, Arc<AtomicBool>) {
    let failing = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&failing);
    let addr = support::upstream::serve(move |mut stream| {
        let flag = Arc::clone(&flag);
        async move {
            let mut buf = [0u8; 4096];
            let mut head = Vec::new();
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let status = if flag.load(Ordering::SeqCst) {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let answer =
                format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    })
    .await;
    (addr, failing)
}

fn guarded_route(upstream: SocketAddr, count_injected: bool) -> String {
    format!(
        r#"(
  routes: [(name: "api", protocol: Http, listen: "127.0.0.1:0", upstream: "http://{upstream}",
            guard: (max_error_rate: 0.5, window: "2s", then: Lift, min_requests: 10,
                    count_injected: {count_injected}))],
  faults: [
    (name: "forgotten-delay", route: "api", kind: Delay(ms: 5)),
    (name: "aborts", route: "api", kind: Abort(status: 503), when: (path: "/aborted")),
  ],
)"#
    )
}

/// Sends a request to `path` every 20 ms until `stop` is set; counts what came back.
fn load(
    addr: SocketAddr,
    path: &'static str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<u32> {
    tokio::spawn(async move {
        let mut sent = 0;
        while !stop.load(Ordering::SeqCst) {
            let _ = get_from("127.0.0.1", addr, path, &[]).await;
            sent += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sent
    })
}

fn enabled(sb: &support::Harness) -> Vec<String> {
    sb.app
        .faults()
        .into_iter()
        .filter(|f| f.fault.enabled)
        .map(|f| f.fault.name)
        .collect()
}

#[tokio::test]
async fn a_guard_lifts_every_fault_when_the_upstream_starts_failing_and_not_before() {
    let (upstream, failing) = switchable_upstream().await;
    let sb = spawn_switchboard(&guarded_route(upstream, false)).await;
    let addr = sb.addr("api").await;
    let mut events = sb.app.events().subscribe();

    // Injected errors alone: every request to /aborted is answered 503 by a fault, for two
    // windows. The guard does not count them, so nothing is lifted.
    let stop = Arc::new(AtomicBool::new(false));
    let injected = load(addr, "/aborted", Arc::clone(&stop));
    let healthy = load(addr, "/ok", Arc::clone(&stop));
    support::eventually(
        Duration::from_secs(10),
        "two windows of traffic",
        || async { sb.app.metrics().times_fired("aborts") >= 100 },
    )
    .await;
    assert_eq!(
        enabled(&sb),
        ["forgotten-delay", "aborts"],
        "injected errors do not trip it"
    );
    let status = sb.api().get("/v1/status").await.body;
    let guard = &status["guards"][0];
    assert_eq!(guard["route"], "api");
    assert!(
        guard["outcomes"].as_u64().expect("outcomes") >= 10,
        "{guard}"
    );
    assert_eq!(guard["error_rate"], 0.0, "{guard}");
    assert!(guard["tripped"].is_null(), "{guard}");

    // The upstream starts failing: every request to /ok now fails on its own. The window
    // still holds the healthy answers before, so the rate passes 0.5 within the window.
    stop.store(true, Ordering::SeqCst);
    let _ = tokio::join!(injected, healthy);
    let stop = Arc::new(AtomicBool::new(false));
    failing.store(true, Ordering::SeqCst);
    let failed_at = Instant::now();
    let failing_load = load(addr, "/ok", Arc::clone(&stop));
    support::eventually(
        Duration::from_secs(10),
        "the guard to lift the faults",
        || async { enabled(&sb).is_empty() },
    )
    .await;
    let lifted_after = failed_at.elapsed();
    stop.store(true, Ordering::SeqCst);
    let _ = failing_load.await;
    eprintln!("guard lifted the faults {lifted_after:?} after the upstream began failing");
    assert!(
        lifted_after <= Duration::from_millis(2000 + 500),
        "lifted {lifted_after:?} after the failures began: more than one window (2 s) and a few samples"
    );

    let guarded = loop {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("an event")
            .expect("the bus");
        if let EventKind::Guarded { .. } = event.kind {
            assert_eq!(event.source, EventSource::Guard);
            break event.kind;
        }
    };
    let EventKind::Guarded {
        route,
        error_rate,
        max_error_rate,
        outcomes,
        lifted,
        ..
    } = guarded
    else {
        unreachable!("matched above");
    };
    assert_eq!(route, "api");
    assert!(
        error_rate > max_error_rate,
        "{error_rate} over {max_error_rate}"
    );
    assert!(outcomes >= 10);
    assert_eq!(lifted, ["forgotten-delay", "aborts"]);
    let status = sb.api().get("/v1/status").await.body;
    let trip = &status["guards"][0]["tripped"];
    assert_eq!(
        trip["lifted"],
        serde_json::json!(["forgotten-delay", "aborts"]),
        "{status}"
    );
}

#[tokio::test]
async fn with_count_injected_a_guard_counts_what_faults_did() {
    let (upstream, _failing) = switchable_upstream().await;
    let sb = spawn_switchboard(&guarded_route(upstream, true)).await;
    let addr = sb.addr("api").await;
    let stop = Arc::new(AtomicBool::new(false));
    let injected = load(addr, "/aborted", Arc::clone(&stop));
    support::eventually(
        Duration::from_secs(10),
        "the guard to lift the faults",
        || async { enabled(&sb).is_empty() },
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    let sent = injected.await.expect("load");
    assert!(sent >= 10, "it waited for min_requests: {sent} requests");
}

#[tokio::test]
async fn guards_that_cannot_hold_are_refused() {
    let table = [
        ("max_error_rate: 1.0", "below 1.0"),
        ("max_error_rate: -0.1", "at least 0.0"),
        (
            "max_error_rate: 0.5, window: \"100ms\"",
            "between 500ms and 24h",
        ),
        (
            "max_error_rate: 0.5, min_requests: 0",
            "min_requests must be at least 1",
        ),
        ("max_error_rate: 0.5, then: Panic", "Panic"),
    ];
    for (guard, needle) in table {
        let text = format!(
            r#"(routes: [(name: "t", protocol: Tcp, listen: "127.0.0.1:1", upstream: "h:1", guard: ({guard}))])"#
        );
        support::assert_rejected(&text, needle);
    }
    support::assert_rejected(
        r#"(routes: [(name: "t", protocol: Tcp, listen: "127.0.0.1:1", upstream: "h:1", request_faults: true)])"#,
        "request_faults reads an HTTP header",
    );
}
