//! A 100 MiB body through an HTTP route streams: the proxy never holds it whole. In a file of
//! its own, so that no other test shares the process whose memory is measured.

use crate::support;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use support::{http_upstream, spawn_switchboard};

/// The process's resident memory. A reading that cannot be taken fails the test: a 0 would
/// make any growth look like none.
fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status is readable (Linux)");
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS line in /proc/self/status:\n{status}"))
}

async fn drain(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    url: String,
) -> usize {
    let request = Request::get(url).body(Empty::new()).expect("request");
    let mut body = client.request(request).await.expect("response").into_body();
    let mut total = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("frame").into_data() {
            total += data.len();
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mib_body_streams_without_growing_memory() {
    let upstream = http_upstream::start().await;
    let sb = spawn_switchboard(&format!(
        r#"(routes: [(name: "web", protocol: Http, listen: "127.0.0.1:0", upstream: "{}")])"#,
        upstream.url()
    ))
    .await;
    let addr = sb.addr("web").await;
    let client = Client::builder(TokioExecutor::new()).build_http();
    // Warm up pools and buffers first, so the measurement sees only growth.
    drain(&client, format!("http://{addr}/bytes/1048576")).await;
    let before = vm_rss_kib();
    let total = drain(
        &client,
        format!("http://{addr}/bytes/{}", 100 * 1024 * 1024),
    )
    .await;
    let grown = vm_rss_kib().saturating_sub(before);
    eprintln!("measured: 100 MiB streamed through an HTTP route, process RSS grew {grown} KiB");
    assert_eq!(total, 100 * 1024 * 1024);
    assert!(
        grown < 8 * 1024,
        "RSS grew {grown} KiB while streaming 100 MiB"
    );
}
