//! What `switchboard drill` leaves on a real terminal: the progress bar is drawn while the
//! drill runs (tmux gives it a terminal) and is gone when the report is printed, whatever the
//! terminal's width, and no line of the report is erased.

use crate::support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::process::BIN;
use support::{route_with, scratch_dir, spawn_switchboard};

/// A tmux server of its own, so the test neither sees nor disturbs anyone else's; killed on
/// drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(name: &str) -> Tmux {
        Tmux {
            socket: format!("switchboard-{name}-{}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux must be installed (.ci/setup installs it: apt-get install tmux)");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The whole pane as a reader sees it: its history and the screen, one line per row.
    fn screen(&self) -> String {
        self.run(&[
            "capture-pane",
            "-p",
            "-J",
            "-t",
            "drill",
            "-S",
            "-",
            "-E",
            "-",
        ])
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

fn drill(addr: std::net::SocketAddr) -> String {
    format!(
        r#"(
  name: "terminal-check-with-a-name-long-enough-to-matter",
  baseline: "1s",
  observe: "3s",
  probes: [
    (name: "echo", check: Tcp(addr: "{addr}", send: "ping"), interval: "100ms", timeout: "500ms",
     steady: (min_success: 0.9, window: "500ms")),
    (name: "echo-again-with-another-long-name", check: Tcp(addr: "{addr}", send: "ping"),
     interval: "100ms", timeout: "500ms", steady: (min_success: 0.9, window: "500ms")),
  ],
  steps: [
    (at: "0s", action: Enable("slow")),
    (at: "0s", action: Hold("1500ms")),
  ],
)"#
    )
}

/// Runs the drill in a `columns`-wide terminal and returns what the terminal shows once it
/// has exited.
async fn drill_on_a_terminal(columns: u16) -> (String, std::path::PathBuf, support::Scratch) {
    let sb = spawn_switchboard(&route_with(
        "echo",
        support::upstream::echo().await,
        r#"(name: "slow", route: "echo", enabled: false, kind: Latency(ms: 20))"#,
    ))
    .await;
    let proxied = sb.addr("echo").await;
    let dir = scratch_dir(&format!("drill-terminal-{columns}"));
    let file = dir.join("drill.ron");
    std::fs::write(&file, drill(proxied)).expect("write the drill");
    let report = dir.join("report");
    let command = format!(
        "{} drill {} --url http://{} --report {}; echo \"drill exited $?\"; exec cat",
        BIN,
        file.display(),
        sb.control.local_addr(),
        report.display()
    );
    let tmux = Tmux::new(&format!("drill-{columns}"));
    let width = columns.to_string();
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "drill",
        "-x",
        &width,
        "-y",
        "40",
        "sh",
        "-c",
        &command,
    ]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut saw_the_bar = false;
    loop {
        let screen = tmux.screen();
        saw_the_bar |= bar_lines(&screen).next().is_some();
        if screen.contains("drill exited") {
            assert!(
                saw_the_bar,
                "the progress bar was never seen while the drill ran:\n{screen}"
            );
            return (screen, report, dir);
        }
        assert!(
            Instant::now() < deadline,
            "the drill did not end within 60 s:\n{screen}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Lines that are part of a progress frame: its phase (`3/9s injecting | …`), or its bar.
fn bar_lines(screen: &str) -> impl Iterator<Item = &str> {
    screen.lines().filter(|line| {
        [
            "s baseline |",
            "s injecting |",
            "s restoring |",
            "s observing recovery |",
        ]
        .iter()
        .any(|phase| line.contains(phase))
            || line.contains('█')
            || line.contains('░')
    })
}

fn check_the_end(screen: &str, report: &Path) {
    let leftovers: Vec<&str> = bar_lines(screen).collect();
    assert!(
        leftovers.is_empty(),
        "a progress frame stayed on the terminal: {leftovers:?}\n{screen}"
    );
    let lines: Vec<&str> = screen.lines().map(str::trim_end).collect();
    let end = lines
        .iter()
        .position(|l| l.starts_with("drill exited"))
        .expect("the exit line");
    assert_eq!(lines[end], "drill exited 0", "{screen}");
    let written: Vec<String> = ["report.json", "report.md", "report.svg"]
        .iter()
        .map(|f| format!("wrote {}", report.join(f).display()))
        .collect();
    assert_eq!(
        lines[end - 3..end],
        written,
        "the report's last lines are intact and in order:\n{screen}"
    );
    assert!(
        screen.contains("# Drill: terminal-check-with-a-name-long-enough-to-matter"),
        "the report's heading is on the terminal:\n{screen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_progress_bar_leaves_nothing_behind_at_160_columns() {
    let (screen, report, _dir) = drill_on_a_terminal(160).await;
    check_the_end(&screen, &report);
}

/// A terminal narrower than the progress line: it must be cut, not wrapped, or clearing it
/// would leave the wrapped part behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_progress_bar_leaves_nothing_behind_at_80_columns() {
    let (screen, report, _dir) = drill_on_a_terminal(80).await;
    check_the_end(&screen, &report);
}
