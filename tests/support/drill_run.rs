//! Runs `switchboard drill` on a drill text against a control endpoint, as a user would, and
//! reads back what it wrote.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

/// What one run of the drill left.
pub struct Ran {
    pub exit: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub report: Value,
    pub markdown: String,
    pub svg: String,
}

impl Ran {
    /// The report's entry for probe `name`.
    pub fn probe(&self, name: &str) -> &Value {
        self.report["probes"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == name))
            .unwrap_or_else(|| panic!("probe {name} in the report"))
    }
}

/// Writes `text` into `dir` and runs it against the control endpoint at `control`.
pub async fn run(control: SocketAddr, dir: &Path, text: &str) -> Ran {
    let file = dir.join("drill.ron");
    std::fs::write(&file, text).expect("write the drill");
    let report_dir = dir.join("report");
    let out = tokio::process::Command::new(super::process::BIN)
        .arg("drill")
        .arg(&file)
        .arg("--url")
        .arg(format!("http://{control}"))
        .arg("--report")
        .arg(&report_dir)
        .env_remove("SWITCHBOARD_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .expect("run the drill");
    let read = |name: &str| std::fs::read_to_string(report_dir.join(name)).unwrap_or_default();
    Ran {
        exit: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report: serde_json::from_str(&read("report.json")).unwrap_or(Value::Null),
        markdown: read("report.md"),
        svg: read("report.svg"),
    }
}
