//! The Toxiproxy-compatible API: a replay of what Toxiproxy 2.12 answered, call by call, and
//! the places where Switchboard does better.

use crate::support;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use support::{route_with, spawn_switchboard, upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TRANSCRIPT: &str = include_str!("data/toxiproxy-2.12-api-transcript.json");
const TRANSCRIPT_UPSTREAM: &str = "127.0.0.1:48295";

/// Numbers compare by value (Toxiproxy writes `1`, we write `1.0`).
fn same(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)))
        }
        _ => expected == actual,
    }
}

/// Rewrites what differs by nature between the two runs: the upstream's address, the ports
/// the proxies got, and Toxiproxy's stray `Logger` field.
struct Rewriter {
    upstream: String,
    /// Toxiproxy's listen address → ours, learned from the answers.
    ports: HashMap<String, String>,
}

impl Rewriter {
    fn request(&self, body: &Value) -> Value {
        let text = body
            .to_string()
            .replace(TRANSCRIPT_UPSTREAM, &self.upstream);
        serde_json::from_str(&text).expect("json")
    }

    fn expected(&mut self, expected: &Value, actual: &Value) -> Value {
        match (expected, actual) {
            (Value::Object(e), Value::Object(a)) => {
                let mut out = serde_json::Map::new();
                for (k, v) in e {
                    if k == "Logger" {
                        continue;
                    }
                    let a_v = a.get(k).unwrap_or(&Value::Null);
                    let v = match (k.as_str(), v, a_v) {
                        ("upstream", Value::String(s), _) if s == TRANSCRIPT_UPSTREAM => {
                            Value::String(self.upstream.clone())
                        }
                        ("listen", Value::String(theirs), Value::String(ours))
                            if !theirs.ends_with(":0") =>
                        {
                            let mapped = self
                                .ports
                                .entry(theirs.clone())
                                .or_insert_with(|| ours.clone());
                            Value::String(mapped.clone())
                        }
                        _ => self.expected(v, a_v),
                    };
                    out.insert(k.clone(), v);
                }
                Value::Object(out)
            }
            (Value::Array(e), Value::Array(a)) => Value::Array(
                e.iter()
                    .enumerate()
                    .map(|(i, v)| self.expected(v, a.get(i).unwrap_or(&Value::Null)))
                    .collect(),
            ),
            _ => expected.clone(),
        }
    }
}

#[tokio::test]
async fn replays_the_toxiproxy_transcript() {
    let echo = upstream::echo().await;
    let sb = spawn_switchboard("()").await;
    let api = sb.api();
    let mut rewrite = Rewriter {
        upstream: echo.to_string(),
        ports: HashMap::new(),
    };
    let calls: Vec<Value> = serde_json::from_str(TRANSCRIPT).expect("transcript");
    for call in calls {
        let line = call["request"].as_str().expect("request");
        let (method, path) = line.split_once(' ').expect("method and path");
        let answer = match &call["body"] {
            Value::Null => api.call(method, path, None).await,
            Value::String(raw) => api.raw(method, path, raw.clone()).await,
            body => api.call(method, path, Some(rewrite.request(body))).await,
        };
        let expected_status = call["status"].as_u64().expect("status") as u16;
        let expected = &call["response"];

        if path == "/metrics" {
            // Toxiproxy answers 404 unless started with flags; we always serve metrics.
            assert_eq!(answer.status, 200, "{line}");
            continue;
        }
        assert_eq!(
            answer.status.as_u16(),
            expected_status,
            "{line}: {:?}",
            answer.body
        );
        if expected_status == 204 {
            assert!(answer.raw.is_empty(), "{line}");
            continue;
        }
        // Toxiproxy sends errors as text/plain; we send JSON throughout.
        assert_eq!(
            answer.content_type.as_deref(),
            Some("application/json"),
            "{line}"
        );
        let got = &answer.body;
        if line == "GET /version" {
            assert_eq!(got["version"], expected["version"], "{line}");
        } else if let Some(error) = expected.get("error").and_then(Value::as_str) {
            assert_eq!(got["status"], expected["status"], "{line}: {got}");
            let message = got["error"].as_str().unwrap_or_default();
            if error.starts_with("bad request body") {
                // Go's and serde's JSON errors are worded differently; the kind is the same.
                assert!(message.starts_with("bad request body"), "{line}: {message}");
            } else {
                assert_eq!(message, error, "{line}");
            }
            if expected.get("proxies").is_some() {
                assert_eq!(got["proxies"], Value::Null, "{line}");
            }
        } else {
            let want = rewrite.expected(expected, got);
            assert!(
                same(&want, got),
                "{line}\n expected {want}\n      got {got}"
            );
        }
    }
}

async fn echo_through(addr: &str) -> std::io::Result<Vec<u8>> {
    let mut client = TcpStream::connect(addr).await?;
    client.write_all(b"hello").await?;
    let mut back = vec![0u8; 5];
    client.read_exact(&mut back).await?;
    Ok(back)
}

