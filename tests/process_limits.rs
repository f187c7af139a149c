//! The real binary at its limits (issue 16): out of file descriptors it backs off instead of
//! spinning, and at shutdown a second signal exits at once while connections left after the
//! grace period are reset, not closed as if they had finished.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use support::process::{BIN, Running, start_command, start_run, wait_for_line};

fn scratch(name: &str) -> support::Scratch {
    let dir = support::scratch_dir(name);
    std::fs::write(dir.join("empty.ron"), "()").expect("write");
    dir
}

/// Every line the child logged so far.
fn drain(lines: &Receiver<String>) -> Vec<String> {
    lines.try_iter().collect()
}

fn signal(child: &std::process::Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
}

fn wait_exit(running: &mut Running, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = running.child.try_wait().expect("wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "still running after {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A Toxiproxy-API proxy (port 0 is allowed there) in front of an echo server on a thread.
fn echo_route(control: &str) -> std::net::SocketAddr {
    let echo = std::net::TcpListener::bind("127.0.0.1:0").expect("bind echo");
    let echo_addr = echo.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in echo.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let body = format!(r#"{{"name": "echo", "listen": "127.0.0.1:0", "upstream": "{echo_addr}"}}"#);
    let mut c = TcpStream::connect(control).expect("connect control");
    write!(
        c,
        "POST /proxies HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut answer = String::new();
    c.read_to_string(&mut answer).expect("read");
    let json = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let value: serde_json::Value = serde_json::from_str(json).expect("json");
    value["listen"]
        .as_str()
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("no listen address in {answer}"))
}

fn round_trip(conn: &mut TcpStream) {
    conn.write_all(b"ping").expect("write");
    let mut buf = [0u8; 4];
    conn.read_exact(&mut buf).expect("echo");
    assert_eq!(&buf, b"ping");
}

#[test]
fn out_of_descriptors_the_control_endpoint_backs_off_and_logs_little() {
    let dir = scratch("fd-exhaustion");
    let mut command = Command::new("sh");
    command
        .args(["-c", r#"ulimit -n 64 && exec "$0" "$@""#, BIN, "run"])
        .args([
            "--rules",
            &dir.to_string_lossy(),
            "--control",
            "127.0.0.1:0",
        ]);
    let mut running = start_command(command);

    // More connections than descriptors: accept fails with EMFILE from some point on.
    let held: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(&running.control).expect("connect"))
        .collect();
    // A window to watch what it does while it cannot accept.
    std::thread::sleep(Duration::from_millis(1500));
    let logged = drain(&running.lines);
    let failures: Vec<&String> = logged
        .iter()
        .filter(|l| l.contains("accept failed"))
        .collect();
    assert!(
        !failures.is_empty(),
        "the limit was never reached; the test proves nothing: {logged:?}"
    );
    assert!(
        failures.len() <= 2,
        "{} accept-failure lines in 1.5 s (one per 5 s at most): {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    // Descriptors come back: the endpoint serves again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answered = TcpStream::connect(&running.control).ok().and_then(|mut c| {
            c.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .ok()?;
            let mut answer = String::new();
            c.read_to_string(&mut answer).ok()?;
            Some(answer)
        });
        if answered.is_some_and(|a| a.starts_with("HTTP/1.1 200")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the control endpoint never recovered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(&running.child, "TERM");
    assert!(wait_exit(&mut running, Duration::from_secs(10)).success());
}

/// `switchboard run --grace GRACE` with one connection open through it, proven to work.
fn running_with_a_connection(name: &str, grace: &str) -> (Running, TcpStream) {
    let dir = scratch(name);
    let running = start_run(&[
        "--rules",
        &dir.to_string_lossy(),
        "--control",
        "127.0.0.1:0",
        "--grace",
        grace,
    ]);
    let route = echo_route(&running.control);
    let mut conn = TcpStream::connect(route).expect("connect");
    round_trip(&mut conn);
    (running, conn)
}

#[test]
fn connections_left_after_the_grace_period_are_reset_and_counted() {
    let (mut running, mut conn) = running_with_a_connection("grace-reset", "300ms");
    signal(&running.child, "TERM");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 16];
    let read = conn.read(&mut buf);
    match read {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        Ok(n) => panic!("the client saw a clean end ({n} bytes), not a reset"),
    }
    let line = wait_for_line(&running.lines, "were reset");
    assert!(line.contains("connections=1"), "{line}");
    assert!(wait_exit(&mut running, Duration::from_secs(10)).success());
}

#[test]
fn a_second_stop_signal_exits_at_once() {
    let (mut running, _conn) = running_with_a_connection("second-signal", "10m");
    signal(&running.child, "TERM");
    wait_for_line(&running.lines, "draining open connections");
    signal(&running.child, "INT");
    let status = wait_exit(&mut running, Duration::from_secs(5));
    assert_eq!(status.code(), Some(130), "{status}");
}
