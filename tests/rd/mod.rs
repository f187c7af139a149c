//! A real redis-server for tests (installed by `.ci/run` from Debian's packages) on a free
//! port, and raw RESP helpers: pipelines written at once, replies read one by one.
#![allow(dead_code)] // each test file uses part of it

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A redis-server on a free port, killed on drop.
pub struct RedisServer {
    child: Child,
    pub addr: SocketAddr,
    _dir: crate::support::Scratch,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn start_redis() -> RedisServer {
    start_redis_with(&[]).await
}

/// Starts Redis with `extra` arguments (`--replicaof host port`, say).
pub async fn start_redis_with(extra: &[String]) -> RedisServer {
    // Redis cannot be told to pick its own port and report it, so take a free one from the
    // kernel. Another process may take it before Redis binds it; Redis then exits, and a new
    // port is tried.
    for _ in 0..5 {
        if let Some(server) = try_start_redis(extra).await {
            return server;
        }
    }
    panic!("redis-server did not start on any of 5 free ports");
}

/// Starts Redis on a port that was free a moment ago: `None` if it exited (the port was
/// taken meanwhile), the server once it answers PING otherwise.
pub async fn try_start_redis(extra: &[String]) -> Option<RedisServer> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let dir = crate::support::scratch_dir(&format!("redis-{port}"));
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(&*dir)
        .args(extra)
        .stdout(Stdio::null())
        .spawn()
        .expect(
            "redis-server must be installed (.ci/run installs it: apt-get install redis-server)",
        );
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut server = RedisServer {
        child,
        addr,
        _dir: dir,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let answers = tokio::task::spawn_blocking(move || match ping(addr) {
            Ok(_) => true,
            // A server with a password answers too.
            Err(e) => {
                e.code() == Some("NOAUTH") || e.kind() == redis::ErrorKind::AuthenticationFailed
            }
        })
        .await
        .unwrap_or(false);
        if answers {
            return Some(server);
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            eprintln!("redis-server on port {port} exited ({status}); trying another port");
            return None;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "redis-server on port {port} did not answer PING within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn connection(addr: SocketAddr) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(format!("redis://{addr}/"))?;
    let con = client.get_connection_with_timeout(Duration::from_secs(2))?;
    con.set_read_timeout(Some(Duration::from_secs(2)))?;
    Ok(con)
}

pub fn ping(addr: SocketAddr) -> redis::RedisResult<String> {
    redis::cmd("PING").query(&mut connection(addr)?)
}

pub fn timed_ping(con: &mut redis::Connection) -> (redis::RedisResult<String>, Duration) {
    let start = Instant::now();
    let result = redis::cmd("PING").query(con);
    (result, start.elapsed())
}

pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

/// Rules with one `Redis` route in front of `upstream`, and `faults`.
pub fn redis_route(upstream: SocketAddr, faults: &str) -> String {
    format!(
        r#"(
  routes: [(name: "cache", protocol: Redis, listen: "127.0.0.1:0", upstream: "{upstream}")],
  faults: [{faults}],
)"#
    )
}

/// Writes `commands` (inline commands, one per line) at once, as a pipelining client does, and
/// reads exactly `count` replies, each as its raw bytes.
pub async fn pipeline(addr: SocketAddr, commands: &[&str], count: usize) -> Vec<Vec<u8>> {
    use tokio::io::AsyncWriteExt;
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut wire = String::new();
    for command in commands {
        wire.push_str(command);
        wire.push_str("\r\n");
    }
    socket.write_all(wire.as_bytes()).await.expect("write");
    read_replies(&mut socket, count).await
}

/// The length of the first whole RESP2/RESP3 reply in `buf`, if it holds one.
pub fn reply_len(buf: &[u8]) -> Option<usize> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let head = std::str::from_utf8(&buf[1..line_end]).ok()?;
    let after = line_end + 2;
    match buf.first()? {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(after),
        b'$' | b'=' | b'!' => {
            let n: i64 = head.parse().ok()?;
            if n < 0 {
                return Some(after);
            }
            let end = after + usize::try_from(n).ok()? + 2;
            (buf.len() >= end).then_some(end)
        }
        b'*' | b'%' | b'~' | b'>' => {
            let n: i64 = head.parse().ok()?;
            let items = if buf[0] == b'%' { n * 2 } else { n };
            let mut at = after;
            for _ in 0..items.max(0) {
                at += reply_len(&buf[at..])?;
            }
            Some(at)
        }
        other => panic!("not a RESP reply: {:?}", *other as char),
    }
}

pub fn text(replies: &[Vec<u8>]) -> Vec<String> {
    replies
        .iter()
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .collect()
}

/// Reads exactly `count` replies from an open connection.
pub async fn read_replies(socket: &mut tokio::net::TcpStream, count: usize) -> Vec<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut replies = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        while let Some(len) = reply_len(&buf) {
            replies.push(buf.drain(..len).collect());
            if replies.len() == count {
                assert!(buf.is_empty(), "more than {count} replies");
                return replies;
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, socket.read(&mut chunk))
            .await
            .expect("replies within 10 s")
            .expect("read");
        assert!(n > 0, "connection closed after {} replies", replies.len());
        buf.extend_from_slice(&chunk[..n]);
    }
}
