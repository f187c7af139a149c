//! The integration-test harness: a Switchboard and its control endpoint on ephemeral ports,
//! upstreams to put behind it, an API client, and waiting on conditions with a deadline
//! instead of sleeping.
#![allow(dead_code)] // each test file uses part of the harness

pub mod api;
pub mod breaker_app;
pub mod datagram;
pub mod dns_wire;
pub mod dnsmasq;
pub mod drill_run;
pub mod durable_app;
pub mod failover_app;
pub mod from;
pub mod http_upstream;
pub mod process;
pub mod upstream;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use switchboard::control::{self, Auth, ControlHandle, ControlOptions};
use switchboard::rules::{LoadOptions, load_dir, load_texts};
use switchboard::store::FileRules;
use switchboard::telemetry::EventBus;
use switchboard::{Config, Switchboard};

/// Tests may use port 0 in listen addresses; files users write may not.
pub const TEST_LOAD: LoadOptions = LoadOptions {
    allow_ephemeral_listen: true,
};

/// A running Switchboard, its control endpoint, and its route addresses.
pub struct Harness {
    pub app: Switchboard,
    pub control: ControlHandle,
}

/// Parses RON rules the way a file would be, except that port 0 is allowed.
pub fn rules(ron: &str) -> FileRules {
    load_texts(&[(PathBuf::from("test.ron"), ron.to_string())], TEST_LOAD)
        .unwrap_or_else(|e| panic!("test rules are invalid:\n{e}"))
}

/// Starts a Switchboard on `ron` with a fixed seed.
pub async fn spawn_switchboard(ron: &str) -> Harness {
    spawn_seeded(ron, 7).await
}

/// Starts a Switchboard on `ron` with `seed`.
pub async fn spawn_seeded(ron: &str, seed: u64) -> Harness {
    start(
        rules(ron),
        Config {
            seed: Some(seed),
            ..Config::default()
        },
        Auth::open(),
    )
    .await
}

/// Starts a Switchboard that loads and watches `dir`.
pub async fn spawn_in_dir(dir: &Path) -> Harness {
    spawn_in_dir_with(dir, EventBus::new()).await
}

/// Starts a Switchboard that loads and watches `dir`, with events going to `events`.
pub async fn spawn_in_dir_with(dir: &Path, events: EventBus) -> Harness {
    let files =
        load_dir(dir, TEST_LOAD).unwrap_or_else(|e| panic!("rules in {}:\n{e}", dir.display()));
    let config = Config {
        seed: Some(7),
        rules_dir: Some(dir.to_path_buf()),
        events,
        load: TEST_LOAD,
        ..Config::default()
    };
    start(files, config, Auth::open()).await
}

/// Starts a Switchboard whose control endpoint enforces `auth`.
pub async fn start(files: FileRules, config: Config, auth: Auth) -> Harness {
    start_with(files, config, auth, ControlOptions::default()).await
}

/// Starts a Switchboard whose control endpoint enforces `auth` and `options`.
pub async fn start_with(
    files: FileRules,
    config: Config,
    auth: Auth,
    options: ControlOptions,
) -> Harness {
    let app = Switchboard::start(files, config)
        .await
        .expect("switchboard starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind control");
    let control =
        control::serve_with(listener, app.clone(), auth, options).expect("control endpoint");
    Harness { app, control }
}

impl Harness {
    /// Where `route` listens.
    pub async fn addr(&self, route: &str) -> SocketAddr {
        self.app
            .route_addr(route)
            .await
            .unwrap_or_else(|| panic!("route {route} is not bound"))
    }

    /// Replaces the file rules, as a reload would. Port-0 routes keep their port as long as
    /// their `listen` text is unchanged.
    pub async fn set_rules(&self, ron: &str) {
        self.app.apply_files(rules(ron)).await.expect("rules apply");
    }

    /// A client of the control endpoint.
    pub fn api(&self) -> api::Api {
        api::Api::new(self.control.local_addr(), None)
    }
}

/// One TCP route named `name` in front of `upstream`, plus `faults` (RON list items).
pub fn route_with(name: &str, upstream: SocketAddr, faults: &str) -> String {
    format!(
        r#"(
  routes: [(name: "{name}", protocol: Tcp, listen: "127.0.0.1:0", upstream: "{upstream}")],
  faults: [{faults}],
)"#
    )
}

/// An upstream that answers whatever it is sent with an HTTP error: bytes that are not the
/// protocol a database route expects.
pub async fn garbage_upstream() -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = upstream.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = upstream.accept().await {
            let mut buf = [0u8; 256];
            let _ = socket.read(&mut buf).await;
            let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            let _ = socket.read(&mut buf).await;
        }
    });
    addr
}

/// A fresh scratch directory for one test.
pub fn scratch_dir(name: &str) -> Scratch {
    tempfile::Builder::new()
        .prefix(&format!("switchboard-{name}-"))
        .tempdir()
        .map(Scratch)
        .expect("scratch dir")
}

/// A directory in the temporary directory, removed with everything in it when dropped, so a
/// test run leaves nothing behind, pass or fail.
pub struct Scratch(tempfile::TempDir);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<std::ffi::OsStr> for Scratch {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.path().as_os_str()
    }
}

/// Asserts that the rules file `text` (as `t.ron`) is rejected with `file:line:col` and a
/// message containing `needle`.
pub fn assert_rejected(text: &str, needle: &str) {
    let err = load_texts(
        &[(PathBuf::from("t.ron"), text.to_string())],
        LoadOptions::default(),
    )
    .expect_err("rejected");
    let message = err.to_string();
    assert!(message.starts_with("t.ron:"), "{message}");
    assert!(message.contains(needle), "{message} should say {needle}");
}

/// Polls `condition` until it holds or `deadline` passes; panics with `what` then.
pub async fn eventually<F, Fut>(deadline: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if condition().await {
            return;
        }
        if tokio::time::Instant::now() >= end {
            panic!("timed out after {deadline:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A port free for both UDP and TCP on 127.0.0.1 a moment ago, for the binary's rules files,
/// which need fixed ports.
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP");
}

/// The Python that `.ci/setup` fills with the test clients (Toxiproxy's, selenium) in
/// `.venv-clients`, or SWITCHBOARD_TEST_PYTHON when set.
pub fn clients_python() -> PathBuf {
    if let Ok(python) = std::env::var("SWITCHBOARD_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-clients/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run `bash .ci/setup` (it installs the Python test clients and selenium)",
        venv.display()
    );
    venv
}
