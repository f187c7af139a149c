//! The real `switchboard` binary as a child process, with its log read line by line so that
//! waiting on it has a deadline.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// A running `switchboard run`, killed on drop.
pub struct Running {
    pub child: Child,
    pub lines: Receiver<String>,
    /// The control endpoint's address, as logged.
    pub control: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `switchboard run ARGS` and returns once it logged its control address and that it
/// is running.
pub fn start_run(args: &[&str]) -> Running {
    let mut command = Command::new(BIN);
    command.arg("run").args(args);
    start_command(command)
}

/// Starts `command` (a `switchboard run`, perhaps behind a shell that sets limits first) with
/// logs at info, and returns once it is running.
pub fn start_command(mut command: Command) -> Running {
    let mut child = command
        .env("RUST_LOG", "info")
        .env_remove("SWITCHBOARD_TOKEN")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start switchboard");
    let lines = log_lines(&mut child);
    let control = wait_for_line(&lines, "control endpoint listening")
        .split("addr=")
        .nth(1)
        .map(|a| a.trim().to_string())
        .expect("the control address is logged");
    wait_for_line(&lines, "switchboard running");
    Running {
        child,
        lines,
        control,
    }
}

/// The child's stderr, line by line, read on a thread.
pub fn log_lines(child: &mut Child) -> Receiver<String> {
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The first line containing `needle`, within 10 s.
pub fn wait_for_line(lines: &Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => continue,
            Err(e) => panic!("no log line with {needle:?} within 10 s: {e}"),
        }
    }
}
