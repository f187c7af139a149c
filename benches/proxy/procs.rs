//! The processes a run compares: Switchboard (the release binary), HAProxy, nginx and socat,
//! each forwarding to the same upstreams; all on ports picked free for this run.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process, killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

pub fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{addr} never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn switchboard_binary() -> PathBuf {
    let status = Command::new("cargo")
        .args(["build", "--release", "--quiet", "--bin", "switchboard"])
        .status()
        .expect("cargo build");
    assert!(status.success(), "building switchboard failed");
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/switchboard")
}

/// What one forwarder listens on, per workload (None where it does not do that workload).
pub struct Listeners {
    pub bulk: Option<SocketAddr>,
    pub echo: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
}

/// Switchboard's routes that carry a fault, for the figures only it has.
pub struct Faulted {
    /// TCP, 50 ms latency on the way back.
    pub latency: SocketAddr,
    /// HTTP, `Delay(ms: 50)`.
    pub delay: SocketAddr,
    /// HTTP, `ResponseDelay(ms: 50)`.
    pub response_delay: SocketAddr,
    /// HTTP, 1,000 faults loaded of which none matches a `GET /`.
    pub many_rules: SocketAddr,
}

/// How many faults the rule-cost route carries.
pub const LOADED_FAULTS: usize = 1000;

/// 1,000 enabled request faults on `route` whose paths no `GET /` matches, as a large shared
/// rule set would hold for other services' requests.
fn unmatched_faults(route: &str) -> String {
    (0..LOADED_FAULTS)
        .map(|i| {
            format!(
                r#"(name: "never-{i}", route: "{route}", when: (method: "POST", path: "/api/items/{i}/detail"), kind: Abort(status: 503)),"#
            )
        })
        .collect()
}

/// The upstreams every forwarder forwards to.
#[derive(Clone, Copy)]
pub struct Upstreams {
    pub bulk: SocketAddr,
    pub echo: SocketAddr,
    pub http: SocketAddr,
}

/// Switchboard with one TCP route per workload, an HTTP route, and the routes of
/// [`Faulted`].
pub fn switchboard(up: Upstreams, dir: &Path) -> (Proc, Listeners, Faulted) {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).expect("rules dir");
    let (bulk, echo, http, slow) = (free_port(), free_port(), free_port(), free_port());
    let (delay, response_delay, many) = (free_port(), free_port(), free_port());
    std::fs::write(
        rules.join("bench.ron"),
        format!(
            r#"(
  routes: [
    (name: "bulk", protocol: Tcp, listen: "127.0.0.1:{bulk}", upstream: "{}"),
    (name: "echo", protocol: Tcp, listen: "127.0.0.1:{echo}", upstream: "{}"),
    (name: "slow", protocol: Tcp, listen: "127.0.0.1:{slow}", upstream: "{}"),
    (name: "web", protocol: Http, listen: "127.0.0.1:{http}", upstream: "http://{}"),
    (name: "web-delay", protocol: Http, listen: "127.0.0.1:{delay}", upstream: "http://{}"),
    (name: "web-response-delay", protocol: Http, listen: "127.0.0.1:{response_delay}", upstream: "http://{}"),
    (name: "web-many-rules", protocol: Http, listen: "127.0.0.1:{many}", upstream: "http://{}"),
  ],
  faults: [
    (name: "50ms", route: "slow", direction: Downstream, kind: Latency(ms: 50)),
    (name: "delay-50ms", route: "web-delay", kind: Delay(ms: 50)),
    (name: "response-delay-50ms", route: "web-response-delay", kind: ResponseDelay(ms: 50)),
    {}
  ],
)"#,
            up.bulk,
            up.echo,
            up.echo,
            up.http,
            up.http,
            up.http,
            up.http,
            unmatched_faults("web-many-rules"),
        ),
    )
    .expect("rules");
    let child = Command::new(switchboard_binary())
        .args(["run", "--control", "127.0.0.1:0", "--rules"])
        .arg(&rules)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()
        .expect("switchboard");
    for port in [bulk, echo, http, slow, delay, response_delay, many] {
        wait_listening(local(port));
    }
    let listeners = Listeners {
        bulk: Some(local(bulk)),
        echo: Some(local(echo)),
        http: Some(local(http)),
    };
    let faulted = Faulted {
        latency: local(slow),
        delay: local(delay),
        response_delay: local(response_delay),
        many_rules: local(many),
    };
    (Proc(child), listeners, faulted)
}

