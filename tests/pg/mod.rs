//! A real PostgreSQL server for tests (installed by `.ci/run` from Debian's `postgresql`):
//! its own cluster made by `initdb` in a scratch directory, on a free port, killed on drop.
//! Also a raw protocol client, for comparing answers message by message.
#![allow(dead_code)] // each test uses part of it

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The password of the `app` user, which logs in with SCRAM-SHA-256.
pub const PASSWORD: &str = "s3cret pass";

/// Rules with one `Postgres` route named `orders-db` in front of `upstream`, and `faults`.
pub fn pg_route(upstream: SocketAddr, faults: &str) -> String {
    format!(
        r#"(
  routes: [(name: "orders-db", protocol: Postgres, listen: "127.0.0.1:0", upstream: "{upstream}")],
  faults: [{faults}],
)"#
    )
}

/// The demo's read-only fault: every write fails as on a standby.
pub const READ_ONLY: &str = r#"(name: "read-only", route: "orders-db", when: (statement: ["@write"]),
    kind: SqlError(code: "25006", message: "cannot execute {statement} in a read-only transaction"))"#;

/// A running PostgreSQL cluster.
pub struct PgServer {
    child: Child,
    pub addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where Debian keeps the server's programs (`/usr/lib/postgresql/<major>/bin`).
pub fn bin_dir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut majors: Vec<PathBuf> = std::fs::read_dir(root)
        .expect("PostgreSQL must be installed (.ci/run installs it: apt-get install postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    majors.sort();
    majors
        .pop()
        .expect("an initdb under /usr/lib/postgresql/*/bin")
}

/// The server refuses to run as root; under root the tests run it as Debian's `postgres`.
fn command(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--clear-groups",
            "--",
        ])
        .arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Whether this process runs as root: `/proc/self` belongs to the process's effective user.
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn run(mut c: Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PgServer {
    /// A fresh cluster: user `app` (SCRAM password), user `raw` (trust, for raw protocol
    /// clients), databases `shop` and `readonly` (the latter with
    /// `default_transaction_read_only = on`), each with an `orders` table.
    pub async fn start(name: &str) -> PgServer {
        let bin = bin_dir();
        let dir = std::env::temp_dir().join(format!(
            "switchboard-postgres-server-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("pg dir");
        let data = dir.join("data");
        std::fs::write(dir.join("pw"), PASSWORD).expect("pw file");
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["-R", "postgres:postgres"]).arg(&dir);
                    c
                },
                "chown",
            );
        }
        let mut initdb = command(&bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "app", "-E", "UTF8", "--no-sync", "--auth-local=trust"])
            .args(["--auth-host=scram-sha-256", "--locale=C.UTF-8"])
            .arg(format!("--pwfile={}", dir.join("pw").display()));
        run(initdb, "initdb");
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhost all raw 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
        )
        .expect("pg_hba.conf");
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let mut postgres = command(&bin.join("postgres"));
            postgres
                .arg("-D")
                .arg(&data)
                .args(["-p", &port.to_string(), "-h", "127.0.0.1", "-k"])
                .arg(&dir)
                .args(["-c", "fsync=off", "-c", "max_connections=40"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let child = postgres.spawn().expect("postgres");
            let mut server = PgServer {
                child,
                addr: ([127, 0, 0, 1], port).into(),
                dir: dir.clone(),
            };
            if server.wait_ready().await {
                server.prepare().await;
                return server;
            }
            let _ = server.child.kill();
            let _ = server.child.wait();
            // Keep the directory for the next attempt.
            std::mem::forget(server);
        }
        panic!("postgres did not start on any of 5 free ports");
    }

    /// Waits until the server takes connections; false if it exited (its port was taken).
    async fn wait_ready(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if connect(self.addr, "postgres").await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "postgres on {} did not take connections within 30 s",
            self.addr
        );
    }

    async fn prepare(&self) {
        let (admin, _guard) = connect(self.addr, "postgres").await.expect("admin");
        // One statement per call: CREATE DATABASE cannot run in a multi-statement query.
        for sql in [
            "CREATE ROLE raw LOGIN",
            "CREATE DATABASE shop",
            "CREATE DATABASE readonly",
        ] {
            admin.batch_execute(sql).await.expect(sql);
        }
        for db in ["shop", "readonly"] {
            let (c, _guard) = connect(self.addr, db).await.expect("connect");
            c.batch_execute(
                "CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL);
                 INSERT INTO orders (item) VALUES ('first');
                 GRANT ALL ON ALL TABLES IN SCHEMA public TO raw;
                 GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO raw;",
            )
            .await
            .expect("schema");
        }
        admin
            .batch_execute("ALTER DATABASE readonly SET default_transaction_read_only = on")
            .await
            .expect("read-only database");
    }
}

