//! HTTP keep-alive throughput and latency through an HTTP route with no fault, against the same
//! upstream directly and through HAProxy in HTTP mode, measured in one run with wrk.
//!
//! `cargo bench --bench http` (needs `wrk` and `haproxy`: `apt-get install wrk haproxy`; a
//! missing one is skipped and said so). The upstream answers a 612-byte body, in this process
//! on a runtime of its own; Switchboard is the release binary, HAProxy runs one thread.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

const BODY: [u8; 612] = [b'x'; 612];

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The upstream, on one thread of its own.
fn start_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service = service_fn(|_request| async {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(&BODY))))
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    addr
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{addr} never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn switchboard_binary() -> PathBuf {
    let status = Command::new("cargo")
        .args(["build", "--release", "--quiet", "--bin", "switchboard"])
        .status()
        .expect("cargo build");
    assert!(status.success(), "building switchboard failed");
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/switchboard")
}

fn start_switchboard(upstream: SocketAddr, dir: &Path) -> (Proc, SocketAddr) {
    let port = free_port();
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).expect("rules dir");
    std::fs::write(
        rules.join("bench.ron"),
        format!(r#"(routes: [(name: "web", protocol: Http, listen: "127.0.0.1:{port}", upstream: "http://{upstream}")])"#),
    )
    .expect("rules");
    let child = Command::new(switchboard_binary())
        .args(["run", "--control", "127.0.0.1:0", "--rules"])
        .arg(&rules)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()
        .expect("switchboard");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_listening(addr);
    (Proc(child), addr)
}

fn start_haproxy(upstream: SocketAddr, dir: &Path) -> Option<(Proc, SocketAddr)> {
    let port = free_port();
    let config = dir.join("haproxy.cfg");
    std::fs::write(
        &config,
        format!(
            "global\n  nbthread 1\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n  option http-keep-alive\nfrontend f\n  bind 127.0.0.1:{port}\n  default_backend b\nbackend b\n  server s {upstream}\n"
        ),
    )
    .expect("haproxy config");
    let child = Command::new("haproxy")
        .arg("-f")
        .arg(&config)
        .arg("-db")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_listening(addr);
    Some((Proc(child), addr))
}

/// Requests/s and p99 latency (ms) from wrk.
fn wrk(addr: SocketAddr) -> Option<(f64, f64)> {
    let out = Command::new("wrk")
        .args([
            "-t2",
            "-c50",
            "-d10s",
            "--latency",
            &format!("http://{addr}/"),
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let p99 = text
        .lines()
        .find(|l| l.trim_start().starts_with("99%"))?
        .split_whitespace()
        .nth(1)?;
    Some((rps, to_ms(p99)?))
}

fn to_ms(value: &str) -> Option<f64> {
    let (number, unit) = value.split_at(value.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        _ => return None,
    })
}

fn main() {
    if Command::new("wrk").arg("--version").output().is_err() {
        println!("wrk is not installed (apt-get install wrk): nothing to measure");
        return;
    }
    let dir = std::env::temp_dir().join(format!("switchboard-bench-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let upstream = start_upstream();
    wait_listening(upstream);
    let (_sb, switchboard) = start_switchboard(upstream, &dir);
    let haproxy = start_haproxy(upstream, &dir);

    println!("HTTP keep-alive, 612-byte body, wrk -t2 -c50 -d10s, one run");
    println!(
        "{:<34} {:>12} {:>10} {:>10}",
        "path", "req/s", "ratio", "p99 ms"
    );
    let direct = wrk(upstream).expect("wrk against the upstream");
    let row = |name: &str, (rps, p99): (f64, f64)| {
        println!(
            "{name:<34} {rps:>12.0} {:>10.2} {p99:>10.2}",
            rps / direct.0
        );
    };
    row("direct", direct);
    match &haproxy {
        Some((_, addr)) => row(
            "HAProxy 1 thread, HTTP mode",
            wrk(*addr).expect("wrk against HAProxy"),
        ),
        None => println!("{:<34} not installed (apt-get install haproxy)", "HAProxy"),
    }
    row(
        "Switchboard HTTP route, no fault",
        wrk(switchboard).expect("wrk against Switchboard"),
    );
    let _ = std::fs::remove_dir_all(&dir);
}
