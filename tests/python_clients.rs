//! Toxiproxy's real Python clients, unchanged, against `switchboard run`. `.ci/run` installs
//! them from PyPI into `.venv-clients` (or set SWITCHBOARD_TEST_PYTHON to a Python that has
//! `toxiproxy-python` and `chaostoolkit-toxiproxy`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

fn python() -> PathBuf {
    if let Ok(python) = std::env::var("SWITCHBOARD_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-clients/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run `bash .ci/setup` (it installs toxiproxy-python and chaostoolkit-toxiproxy)",
        venv.display()
    );
    venv
}

/// `switchboard run` with no routes, its control endpoint on a free port. Killed on drop.
struct Server {
    child: Child,
    control: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_switchboard(name: &str) -> Server {
    let dir = std::env::temp_dir().join(format!("switchboard-py-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("empty.ron"), "()").expect("write");
    let mut child = Command::new(BIN)
        .args(["run", "--control", "127.0.0.1:0", "--rules"])
        .arg(&dir)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start switchboard");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let control = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("the control address is logged within 10 s");
        if let Some(addr) = line.split("control endpoint listening addr=").nth(1) {
            break addr.trim().to_string();
        }
    };
    Server { child, control }
}

fn run_script(script: &str) {
    let server = start_switchboard(script);
    let (host, port) = server.control.rsplit_once(':').expect("host:port");
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    let out = Command::new(python())
        .arg(scripts.join(script))
        .env("TOXIPROXY_HOST", host)
        .env("TOXIPROXY_PORT", port)
        .env("PYTHONPATH", &scripts)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains(": ok"),
        "{script} did not finish:\n{stdout}\n{stderr}"
    );
}

#[test]
fn toxiproxy_python_drives_switchboard() {
    run_script("toxiproxy_python_client.py");
}

#[test]
fn chaostoolkit_toxiproxy_drives_switchboard() {
    run_script("chaostoolkit_toxiproxy.py");
}
