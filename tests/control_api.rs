//! The native control API over real HTTP: shapes, status codes, errors that name the field,
//! precedence between files and API changes, TTLs, events, metrics and security.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{route_with, rules, spawn_switchboard, start, upstream};
use switchboard::Config;
use switchboard::control::Auth;
use switchboard::telemetry::EventBus;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const FILE_FAULTS: &str = r#"
    (name: "file-slow", route: "r", enabled: false, kind: Latency(ms: 100, jitter_ms: 5)),
    (name: "file-other", route: "r", enabled: false, kind: Bandwidth(bytes_per_sec: 1000)),
"#;

/// A Switchboard with the file faults, whose events go to `bus`.
async fn with_events(bus: EventBus) -> support::Harness {
    let config = Config {
        seed: Some(1),
        events: bus,
        ..Config::default()
    };
    let files = rules(&route_with("r", upstream::echo().await, FILE_FAULTS));
    start(files, config, Auth::open()).await
}

async fn echo_time(client: &mut TcpStream) -> Duration {
    let start = Instant::now();
    client.write_all(b"ping").await.expect("write");
    let mut back = [0u8; 4];
    client.read_exact(&mut back).await.expect("read");
    start.elapsed()
}

#[tokio::test]
async fn health_unknown_paths_and_wrong_methods() {
    let sb = spawn_switchboard(&route_with("r", upstream::echo().await, "")).await;
    let api = sb.api();
    let health = api.get("/healthz").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.body["status"], "ok");

    let missing = api.get("/v1/nothing").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.content_type.as_deref(), Some("application/json"));
    assert!(
        missing.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("/v1/nothing"))
    );

    let wrong = api.call("PUT", "/v1/faults", None).await;
    assert_eq!(wrong.status, 405);
    assert!(
        wrong.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("GET, POST"))
    );
}

