//! Toxiproxy's real Python clients, unchanged, against `switchboard run`. `.ci/run` installs
//! them from PyPI into `.venv-clients` (or set SWITCHBOARD_TEST_PYTHON to a Python that has
//! `toxiproxy-python` and `chaostoolkit-toxiproxy`).

use crate::support;

use std::path::Path;
use std::process::Command;

use support::process::{Running, start_run};

/// `switchboard run` with no routes, its control endpoint on a free port.
fn start_switchboard(name: &str) -> (Running, support::Scratch) {
    let dir = support::scratch_dir(&format!("py-{name}"));
    std::fs::write(dir.join("empty.ron"), "()").expect("write");
    let server = start_run(&[
        "--control",
        "127.0.0.1:0",
        "--rules",
        &dir.to_string_lossy(),
    ]);
    (server, dir)
}

fn run_script(script: &str) {
    let (server, _rules) = start_switchboard(script);
    let (host, port) = server.control.rsplit_once(':').expect("host:port");
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    let out = Command::new(support::clients_python())
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
