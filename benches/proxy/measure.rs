//! The load generators: each measures one figure through one address.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

/// Round trips of 64 bytes on one connection: (p50, p99) in microseconds.
pub fn echo_round_trips(addr: SocketAddr, count: usize) -> (f64, f64) {
    echo_round_trips_every(addr, count, std::time::Duration::ZERO)
}

/// As [`echo_round_trips`], each round trip started `gap` after the previous one began (or at
/// once if it took longer), so that a connection left idle between trips is measured the way
/// a latency fault's 50 ms trips leave it.
pub fn echo_round_trips_every(
    addr: SocketAddr,
    count: usize,
    gap: std::time::Duration,
) -> (f64, f64) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let message = [7u8; 64];
    let mut back = [0u8; 64];
    let mut times = Vec::with_capacity(count);
    for i in 0..count + count / 10 {
        let started = Instant::now();
        let next = started + gap;
        stream.write_all(&message).expect("write");
        stream.read_exact(&mut back).expect("read");
        // The first tenth warms up caches and the connection; it is not counted.
        if i >= count / 10 {
            times.push(started.elapsed().as_secs_f64() * 1e6);
        }
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    percentiles(&mut times)
}

/// p50 and p99 of `values`, nearest-rank.
pub fn percentiles(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let rank = ((values.len() as f64) * q).ceil() as usize;
        values[rank.clamp(1, values.len()) - 1]
    };
    (at(0.50), at(0.99))
}

/// Gbit/s with iperf3 (`-t seconds`, one stream), or with the built-in sender into the sink.
pub fn throughput(addr: SocketAddr, seconds: u64, iperf3: bool) -> f64 {
    if iperf3 {
        let out = Command::new("iperf3")
            .args([
                "-c",
                &addr.ip().to_string(),
                "-p",
                &addr.port().to_string(),
                "-t",
                &seconds.to_string(),
                "-J",
            ])
            .output()
            .expect("iperf3");
        let json: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("iperf3 -J prints JSON");
        return json["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .expect("iperf3 reports a rate")
            / 1e9;
    }
    let mut stream = TcpStream::connect(addr).expect("connect");
    let chunk = vec![0u8; 128 * 1024];
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        stream.write_all(&chunk).expect("write");
        sent += chunk.len() as u64;
    }
    sent as f64 * 8.0 / started.elapsed().as_secs_f64() / 1e9
}

/// New connections per second, one client: connect, one 64-byte round trip, close.
pub fn connection_rate(addr: SocketAddr, seconds: u64) -> f64 {
    let started = Instant::now();
    let mut count = 0u64;
    let mut back = [0u8; 64];
    while started.elapsed() < Duration::from_secs(seconds) {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        stream.write_all(&[1u8; 64]).expect("write");
        stream.read_exact(&mut back).expect("read");
        count += 1;
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// Opens `count` connections through `addr`, each with one round trip so the forwarder has
/// dialed the upstream and moved data, and keeps them open until the result is dropped.
pub fn open_idle(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut back = [0u8; 64];
    (0..count)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).expect("connect");
            stream.write_all(&[1u8; 64]).expect("write");
            stream.read_exact(&mut back).expect("read");
            stream
        })
        .collect()
}

/// Requests/s and p99 (ms) from wrk -t2 -c50 -d10s.
pub fn wrk(addr: SocketAddr, seconds: u64) -> Option<(f64, f64)> {
    let out = Command::new("wrk")
        .args([
            "-t2",
            "-c50",
            &format!("-d{seconds}s"),
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

/// Reads one HTTP/1.1 response with a `Content-Length` body off a kept-alive connection.
fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) {
    buf.clear();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).expect("read head");
        assert!(n > 0, "the connection closed before a response");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a Content-Length");
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).expect("read body");
        assert!(n > 0, "the connection closed inside a body");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Sequential `GET /` requests on one kept-alive connection: (p50, p99) in microseconds,
/// after a tenth as many uncounted.
pub fn http_round_trips(addr: SocketAddr, count: usize) -> (f64, f64) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let request = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
    let mut buf = Vec::new();
    let mut times = Vec::with_capacity(count);
    for i in 0..count + count / 10 {
        let started = Instant::now();
        stream.write_all(request).expect("write");
        read_response(&mut stream, &mut buf);
        if i >= count / 10 {
            times.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    percentiles(&mut times)
}

/// Opens `count` HTTP connections through `addr`, each after one request answered, and keeps
/// them open (kept alive, idle) until the result is dropped.
pub fn open_idle_http(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut buf = Vec::new();
    (0..count)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).expect("connect");
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
                .expect("write");
            read_response(&mut stream, &mut buf);
            stream
        })
        .collect()
}