/// nginx (Debian's `nginx-light`) with one worker as an HTTP reverse proxy, keeping its
/// upstream connections alive as it is run in front of services.
pub fn nginx(up: Upstreams, dir: &Path) -> Option<(Proc, Listeners)> {
    if !installed("nginx") {
        return None;
    }
    let http = free_port();
    let connections = open_file_limit().saturating_sub(200) / 2;
    let root = dir.join("nginx");
    std::fs::create_dir_all(&root).expect("nginx dir");
    let config = root.join("nginx.conf");
    std::fs::write(
        &config,
        format!(
            // master_process off: one process that serves, so that the RSS read from its pid
            // is the memory the connections hold (a master's stays flat while its worker grows).
            "worker_processes 1;\nmaster_process off;\ndaemon off;\nuser root;\npid {root}/nginx.pid;\n\
             error_log {root}/error.log warn;\nworker_rlimit_nofile {files};\n\
             events {{ worker_connections {connections}; }}\n\
             http {{\n  access_log off;\n\
               client_body_temp_path {root}/body;\n  proxy_temp_path {root}/proxy;\n\
               fastcgi_temp_path {root}/fastcgi;\n  uwsgi_temp_path {root}/uwsgi;\n  scgi_temp_path {root}/scgi;\n\
               keepalive_requests 1000000;\n\
               upstream web {{ server {upstream}; keepalive 64; }}\n\
               server {{\n    listen 127.0.0.1:{http};\n\
                 location / {{ proxy_pass http://web; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}\n  }}\n}}\n",
            root = root.display(),
            files = connections * 2 + 100,
            upstream = up.http,
        ),
    )
    .expect("nginx config");
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&root)
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    wait_listening(local(http));
    Some((
        Proc(child),
        Listeners {
            bulk: None,
            echo: None,
            http: Some(local(http)),
        },
    ))
}

/// HAProxy with one thread: TCP mode for the byte workloads, HTTP mode for HTTP.
pub fn haproxy(up: Upstreams, dir: &Path) -> Option<(Proc, Listeners)> {
    if !installed("haproxy") {
        return None;
    }
    let (bulk, echo, http) = (free_port(), free_port(), free_port());
    // HAProxy refuses to start when maxconn needs more descriptors than it may open.
    let maxconn = open_file_limit().saturating_sub(200) / 2;
    let config = dir.join("haproxy.cfg");
    std::fs::write(
        &config,
        format!(
            "global\n  nbthread 1\n  maxconn {maxconn}\n\
             defaults\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n\
             listen bulk\n  mode tcp\n  bind 127.0.0.1:{bulk}\n  server s {}\n\
             listen echo\n  mode tcp\n  bind 127.0.0.1:{echo}\n  server s {}\n\
             listen web\n  mode http\n  option http-keep-alive\n  bind 127.0.0.1:{http}\n  server s {}\n",
            up.bulk, up.echo, up.http
        ),
    )
    .expect("haproxy config");
    let log = std::fs::File::create(dir.join("haproxy.log")).expect("haproxy log");
    let child = Command::new("haproxy")
        .arg("-f")
        .arg(&config)
        .arg("-db")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .ok()?;
    for port in [bulk, echo, http] {
        wait_listening(local(port));
    }
    Some((
        Proc(child),
        Listeners {
            bulk: Some(local(bulk)),
            echo: Some(local(echo)),
            http: Some(local(http)),
        },
    ))
}

/// socat, one process per listener, forking per connection (how it is used as a proxy).
pub fn socat(up: Upstreams) -> Option<(Vec<Proc>, Listeners)> {
    if !installed("socat") {
        return None;
    }
    let mut procs = Vec::new();
    let mut listen = |upstream: SocketAddr| {
        let port = free_port();
        let child = Command::new("socat")
            .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"))
            .arg(format!("TCP:{upstream},nodelay"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat");
        procs.push(Proc(child));
        wait_listening(local(port));
        local(port)
    };
    let bulk = listen(up.bulk);
    let echo = listen(up.echo);
    Some((
        procs,
        Listeners {
            bulk: Some(bulk),
            echo: Some(echo),
            http: None,
        },
    ))
}

/// A process's resident set, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// This process's open-file limit (children inherit it).
pub fn open_file_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<usize>().ok())
        })
        .unwrap_or(1024)
}
