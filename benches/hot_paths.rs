//! Criterion micro-benchmarks of the hot paths that do no I/O: choosing the HTTP faults for a
//! request among 1,000, passing one chunk through a TCP connection's fault pipeline with 0, 1
//! and 5 faults in force, and loading a rules file of 1,000 faults.
//!
//! `cargo bench --bench hot_paths`

use std::hint::black_box;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use switchboard::proxy::http::select_faults;
use switchboard::proxy::tcp::{Plan, Sink, Stream};
use switchboard::rules::{Direction, LoadOptions, load_texts};
use switchboard::store::{Overrides, RuleSet};
use switchboard::telemetry::Metrics;

const LOAD: LoadOptions = LoadOptions {
    allow_ephemeral_listen: true,
};

fn rule_set(text: &str) -> RuleSet {
    let files = load_texts(&[(PathBuf::from("bench.ron"), text.to_string())], LOAD)
        .unwrap_or_else(|e| panic!("bench rules: {e}"));
    Overrides::default().merge(&files)
}

/// An HTTP route with 1,000 faults, each matching one tenant's requests under its own path.
fn thousand_http_faults() -> String {
    let mut text = String::from(
        r#"(routes: [(name: "api", protocol: Http, listen: "127.0.0.1:0", upstream: "http://127.0.0.1:1")], faults: ["#,
    );
    for i in 0..1000 {
        text.push_str(&format!(
            r#"(name: "f{i}", route: "api", kind: Delay(ms: 10), when: (method: "GET", path: "/api/items/{i}/*", headers: {{"x-tenant": "t{i}"}})),"#
        ));
    }
    text.push_str("])");
    text
}

fn rule_matching(c: &mut Criterion) {
    let rules = rule_set(&thousand_http_faults());
    let mut group = c.benchmark_group("rule_matching");
    let client = std::net::IpAddr::from([127, 0, 0, 1]);
    // The request matches only the last fault, so every one is looked at.
    for (name, path, tenant) in [
        ("1000_faults_last_matches", "/api/items/999/detail", "t999"),
        ("1000_faults_none_matches", "/other", "nobody"),
    ] {
        let (parts, ()) = hyper::Request::builder()
            .method("GET")
            .uri(path)
            .header("x-tenant", tenant)
            .body(())
            .expect("request")
            .into_parts();
        group.bench_function(name, |b| {
            let mut index = 0u64;
            b.iter(|| {
                index += 1;
                black_box(select_faults(
                    &rules,
                    "api",
                    7,
                    black_box(&parts),
                    index,
                    client,
                ))
            })
        });
    }
    group.finish();
}

/// Takes everything at once, like an uncongested socket.
struct NullSink;

impl Sink for NullSink {
    fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        Ok(black_box(data).len())
    }

    fn shutdown_write(&self) {}
}

fn tcp_rules(faults: &str) -> RuleSet {
    rule_set(&format!(
        r#"(routes: [(name: "db", protocol: Tcp, listen: "127.0.0.1:0", upstream: "127.0.0.1:1")], faults: [{faults}])"#
    ))
}

fn chunk_pipeline(c: &mut Criterion) {
    let cases = [
        ("0_faults", String::new()),
        (
            "1_fault",
            r#"(name: "lat", route: "db", kind: Latency(ms: 0))"#.to_string(),
        ),
        (
            "5_faults",
            [
                r#"(name: "lat", route: "db", kind: Latency(ms: 0))"#,
                r#"(name: "bw", route: "db", kind: Bandwidth(bytes_per_sec: 1000000000000))"#,
                r#"(name: "limit", route: "db", kind: LimitData(bytes: 1000000000000000000))"#,
                r#"(name: "slow", route: "db", kind: SlowClose(ms: 10))"#,
                r#"(name: "cut", route: "db", kind: CutAfter(ms: 3600000))"#,
            ]
            .join(","),
        ),
    ];
    let chunk = vec![7u8; 16 * 1024];
    let metrics = Metrics::new();
    let stats = metrics.route("db");
    let mut group = c.benchmark_group("chunk_pipeline_16KiB");
    group.throughput(Throughput::Bytes(chunk.len() as u64));
    for (name, faults) in cases {
        let rules = tcp_rules(&faults);
        group.bench_with_input(BenchmarkId::from_parameter(name), &rules, |b, rules| {
            let start = Instant::now();
            let mut plan = Plan::new(Arc::from("db"), 1, 7, start);
            plan.refresh(rules, start, &metrics);
            let mut rng = plan.chunk_rng();
            let mut stream = Stream::new(Direction::Downstream);
            let mut now = start;
            b.iter(|| {
                // A millisecond per chunk keeps the bandwidth gate open, as 16 GB/s would.
                now += Duration::from_millis(1);
                stream
                    .accept(
                        black_box(&chunk),
                        &NullSink,
                        &mut plan,
                        &mut rng,
                        &stats,
                        now,
                    )
                    .expect("accept");
                stream
                    .flush(&NullSink, &plan, &mut rng, &stats, now)
                    .expect("flush");
            })
        });
    }
    group.finish();
}

fn ron_load(c: &mut Criterion) {
    let mut text = String::from(
        "(\n  routes: [(name: \"db\", protocol: Tcp, listen: \"127.0.0.1:0\", upstream: \"127.0.0.1:1\")],\n  faults: [\n",
    );
    for i in 0..1000 {
        text.push_str(&format!(
            "    (name: \"f{i}\", route: \"db\", enabled: false, probability: 0.5, direction: Both, kind: Latency(ms: {i}, jitter_ms: 5)),\n"
        ));
    }
    text.push_str("  ],\n)\n");
    let texts = [(PathBuf::from("big.ron"), text)];
    c.bench_function("ron_load_1000_faults", |b| {
        b.iter(|| black_box(load_texts(black_box(&texts), LOAD).expect("loads")))
    });
}

criterion_group!(benches, rule_matching, chunk_pipeline, ron_load);
criterion_main!(benches);
