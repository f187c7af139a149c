//! How fast a change reaches an open connection: from a rules-file save (through the watcher,
//! debounce and reload), and from a PATCH on the control endpoint.
//!
//! Each sample opens an idle connection through the proxy, switches on a
//! `Partition(mode: Reset)` and times how long until that connection sees the RST; then
//! switches it off again. Run with `cargo bench --bench control`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use switchboard::control::{self, Auth};
use switchboard::rules::{LoadOptions, load_dir};
use switchboard::{Config, Switchboard};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SAMPLES: usize = 50;

async fn echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

fn faults(enabled: bool) -> String {
    format!(
        r#"(faults: [(name: "cut", route: "r", enabled: {enabled}, kind: Partition(mode: Reset))])"#
    )
}

/// An open, idle connection, proven to work.
async fn open_connection(addr: SocketAddr) -> TcpStream {
    let mut c = TcpStream::connect(addr).await.expect("connect");
    c.write_all(b"x").await.expect("write");
    let mut b = [0u8; 1];
    c.read_exact(&mut b).await.expect("echo");
    c
}

/// Waits until `c` is reset; returns when. A close, a byte or silence is not what
/// `Partition(mode: Reset)` promises, and stops the bench rather than timing it.
async fn until_cut(c: &mut TcpStream) -> Instant {
    let mut b = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(10), c.read(&mut b))
        .await
        .expect("cut within 10 s");
    let at = Instant::now();
    match read {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => at,
        other => panic!("expected an RST from Partition(mode: Reset), got {other:?}"),
    }
}

fn summary(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what:<34} median {:>7.2} ms   p90 {:>7.2} ms   worst {:>7.2} ms   ({} samples)",
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() * 9 / 10]),
        ms(samples[samples.len() - 1]),
        samples.len()
    );
}

async fn save_to_effect(dir: &Path, addr: SocketAddr, app: &Switchboard) -> Vec<Duration> {
    let mut samples = Vec::new();
    for _ in 0..SAMPLES {
        let mut c = open_connection(addr).await;
        let saved = Instant::now();
        std::fs::write(dir.join("faults.ron"), faults(true)).expect("write");
        samples.push(until_cut(&mut c).await - saved);
        std::fs::write(dir.join("faults.ron"), faults(false)).expect("write");
        // Wait for the switch-off to be in force before the next sample.
        let deadline = Instant::now() + Duration::from_secs(10);
        while app.fault("cut").map(|f| f.fault.enabled).unwrap_or(true) {
            assert!(Instant::now() < deadline, "switch-off not applied");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    samples
}

async fn patch_to_effect(control: SocketAddr, addr: SocketAddr) -> Vec<Duration> {
    let mut samples = Vec::new();
    for _ in 0..SAMPLES {
        let mut c = open_connection(addr).await;
        let sent = Instant::now();
        patch(control, true).await;
        samples.push(until_cut(&mut c).await - sent);
        patch(control, false).await;
    }
    samples
}

/// A PATCH over a fresh HTTP/1.1 connection, as `curl` would send it.
async fn patch(control: SocketAddr, enabled: bool) {
    let body = format!(r#"{{"enabled": {enabled}}}"#);
    let request = format!(
        "PATCH /v1/faults/cut HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut s = TcpStream::connect(control).await.expect("control");
    s.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.expect("answer");
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::main]
async fn main() {
    let dir =
        std::env::temp_dir().join(format!("switchboard-bench-control-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let upstream = echo().await;
    std::fs::write(
        dir.join("routes.ron"),
        format!(r#"(routes: [(name: "r", protocol: Tcp, listen: "127.0.0.1:0", upstream: "{upstream}")])"#),
    )
    .expect("write");
    std::fs::write(dir.join("faults.ron"), faults(false)).expect("write");
    let load = LoadOptions {
        allow_ephemeral_listen: true,
    };
    let files = load_dir(&dir, load).expect("rules");
    let config = Config {
        rules_dir: Some(dir.clone()),
        load,
        ..Config::default()
    };
    let app = Switchboard::start(files, config).await.expect("start");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let control = control::serve(listener, app.clone(), Auth::open()).expect("control");
    let addr = app.route_addr("r").await.expect("route");

    println!("change → effect on an open idle connection (Partition(mode: Reset) switched on)");
    summary(
        "file save → RST (50 ms debounce)",
        save_to_effect(&dir, addr, &app).await,
    );
    summary(
        "PATCH /v1/faults → RST",
        patch_to_effect(control.local_addr(), addr).await,
    );
    let _ = std::fs::remove_dir_all(&dir);
}
