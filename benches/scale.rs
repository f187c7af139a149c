//! What a change costs with many faults loaded: 100,000 faults on one route (from a file, as
//! an operator of many services would load them), then PATCH one of them, `POST /v1/reset`,
//! and `GET /v1/status`, each timed over the control endpoint as a client sees it.
//! Issue 16's targets: a PATCH ≤ 10 ms at p99, a reset ≤ 100 ms.
//!
//! `cargo bench --bench scale` (FAULTS=10000 for a quicker run).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use switchboard::control::{self, Auth};
use switchboard::rules::{LoadOptions, load_texts};
use switchboard::{Config, Switchboard};

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn rules(n: usize) -> String {
    let mut text = String::from(
        r#"(routes: [(name: "r", protocol: Tcp, listen: "127.0.0.1:0", upstream: "127.0.0.1:1")], faults: ["#,
    );
    for i in 0..n {
        text.push_str(&format!(
            r#"(name: "f{i:06}", route: "r", enabled: {}, kind: Latency(ms: {})),"#,
            i % 100 == 0,
            i % 500
        ));
    }
    text.push_str("])");
    text
}

async fn call(http: &Http, method: &str, url: &str, body: &str) -> Duration {
    let request = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let started = Instant::now();
    let response = http.request(request).await.expect("answer");
    let status = response.status();
    let _ = response.into_body().collect().await.expect("body");
    let took = started.elapsed();
    assert!(status.is_success(), "{method} {url}: {status}");
    took
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what:<28} n={:<4} p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms",
        samples.len(),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(at(1.0))
    );
}

fn main() {
    let n: usize = std::env::var("FAULTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let load = LoadOptions {
            allow_ephemeral_listen: true,
        };
        let started = Instant::now();
        let files = load_texts(&[("scale.ron".into(), rules(n))], load).expect("rules");
        let app = Switchboard::start(files, Config::default())
            .await
            .expect("start");
        println!(
            "{n} faults loaded and started in {:.2} s",
            started.elapsed().as_secs_f64()
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let control = control::serve(listener, app.clone(), Auth::open()).expect("control");
        let base = format!("http://{}", control.local_addr());
        let http: Http = Client::builder(TokioExecutor::new()).build_http();

        let mut patches = Vec::new();
        for i in 0..200 {
            let name = format!("f{:06}", (i * 7919) % n);
            let body = format!(r#"{{"enabled": {}}}"#, i % 2 == 0);
            patches.push(call(&http, "PATCH", &format!("{base}/v1/faults/{name}"), &body).await);
        }
        report("PATCH one fault", patches);

        let mut status = Vec::new();
        for _ in 0..50 {
            status.push(call(&http, "GET", &format!("{base}/v1/status"), "").await);
        }
        report("GET /v1/status", status);

        let mut resets = Vec::new();
        for _ in 0..10 {
            // Something to turn off each time: one in a hundred on.
            for i in (0..n).step_by(100).take(100) {
                let url = format!("{base}/v1/faults/f{i:06}");
                call(&http, "PATCH", &url, r#"{"enabled": true}"#).await;
            }
            resets.push(call(&http, "POST", &format!("{base}/v1/reset"), "").await);
        }
        report("POST /v1/reset", resets);
    });
}