#[tokio::test]
async fn routes_show_live_counters() {
    let sb = spawn_switchboard(&route_with("r", upstream::echo().await, FILE_FAULTS)).await;
    let mut client = TcpStream::connect(sb.addr("r").await)
        .await
        .expect("connect");
    echo_time(&mut client).await;

    let routes = sb.api().get("/v1/routes").await;
    assert_eq!(routes.status, 200);
    let r = &routes.body[0];
    assert_eq!(r["name"], "r");
    assert_eq!(r["bound"], sb.addr("r").await.to_string());
    assert_eq!(r["source"], "file");
    assert_eq!(r["stats"]["open"], 1);
    assert_eq!(r["stats"]["total"], 1);
    assert_eq!(r["stats"]["bytes_upstream"], 4);
    assert_eq!(r["stats"]["bytes_downstream"], 4);
    assert_eq!(r["faults"], json!(["file-slow", "file-other"]));

    assert_eq!(sb.api().get("/v1/routes/r").await.body["name"], "r");
    let missing = sb.api().get("/v1/routes/nope").await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn create_read_update_delete_a_fault() {
    let sb = spawn_switchboard(&route_with("r", upstream::echo().await, FILE_FAULTS)).await;
    let api = sb.api();
    let created = api
        .post(
            "/v1/faults",
            json!({"name": "api-slow", "route": "r", "kind": {"Latency": {"ms": 50, "jitter_ms": 10}}}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["source"], "api");
    assert_eq!(created.body["enabled"], true);
    assert_eq!(created.body["probability"], 1.0);
    assert_eq!(created.body["direction"], "Downstream");
    assert_eq!(created.body["expires_at"], Value::Null);

    let again = api
        .post(
            "/v1/faults",
            json!({"name": "api-slow", "route": "r", "kind": {"Latency": {"ms": 1}}}),
        )
        .await;
    assert_eq!(again.status, 409);
    assert_eq!(
        again.body,
        json!({"error": "a fault named \"api-slow\" already exists", "field": "name"})
    );

    // Only the parameters given change; jitter_ms is kept.
    let patched = api
        .patch(
            "/v1/faults/api-slow",
            json!({"kind": {"Latency": {"ms": 75}}, "probability": 0.5}),
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(
        patched.body["kind"],
        json!({"Latency": {"ms": 75, "jitter_ms": 10}})
    );
    assert_eq!(patched.body["probability"], 0.5);

    let listed = api.get("/v1/faults").await.body;
    let names: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(names, ["file-slow", "file-other", "api-slow"]);

    assert_eq!(api.delete("/v1/faults/api-slow").await.status, 204);
    assert_eq!(api.get("/v1/faults/api-slow").await.status, 404);
    assert_eq!(api.delete("/v1/faults/api-slow").await.status, 404);

    // A file-defined fault cannot be deleted from outside its file: it is switched off.
    let enabled = api
        .patch("/v1/faults/file-slow", json!({"enabled": true}))
        .await;
    assert_eq!(enabled.status, 200, "{:?}", enabled.body);
    assert_eq!(enabled.body["enabled"], true);
    let disabled = api.delete("/v1/faults/file-slow").await;
    assert_eq!(disabled.status, 200);
    assert_eq!(disabled.body["enabled"], false);
    assert_eq!(disabled.body["source"], "file");
}

#[tokio::test]
async fn bad_calls_get_a_4xx_naming_the_field_and_change_nothing() {
    let sb = spawn_switchboard(&route_with("r", upstream::echo().await, FILE_FAULTS)).await;
    let api = sb.api();
    let cases: Vec<(&str, &str, Value, u16, Option<&str>)> = vec![
        (
            "POST",
            "/v1/faults",
            json!({"name": "x", "kind": {"Latency": {"ms": 1}}}),
            400,
            Some("route"),
        ),
        (
            "POST",
            "/v1/faults",
            json!({"name": "x", "route": "nope", "kind": {"Latency": {"ms": 1}}}),
            400,
            Some("route"),
        ),
        (
            "POST",
            "/v1/faults",
            json!({"name": "x", "route": "r", "probability": 2.0, "kind": {"Latency": {"ms": 1}}}),
            400,
            Some("probability"),
        ),
        (
            "POST",
            "/v1/faults",
            json!({"name": "x", "route": "r", "kind": {"Latency": {"ms": -1}}}),
            400,
            Some("kind.Latency.ms"),
        ),
        (
            "POST",
            "/v1/faults",
            json!({"name": "x", "route": "r", "kind": {"Jitter": {"ms": 1}}}),
            400,
            Some("kind"),
        ),
        (
            "POST",
            "/v1/faults",
            json!({"name": "x", "route": "r", "kind": {"Slicer": {"avg_bytes": 0}}}),
            400,
            Some("kind.Slicer.avg_bytes"),
        ),
        (
            "POST",
            "/v1/faults",
            json!({"name": "x", "route": "r", "colour": "red", "kind": {"Latency": {"ms": 1}}}),
            400,
            Some("colour"),
        ),
        (
            "POST",
            "/v1/faults",
            json!({"name": "x", "route": "r", "ttl": "soon", "kind": {"Latency": {"ms": 1}}}),
            400,
            Some("ttl"),
        ),
        (
            "POST",
            "/v1/faults",
            json!(["not", "an", "object"]),
            400,
            None,
        ),
        (
            "PATCH",
            "/v1/faults/file-slow",
            json!({"enabled": "yes"}),
            400,
            Some("enabled"),
        ),
        (
            "PATCH",
            "/v1/faults/file-slow",
            json!({"speed": 3}),
            400,
            Some("speed"),
        ),
        (
            "PATCH",
            "/v1/faults/file-slow",
            json!({"kind": {"Latency": {"ms": "fast"}}}),
            400,
            Some("kind.Latency.ms"),
        ),
        (
            "PATCH",
            "/v1/faults/nope",
            json!({"enabled": true}),
            404,
            None,
        ),
    ];
    for (method, path, body, status, field) in cases {
        let answer = api.call(method, path, Some(body.clone())).await;
        assert_eq!(
            answer.status.as_u16(),
            status,
            "{method} {path} {body}: {:?}",
            answer.body
        );
        assert_eq!(answer.content_type.as_deref(), Some("application/json"));
        assert!(
            answer.body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{:?}",
            answer.body
        );
        if let Some(field) = field {
            assert_eq!(
                answer.body["field"].as_str(),
                Some(field),
                "{method} {path} {body}: {:?}",
                answer.body
            );
        }
    }

    // The README's example, word for word.
    let example = api
        .post(
            "/v1/faults",
            json!({"name": "db-slow", "route": "r", "probability": 2.0, "kind": {"Latency": {"ms": 1}}}),
        )
        .await;
    assert_eq!(
        example.body,
        json!({"error": "db-slow: probability 2 is outside 0.0..=1.0", "field": "probability"})
    );

    let malformed = api.raw("POST", "/v1/faults", "{not json").await;
    assert_eq!(malformed.status, 400);
    assert!(
        malformed.body["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("malformed JSON"))
    );

    let huge = api
        .raw("POST", "/v1/faults", vec![b' '; 2 * 1024 * 1024])
        .await;
    assert_eq!(huge.status, 413);

    // Nothing changed.
    assert_eq!(
        api.get("/v1/faults").await.body.as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(api.get("/v1/faults/file-slow").await.body["enabled"], false);
}

#[tokio::test]
async fn a_patch_reaches_an_open_connection() {
    let sb = spawn_switchboard(&route_with("r", upstream::echo().await, FILE_FAULTS)).await;
    let mut client = TcpStream::connect(sb.addr("r").await)
        .await
        .expect("connect");
    client.set_nodelay(true).expect("nodelay");
    assert!(echo_time(&mut client).await < Duration::from_millis(90));
    let on = sb
        .api()
        .patch("/v1/faults/file-slow", json!({"enabled": true}))
        .await;
    assert_eq!(on.status, 200);
    assert_eq!(on.body["enabled"], true);
    assert!(echo_time(&mut client).await >= Duration::from_millis(95));
    let off = sb
        .api()
        .patch("/v1/faults/file-slow", json!({"enabled": false}))
        .await;
    assert_eq!(off.status, 200);
    assert_eq!(off.body["enabled"], false);
    assert!(echo_time(&mut client).await < Duration::from_millis(90));
}

#[tokio::test]
async fn reset_turns_everything_off_and_removes_api_faults() {
    let sb = spawn_switchboard(&route_with("r", upstream::echo().await, FILE_FAULTS)).await;
    let api = sb.api();
    let enabled = api
        .patch("/v1/faults/file-slow", json!({"enabled": true}))
        .await;
    assert_eq!(enabled.status, 200, "{:?}", enabled.body);
    assert_eq!(enabled.body["enabled"], true);
    let created = api
        .post(
            "/v1/faults",
            json!({"name": "api-cut", "route": "r", "kind": {"Partition": {"mode": "Reset"}}}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let reset = api.post("/v1/reset", json!(null)).await;
    assert_eq!(reset.status, 200);
    let mut off: Vec<String> =
        serde_json::from_value(reset.body["turned_off"].clone()).expect("names");
    off.sort();
    assert_eq!(off, ["api-cut", "file-slow"]);
    let faults = api.get("/v1/faults").await.body;
    let faults = faults.as_array().expect("list");
    assert_eq!(faults.len(), 2);
    assert!(faults.iter().all(|f| f["enabled"] == false));
    // Traffic flows again.
    let mut client = TcpStream::connect(sb.addr("r").await)
        .await
        .expect("connect");
    assert!(echo_time(&mut client).await < Duration::from_millis(90));
}

#[tokio::test]
async fn an_api_change_survives_unrelated_reloads_and_a_file_edit_of_that_fault_wins() {
    let echo = upstream::echo().await;
    let file = |slow_ms: u64, other_rate: u64| {
        route_with(
            "r",
            echo,
            &format!(
                r#"(name: "file-slow", route: "r", enabled: false, kind: Latency(ms: {slow_ms})),
                   (name: "file-other", route: "r", enabled: false, kind: Bandwidth(bytes_per_sec: {other_rate}))"#
            ),
        )
    };
    let sb = spawn_switchboard(&file(100, 1000)).await;
    let api = sb.api();
    let enabled = api
        .patch("/v1/faults/file-slow", json!({"enabled": true}))
        .await;
    assert_eq!(enabled.status, 200, "{:?}", enabled.body);
    assert_eq!(enabled.body["enabled"], true);

    sb.set_rules(&file(100, 2000)).await; // an unrelated edit
    assert_eq!(api.get("/v1/faults/file-slow").await.body["enabled"], true);

    sb.set_rules(&file(150, 2000)).await; // the fault itself is edited: the file wins
    let slow = api.get("/v1/faults/file-slow").await.body;
    assert_eq!(slow["enabled"], false);
    assert_eq!(slow["kind"]["Latency"]["ms"], 150);
}

#[tokio::test]
async fn a_ttl_switches_the_fault_off_and_says_so() {
    let bus = EventBus::new();
    let mut events = bus.subscribe();
    let sb = with_events(bus).await;
    let api = sb.api();
    let created = api
        .post(
            "/v1/faults",
            json!({"name": "brief", "route": "r", "ttl": "300ms", "kind": {"Latency": {"ms": 1}}}),
        )
        .await;
    assert_eq!(created.status, 201);
    let expires: String =
        serde_json::from_value(created.body["expires_at"].clone()).expect("expires_at is set");
    assert!(expires.ends_with('Z'), "RFC 3339 UTC: {expires}");
    let patched = api
        .patch(
            "/v1/faults/file-slow",
            json!({"enabled": true, "ttl": "200ms"}),
        )
        .await;
    assert!(patched.body["expires_at"].is_string());

    let mut expired = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), async {
        while expired.len() < 2 {
            let event = events.recv().await.expect("events");
            let value = serde_json::to_value(&event).expect("json");
            if value["type"] == "fault_expired" {
                assert_eq!(value["source"], "ttl");
                expired.push(value["fault"].as_str().unwrap_or_default().to_string());
            }
        }
    })
    .await
    .expect("both faults expire");
    expired.sort();
    assert_eq!(expired, ["brief", "file-slow"]);
    for name in ["brief", "file-slow"] {
        let fault = api.get(&format!("/v1/faults/{name}")).await.body;
        assert_eq!(fault["enabled"], false, "{name}");
        assert_eq!(fault["expires_at"], Value::Null, "{name}");
    }
}

#[tokio::test]
async fn events_stream_over_sse_and_into_the_event_log() {
    let dir = support::scratch_dir("event-log");
    let log = dir.join("events.jsonl");
    let sb = with_events(EventBus::with_log(&log).await.expect("event log")).await;

    // A raw HTTP/1.1 client: the stream must be readable as it arrives.
    let mut sse = TcpStream::connect(sb.control.local_addr())
        .await
        .expect("connect");
    sse.write_all(b"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("request");
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains(": connected") {
        let n = sse.read(&mut buf).await.expect("read");
        assert!(n > 0, "stream closed: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("text/event-stream"), "{seen}");

    let on = sb
        .api()
        .patch("/v1/faults/file-slow", json!({"enabled": true}))
        .await;
    assert_eq!(on.status, 200);
    assert_eq!(sb.api().post("/v1/reset", json!(null)).await.status, 200);
    tokio::time::timeout(Duration::from_secs(5), async {
        while !(seen.contains("event: fault_enabled") && seen.contains("event: reset")) {
            let n = sse.read(&mut buf).await.expect("read");
            assert!(n > 0, "stream closed: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("events arrive: {seen}"));
    assert!(seen.contains(r#""fault":"file-slow""#), "{seen}");
    assert!(seen.contains(r#""source":"api""#), "{seen}");

    support::eventually(
        Duration::from_secs(5),
        "the event log has the changes",
        || {
            let log = log.clone();
            async move {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let types: Vec<String> = text
                    .lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .filter_map(|v| v["type"].as_str().map(str::to_string))
                    .collect();
                types.first().map(String::as_str) == Some("reloaded")
                    && types.iter().any(|t| t == "fault_enabled")
                    && types.iter().any(|t| t == "reset")
            }
        },
    )
    .await;
}

#[tokio::test]
async fn metrics_are_served_in_prometheus_text() {
    let sb = spawn_switchboard(&route_with(
        "r",
        upstream::echo().await,
        r#"(name: "slow", route: "r", kind: Latency(ms: 1))"#,
    ))
    .await;
    let mut client = TcpStream::connect(sb.addr("r").await)
        .await
        .expect("connect");
    echo_time(&mut client).await;
    let metrics = sb.api().get("/metrics").await;
    assert_eq!(metrics.status, 200);
    let text = String::from_utf8_lossy(&metrics.raw);
    for line in [
        r#"switchboard_connections_total{route="r"} 1"#,
        r#"switchboard_connections_open{route="r"} 1"#,
        r#"switchboard_bytes_total{route="r",direction="upstream"} 4"#,
        r#"switchboard_bytes_total{route="r",direction="downstream"} 4"#,
        r#"switchboard_fault_fired_total{fault="slow"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in:\n{text}");
    }
    assert!(text.contains("switchboard_upstream_dial_errors"), "{text}");
}

#[tokio::test]
async fn a_token_guards_every_call_but_healthz() {
    let files = rules(&route_with("r", upstream::echo().await, FILE_FAULTS));
    let any: std::net::SocketAddr = "0.0.0.0:0".parse().expect("addr");
    assert!(
        Auth::for_bind(any, None).is_err(),
        "off loopback a token is required"
    );
    let auth = Auth::for_bind(any, Some("t0ken".into())).expect("auth");
    let sb = start(files, Config::default(), auth).await;
    let api = sb.api();
    assert_eq!(api.get("/healthz").await.status, 200);
    for path in ["/v1/status", "/v1/faults", "/metrics"] {
        let denied = api.get(path).await;
        assert_eq!(denied.status, 401, "{path}");
        assert!(
            denied.body["error"]
                .as_str()
                .is_some_and(|e| e.contains("Bearer"))
        );
    }
    let wrong = support::api::Api::new(sb.control.local_addr(), None).with_token("t0keN");
    assert_eq!(wrong.get("/v1/status").await.status, 401);
    let right = support::api::Api::new(sb.control.local_addr(), None).with_token("t0ken");
    assert_eq!(right.get("/v1/status").await.status, 200);
    assert_eq!(
        right
            .patch("/v1/faults/file-slow", json!({"enabled": true}))
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_toggles_under_load_all_answer() {
    let sb = spawn_switchboard(&route_with(
        "r",
        upstream::echo().await,
        r#"(name: "flip", route: "r", enabled: false, direction: Both, kind: Latency(ms: 2))"#,
    ))
    .await;
    let addr = sb.addr("r").await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (streaming_tx, mut streaming) = tokio::sync::mpsc::unbounded_channel();
    let streams: Vec<_> = (0..200)
        .map(|i: u8| {
            let stop = stop.clone();
            let streaming_tx = streaming_tx.clone();
            tokio::spawn(async move {
                let mut client = TcpStream::connect(addr).await.expect("connect");
                let payload = [i; 512];
                let mut back = [0u8; 512];
                let mut rounds = 0u32;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    client.write_all(&payload).await.expect("write");
                    client.read_exact(&mut back).await.expect("read");
                    assert_eq!(back, payload);
                    rounds += 1;
                    if rounds == 1 {
                        let _ = streaming_tx.send(());
                    }
                }
                rounds
            })
        })
        .collect();
    // Every connection is moving data before the toggling starts.
    for _ in 0..200 {
        streaming.recv().await.expect("a stream started");
    }
    let api = sb.api();
    for i in 0..1000 {
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            api.patch("/v1/faults/flip", json!({"enabled": i % 2 == 0})),
        )
        .await
        .unwrap_or_else(|_| panic!("toggle {i} did not answer within 5 s"));
        assert_eq!(answer.status, 200, "toggle {i}");
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for s in streams {
        assert!(s.await.expect("stream") > 0);
    }
}
