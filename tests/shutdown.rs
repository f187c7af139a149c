//! What a stop waits for beyond the routes' connections: drills running on the server are
//! rolled back, and every event published is in the event log before the stop returns.

use crate::support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{route_with, scratch_dir, spawn_switchboard, start, upstream};
use switchboard::app::Config;
use switchboard::control::Auth;
use switchboard::telemetry::EventBus;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_rolls_back_a_drill_running_on_the_server() {
    let echo = upstream::echo().await;
    let sb = spawn_switchboard(&route_with(
        "db",
        echo,
        r#"(name: "db-cut", route: "db", enabled: false, kind: Partition(mode: Refuse))"#,
    ))
    .await;
    let route = sb.addr("db").await;
    let drill = format!(
        r#"(
  name: "long",
  baseline: "100ms",
  observe: "1s",
  probes: [(name: "db", check: Tcp(addr: "{route}"), interval: "50ms", steady: (window: "100ms"))],
  steps: [(action: Enable("db-cut")), (action: Hold("60s"))],
)"#
    );
    let started = sb.api().post("/v1/drills", json!({"ron": drill})).await;
    assert_eq!(started.status, 201, "{:?}", started.body);
    let id = started.body["id"].as_str().expect("an id").to_string();
    support::eventually(
        Duration::from_secs(10),
        "the drill to enable its fault",
        || async { sb.api().get("/v1/faults/db-cut").await.body["enabled"] == true },
    )
    .await;

    sb.app.shutdown(Duration::from_secs(10)).await;

    let fault = sb
        .app
        .store()
        .current()
        .fault("db-cut")
        .cloned()
        .expect("the fault");
    assert!(!fault.enabled, "the stop put the drill's fault back");
    let status =
        serde_json::to_value(sb.app.drills().status(&id).expect("the drill")).expect("json");
    assert_eq!(status["state"], "finished", "{status:#}");
    assert_eq!(status["report"]["outcome"], "rolled_back", "{status:#}");
    assert_eq!(
        status["report"]["reason"], "Switchboard is stopping",
        "{status:#}"
    );
}

#[tokio::test]
async fn every_event_is_in_the_log_when_the_stop_returns() {
    let dir = scratch_dir("shutdown-event-log");
    let log = dir.join("events.jsonl");
    let config = Config {
        seed: Some(1),
        events: EventBus::with_log(&log).await.expect("event log"),
        ..Config::default()
    };
    let files = support::rules(&route_with(
        "r",
        upstream::echo().await,
        r#"(name: "slow", route: "r", enabled: false, kind: Latency(ms: 5))"#,
    ));
    let sb = start(files, config, Auth::open()).await;
    let api = sb.api();
    for i in 0..200 {
        let answer = api
            .patch("/v1/faults/slow", json!({"enabled": i % 2 == 0}))
            .await;
        assert_eq!(answer.status, 200);
    }
    sb.app.shutdown(Duration::from_secs(1)).await;
    // Read at once: the stop has returned, so nothing may still be on its way to the file.
    let text = std::fs::read_to_string(&log).expect("the log");
    let toggles = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["fault"] == "slow")
        .count();
    assert_eq!(toggles, 200, "{text}");
}
