//! Faults a request asks for: on a route with `request_faults: true`, the
//! `x-switchboard-fault` header gives that request, and no other, its own faults. The header
//! never reaches the upstream, whether the route honours it or not.

use crate::support;

use std::time::{Duration, Instant};

use support::from::get_from;
use support::{http_upstream, spawn_switchboard};

const HEADER: &str = "x-switchboard-fault";

fn http_route(upstream: &str, request_faults: bool) -> String {
    format!(
        r#"(routes: [(name: "api", protocol: Http, listen: "127.0.0.1:0", upstream: "{upstream}",
                      request_faults: {request_faults})])"#
    )
}

#[tokio::test]
async fn fifty_parallel_requests_each_get_exactly_their_own_fault() {
    let upstream = http_upstream::start().await;
    let sb = spawn_switchboard(&http_route(&upstream.url(), true)).await;
    let addr = sb.addr("api").await;
    let tasks: Vec<_> = (0..50u16)
        .map(|i| {
            tokio::spawn(async move {
                // Even requests ask for an answer of their own; odd ones for a delay and a
                // response delay, then reach the upstream.
                let asked = if i % 2 == 0 {
                    format!("abort={}", 500 + i)
                } else {
                    "delay=150ms, response-delay=100ms".to_string()
                };
                let started = Instant::now();
                let answer = get_from("127.0.0.1", addr, "/headers", &[(HEADER, &asked)]).await;
                (i, answer, started.elapsed())
            })
        })
        .collect();
    for task in tasks {
        let (i, answer, took) = task.await.expect("request task");
        if i % 2 == 0 {
            assert_eq!(answer.status, Some(500 + i), "request {i}: {answer:?}");
            assert!(
                answer
                    .body
                    .contains("as the request's x-switchboard-fault header asked")
            );
        } else {
            assert_eq!(answer.status, Some(200), "request {i}: {answer:?}");
            assert!(
                took >= Duration::from_millis(250),
                "request {i} took {took:?}, less than the 250 ms it asked for"
            );
            assert!(
                !answer.body.contains(HEADER),
                "request {i}: the header reached the upstream: {}",
                answer.body
            );
        }
    }
    assert_eq!(upstream.seen(), 25, "the aborted requests never reached it");
    let metrics = sb.app.metrics();
    assert_eq!(metrics.times_fired("x-switchboard-fault:abort"), 25);
    assert_eq!(metrics.times_fired("x-switchboard-fault:delay"), 25);
    assert_eq!(
        metrics.times_fired("x-switchboard-fault:response-delay"),
        25
    );
    let text = metrics.encode();
    assert!(
        text.contains(r#"switchboard_fault_fired_total{fault="x-switchboard-fault:abort"} 25"#),
        "exported under a name of its own"
    );
}

#[tokio::test]
async fn a_request_that_asks_for_nothing_or_a_route_that_does_not_listen_passes() {
    let upstream = http_upstream::start().await;
    let sb = spawn_switchboard(&http_route(&upstream.url(), false)).await;
    let addr = sb.addr("api").await;
    // The option is off: the header is ignored, and still stripped.
    let answer = get_from("127.0.0.1", addr, "/headers", &[(HEADER, "abort=503")]).await;
    assert_eq!(answer.status, Some(200), "{answer:?}");
    assert!(
        !answer.body.contains(HEADER),
        "the header was forwarded: {}",
        answer.body
    );
    assert!(answer.body.contains("x-forwarded-for"), "{}", answer.body);
    assert_eq!(sb.app.metrics().times_fired("x-switchboard-fault:abort"), 0);
}

#[tokio::test]
async fn a_header_that_asks_for_something_invalid_is_answered_400() {
    let upstream = http_upstream::start().await;
    let sb = spawn_switchboard(&http_route(&upstream.url(), true)).await;
    let addr = sb.addr("api").await;
    for (asked, says) in [
        ("abort=42", "42 is not a final HTTP status"),
        ("delay=soon", "delay=soon: not a duration"),
        ("explode", "\\\"explode\\\" is not a fault it knows"),
        ("slow-body", "slow-body needs a value"),
    ] {
        let answer = get_from("127.0.0.1", addr, "/x", &[(HEADER, asked)]).await;
        assert_eq!(answer.status, Some(400), "{asked}: {answer:?}");
        assert!(
            answer
                .head
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{}",
            answer.head
        );
        let body: serde_json::Value = serde_json::from_str(&answer.body).expect("JSON");
        let message = body["error"].as_str().expect("error");
        assert!(message.starts_with("x-switchboard-fault: "), "{message}");
        assert!(
            answer.body.contains(says),
            "{asked}: {} should say {says}",
            answer.body
        );
    }
    assert_eq!(upstream.seen(), 0, "no bad request was forwarded");
}

#[tokio::test]
async fn asked_body_faults_shape_the_response() {
    let upstream = http_upstream::start().await;
    let sb = spawn_switchboard(&http_route(&upstream.url(), true)).await;
    let addr = sb.addr("api").await;
    // 2,000 bytes at 4,000 bytes/s: about half a second.
    let started = Instant::now();
    let slow = get_from(
        "127.0.0.1",
        addr,
        "/bytes/2000",
        &[(HEADER, "slow-body=4000")],
    )
    .await;
    assert_eq!(slow.status, Some(200));
    assert!(slow.body.contains(&"x".repeat(100)));
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    let dropped = get_from("127.0.0.1", addr, "/x", &[(HEADER, "drop")]).await;
    assert_eq!(
        dropped.status, None,
        "a dropped request gets no answer: {dropped:?}"
    );
    let plain = get_from("127.0.0.1", addr, "/x", &[]).await;
    assert_eq!(plain.status, Some(200), "the next request is not touched");
}