#[tokio::test]
async fn a_proxy_on_port_0_forwards_and_is_a_route_with_api_faults() {
    let echo = upstream::echo().await;
    let sb = spawn_switchboard("()").await;
    let api = sb.api();
    let created = api
        .post(
            "/proxies",
            json!({"name": "redis", "listen": "localhost:0", "upstream": echo.to_string()}),
        )
        .await;
    assert_eq!(created.status, 201);
    let listen = created.body["listen"].as_str().expect("listen").to_string();
    assert!(
        !listen.ends_with(":0"),
        "the real port is answered: {listen}"
    );
    assert_eq!(echo_through(&listen).await.expect("echo"), b"hello");

    let toxic = api
        .post(
            "/proxies/redis/toxics",
            json!({"type": "latency", "attributes": {"latency": 100}}),
        )
        .await;
    assert_eq!(toxic.status, 200);
    let route = api.get("/v1/routes/redis").await.body;
    assert_eq!(route["source"], "api");
    let fault = api.get("/v1/faults/redis:latency_downstream").await;
    assert_eq!(fault.status, 200);
    assert_eq!(fault.body["source"], "api");
    assert_eq!(
        fault.body["kind"],
        json!({"Latency": {"ms": 100, "jitter_ms": 0}})
    );

    let start = std::time::Instant::now();
    echo_through(&listen).await.expect("echo");
    assert!(start.elapsed() >= Duration::from_millis(100));

    // The native kill switch clears Toxiproxy's toxics too.
    api.post("/v1/reset", json!(null)).await;
    assert_eq!(api.get("/proxies/redis/toxics").await.body, json!([]));
}

#[tokio::test]
async fn a_disabled_proxy_is_down_and_comes_back_on_the_same_port() {
    let echo = upstream::echo().await;
    let sb = spawn_switchboard("()").await;
    let api = sb.api();
    let created = api
        .post(
            "/proxies",
            json!({"name": "db", "listen": "127.0.0.1:0", "upstream": echo.to_string()}),
        )
        .await;
    let listen = created.body["listen"].as_str().expect("listen").to_string();
    let mut open = TcpStream::connect(&listen).await.expect("connect");
    open.write_all(b"x").await.expect("write");
    let mut one = [0u8; 1];
    open.read_exact(&mut one).await.expect("echo");

    let down = api.post("/proxies/db", json!({"enabled": false})).await;
    assert_eq!(down.status, 200);
    assert_eq!(down.body["enabled"], false);
    assert_eq!(down.body["listen"], listen.as_str());
    // The open connection is closed and nothing listens.
    let read = tokio::time::timeout(Duration::from_secs(2), open.read(&mut one))
        .await
        .expect("closed promptly");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(
        TcpStream::connect(&listen).await.is_err(),
        "refused while down"
    );

    let up = api.patch("/proxies/db", json!({"enabled": true})).await;
    assert_eq!(up.body["listen"], listen.as_str());
    assert_eq!(echo_through(&listen).await.expect("echo"), b"hello");
}

#[tokio::test]
async fn populate_is_all_or_nothing_and_takes_toxics() {
    let echo = upstream::echo().await.to_string();
    let sb = spawn_switchboard("()").await;
    let api = sb.api();
    let broken = api
        .post(
            "/populate",
            json!([
                {"name": "good", "listen": "127.0.0.1:0", "upstream": echo},
                {"name": "bad", "listen": "127.0.0.1:0", "upstream": echo,
                 "toxics": [{"type": "latency", "attributes": {"latency": -1}}]},
            ]),
        )
        .await;
    assert_eq!(broken.status, 400);
    assert!(
        broken.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("attribute latency")),
        "{:?}",
        broken.body
    );
    assert_eq!(
        api.get("/proxies").await.body,
        json!({}),
        "nothing was created"
    );

    let populated = api
        .post(
            "/populate",
            json!([
                {"name": "cache", "listen": "127.0.0.1:0", "upstream": echo,
                 "toxics": [{"type": "latency", "stream": "upstream", "attributes": {"latency": 50, "jitter": 5}},
                            {"name": "thin", "type": "bandwidth", "toxicity": 0.5, "attributes": {"rate": 10}}]},
            ]),
        )
        .await;
    assert_eq!(populated.status, 201);
    let toxics = &populated.body["proxies"][0]["toxics"];
    assert_eq!(toxics.as_array().map(Vec::len), Some(2), "{toxics}");
    assert_eq!(toxics[0]["name"], "latency_upstream");
    assert_eq!(toxics[1]["name"], "thin");

    // The same populate again keeps the proxy (and its port).
    let listen = populated.body["proxies"][0]["listen"].clone();
    let again = api
        .post(
            "/populate",
            json!([{"name": "cache", "listen": listen, "upstream": echo}]),
        )
        .await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body["proxies"][0]["listen"], listen);
}

#[tokio::test]
async fn values_are_validated_and_named() {
    let sb = spawn_switchboard(&route_with("file-route", upstream::echo().await, "")).await;
    let api = sb.api();
    let cases = [
        (
            json!({"type": "latency", "attributes": {"latency": -100}}),
            "attribute latency",
        ),
        (json!({"type": "latency", "toxicity": 7}), "toxicity 7"),
        (
            json!({"type": "slicer", "attributes": {"average_size": 0}}),
            "attribute average_size",
        ),
        (
            json!({"type": "bandwidth", "attributes": {"rate": "fast"}}),
            "attribute rate",
        ),
        (
            json!({"type": "latency", "attributes": {"latncy": 5}}),
            "unknown attribute \"latncy\"",
        ),
        (json!({"type": "teleport"}), "invalid toxic type"),
    ];
    for (body, needle) in cases {
        let answer = api.post("/proxies/file-route/toxics", body.clone()).await;
        assert_eq!(answer.status, 400, "{body}");
        assert_eq!(answer.body["status"], 400);
        let error = answer.body["error"].as_str().unwrap_or_default();
        assert!(error.contains(needle), "{body}: {error}");
    }
    // File-defined routes are proxies too, and take toxics.
    let added = api
        .post(
            "/proxies/file-route/toxics",
            json!({"type": "timeout", "attributes": {"timeout": 10}}),
        )
        .await;
    assert_eq!(added.status, 200);
    // But they are deleted from their file, not from here.
    assert_eq!(api.delete("/proxies/file-route").await.status, 409);
}
