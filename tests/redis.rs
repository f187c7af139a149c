//! A real dependency behind the proxy: redis-server (installed by `.ci/run` from Debian's
//! packages), driven by the `redis` crate's client.

mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{route_with, spawn_switchboard};

/// A redis-server on a free port, killed on drop.
struct RedisServer {
    child: Child,
    addr: SocketAddr,
    _dir: std::path::PathBuf,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_redis() -> RedisServer {
    // Redis cannot be told to pick its own port and report it, so take a free one from the
    // kernel. Another process may take it before Redis binds it; Redis then exits, and a new
    // port is tried.
    for _ in 0..5 {
        if let Some(server) = try_start_redis().await {
            return server;
        }
    }
    panic!("redis-server did not start on any of 5 free ports");
}

/// Starts Redis on a port that was free a moment ago: `None` if it exited (the port was
/// taken meanwhile), the server once it answers PING otherwise.
async fn try_start_redis() -> Option<RedisServer> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let dir = std::env::temp_dir().join(format!("switchboard-redis-{port}"));
    std::fs::create_dir_all(&dir).expect("redis dir");
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
        .arg(&dir)
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
        let answers = tokio::task::spawn_blocking(move || ping(addr).is_ok())
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

fn connection(addr: SocketAddr) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(format!("redis://{addr}/"))?;
    let con = client.get_connection_with_timeout(Duration::from_secs(2))?;
    con.set_read_timeout(Some(Duration::from_secs(2)))?;
    Ok(con)
}

fn ping(addr: SocketAddr) -> redis::RedisResult<String> {
    redis::cmd("PING").query(&mut connection(addr)?)
}

fn timed_ping(con: &mut redis::Connection) -> (redis::RedisResult<String>, Duration) {
    let start = Instant::now();
    let result = redis::cmd("PING").query(con);
    (result, start.elapsed())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

#[tokio::test]
async fn redis_through_the_proxy_degrades_and_recovers() {
    let redis_server = start_redis().await;
    let rules = |faults: &str| route_with("redis", redis_server.addr, faults);
    let sb = spawn_switchboard(&rules("")).await;
    let proxy = sb.addr("redis").await;

    // Pass-through: PING and a round trip of data.
    let mut con = blocking(move || connection(proxy))
        .await
        .expect("connect through proxy");
    let (mut con, pong) = blocking(move || {
        let r: redis::RedisResult<String> = redis::cmd("PING").query(&mut con);
        let _: () = redis::cmd("SET")
            .arg("k")
            .arg("v".repeat(100_000))
            .query(&mut con)
            .expect("SET");
        let v: String = redis::cmd("GET").arg("k").query(&mut con).expect("GET");
        assert_eq!(v.len(), 100_000);
        (con, r)
    })
    .await;
    assert_eq!(pong.expect("PING"), "PONG");

    // Latency: every command on the open connection takes at least 100 ms.
    sb.set_rules(&rules(
        r#"(name: "slow", route: "redis", kind: Latency(ms: 100))"#,
    ))
    .await;
    let (mut con, (result, took)) = blocking(move || {
        let r = timed_ping(&mut con);
        (con, r)
    })
    .await;
    assert_eq!(result.expect("PING while slow"), "PONG");
    assert!(took >= Duration::from_millis(100), "PING took {took:?}");

    // Partition by reset: the client gets an error, on its open connection and on new ones.
    sb.set_rules(&rules(
        r#"(name: "cut", route: "redis", kind: Partition(mode: Reset))"#,
    ))
    .await;
    let (result, _) = blocking(move || timed_ping(&mut con)).await;
    assert!(
        result.is_err(),
        "PING through a reset partition: {result:?}"
    );
    let fresh = blocking(move || ping(proxy)).await;
    assert!(
        fresh.is_err(),
        "a new connection during the partition: {fresh:?}"
    );

    // Lifted: a new connection works again.
    sb.set_rules(&rules("")).await;
    let recovered = blocking(move || ping(proxy)).await;
    assert_eq!(recovered.expect("PING after recovery"), "PONG");
}