/// Connects as `app` with its password (SCRAM) to `database` at `addr`, with the extended
/// protocol client tokio-postgres. The guard ends the connection task when dropped.
pub async fn connect(
    addr: SocketAddr,
    database: &str,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(addr.ip().to_string())
        .port(addr.port())
        .user("app")
        .password(PASSWORD)
        .dbname(database)
        .connect_timeout(Duration::from_secs(5));
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok((client, task))
}

/// One message from the server, as a test compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// An ErrorResponse: severity, SQLSTATE, message.
    Error(String, String, String),
    /// ReadyForQuery and the transaction status (`I`, `T`, `E`).
    Ready(char),
    /// CommandComplete and its tag.
    Complete(String),
    /// Any other message, by tag.
    Other(char),
}

/// A raw protocol client (user `raw`, no password): writes messages and reads the server's
/// answers one by one.
pub struct Raw {
    pub socket: TcpStream,
    buf: BytesMut,
}

impl Raw {
    /// Connects to `database` and reads up to the first ReadyForQuery.
    pub async fn connect(addr: SocketAddr, database: &str) -> std::io::Result<Raw> {
        Raw::over(TcpStream::connect(addr).await?, database).await
    }

    /// Starts up on `socket`, already connected, and reads up to the first ReadyForQuery.
    pub async fn over(socket: TcpStream, database: &str) -> std::io::Result<Raw> {
        let mut raw = Raw {
            socket,
            buf: BytesMut::new(),
        };
        let mut out = BytesMut::new();
        frontend::startup_message([("user", "raw"), ("database", database)], &mut out)?;
        raw.socket.write_all(&out).await?;
        // Authentication, parameters and the first ReadyForQuery; a refusal is an error and
        // then the end of the connection.
        loop {
            match raw.next().await? {
                Seen::Ready(_) => return Ok(raw),
                Seen::Error(_, code, message) => {
                    return Err(std::io::Error::other(format!("{code} {message}")));
                }
                _ => {}
            }
        }
    }

    /// Sends a simple query and reads its answers up to ReadyForQuery.
    pub async fn query(&mut self, sql: &str) -> std::io::Result<Vec<Seen>> {
        let mut out = BytesMut::new();
        frontend::query(sql, &mut out)?;
        self.socket.write_all(&out).await?;
        self.until_ready().await
    }

    /// Sends `bytes` as they are.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.socket.write_all(bytes).await
    }

    /// Reads messages up to and including a ReadyForQuery.
    pub async fn until_ready(&mut self) -> std::io::Result<Vec<Seen>> {
        let mut seen = Vec::new();
        loop {
            let message = self.next().await?;
            let ready = matches!(message, Seen::Ready(_));
            seen.push(message);
            if ready {
                return Ok(seen);
            }
        }
    }

    /// The next message; an UnexpectedEof error once the server closed the connection.
    pub async fn next(&mut self) -> std::io::Result<Seen> {
        let deadline = Duration::from_secs(10);
        loop {
            if self.buf.len() >= 5 {
                let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]])
                    as usize;
                if self.buf.len() > len {
                    let mut message = self.buf.split_to(len + 1);
                    let tag = message.get_u8();
                    message.advance(4);
                    return Ok(seen(tag, &message));
                }
            }
            let n = tokio::time::timeout(deadline, self.socket.read_buf(&mut self.buf))
                .await
                .map_err(|_| std::io::Error::other("no message within 10 s"))??;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

fn seen(tag: u8, body: &[u8]) -> Seen {
    let cstr =
        |b: &[u8]| String::from_utf8_lossy(b.split(|&c| c == 0).next().unwrap_or(b)).into_owned();
    match tag {
        b'E' => {
            let (mut severity, mut code, mut message) = Default::default();
            let mut rest = body;
            while let Some((&field, tail)) = rest.split_first() {
                if field == 0 {
                    break;
                }
                let value = cstr(tail);
                rest = &tail[value.len() + 1..];
                match field {
                    b'V' => severity = value,
                    b'C' => code = value,
                    b'M' => message = value,
                    _ => {}
                }
            }
            Seen::Error(severity, code, message)
        }
        b'Z' => Seen::Ready(char::from(body[0])),
        b'C' => Seen::Complete(cstr(body)),
        other => Seen::Other(char::from(other)),
    }
}
