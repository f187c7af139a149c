//! The `switchboard` binary: `check` and the start-up and stop of `run`.

use crate::support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::process::{BIN, start_run};

const GOOD: &str = r#"(
  routes: [(name: "db", protocol: Tcp, listen: "127.0.0.1:15432", upstream: "db:5432")],
  faults: [(name: "db-slow", route: "db", kind: Latency(ms: 10))],
)"#;

const BROKEN: &str = r#"(
  faults: [
    (name: "db-cut", route: "db",
     probability: 3.0, kind: Partition(mode: Refuse)),
  ],
)"#;

fn scratch(name: &str) -> support::Scratch {
    support::scratch_dir(&format!("cli-{name}"))
}

fn check(paths: &[&Path]) -> (bool, String) {
    let out = Command::new(BIN)
        .arg("check")
        .args(paths)
        .output()
        .expect("run check");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn check_reports_every_problem_with_file_line_col() {
    let dir = scratch("broken");
    std::fs::write(dir.join("a-good.ron"), GOOD).expect("write");
    std::fs::write(dir.join("b-broken.ron"), BROKEN).expect("write");
    std::fs::write(dir.join("c-syntax.ron"), "(routes: [(name: \"x\",, )])").expect("write");

    let (ok, text) = check(&[&dir]);
    assert!(!ok, "exit 1 on broken rules:\n{text}");
    let broken = dir.join("b-broken.ron");
    assert!(
        text.contains(&format!(
            "{}:4:6: probability 3 is outside",
            broken.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("{}:1:", dir.join("c-syntax.ron").display())),
        "{text}"
    );

    std::fs::remove_file(dir.join("b-broken.ron")).expect("rm");
    std::fs::remove_file(dir.join("c-syntax.ron")).expect("rm");
    let (ok, text) = check(&[&dir]);
    assert!(ok, "the good file alone passes:\n{text}");
    assert!(text.contains("1 route(s), 1 fault(s)"), "{text}");
}

#[test]
fn the_example_rules_are_valid() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let (ok, text) = check(&[&rules]);
    assert!(ok, "{text}");
    // The docker demo's rules are loaded on their own, in the switchboard container; its
    // drills beside them are checked with them.
    let (ok, text) = check(&[&rules.join("shop")]);
    assert!(ok, "{text}");
    assert!(
        text.contains("ok: drill orders-db-outage: 2 probe(s), 9 change(s)"),
        "{text}"
    );
    assert!(
        text.contains("ok: drill db-failover-read-only: 3 probe(s), 2 change(s)"),
        "{text}"
    );
}

/// A drill whose step names a fault the rules beside it do not have is refused with the
/// place; one that adds the fault first passes.
#[test]
fn check_validates_drill_files_against_the_rules_beside_them() {
    let dir = scratch("drill-check");
    std::fs::write(dir.join("rules.ron"), GOOD).expect("write rules");
    std::fs::create_dir_all(dir.join("drills")).expect("drills dir");
    let drill = |steps: &str| {
        format!(
            r#"(
  name: "d",
  baseline: "1s",
  observe: "1s",
  probes: [(name: "p", check: Tcp(addr: "127.0.0.1:1"), interval: "100ms", timeout: "1s",
            steady: (min_success: 1.0, window: "1s"))],
  steps: [{steps}],
)"#
        )
    };
    let file = dir.join("drills").join("d.ron");
    std::fs::write(
        &file,
        drill(r#"(at: "0s", action: Enable("no-such-fault"))"#),
    )
    .expect("write drill");
    let (ok, text) = check(&[&file]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("d.ron:7:37: the drill changes fault \"no-such-fault\""),
        "{text}"
    );
    let (ok, text) = check(&[&dir]);
    assert!(!ok, "the directory's drills are checked with it: {text}");

    std::fs::write(
        &file,
        drill(
            r#"(at: "0s", action: Add(name: "no-such-fault", route: "db", kind: Latency(ms: 5))),
           (at: "1s", action: Disable("no-such-fault"))"#,
        ),
    )
    .expect("write drill");
    let (ok, text) = check(&[&dir]);
    assert!(ok, "{text}");
    assert!(
        text.contains("ok: drill d: 1 probe(s), 2 change(s) over 1.00 s"),
        "{text}"
    );
}

/// A probe that says it is affected by a fault no step changes is refused with the place.
#[test]
fn check_refuses_a_probe_affected_by_a_fault_no_step_changes() {
    let dir = scratch("drill-affected-by");
    std::fs::write(dir.join("rules.ron"), GOOD).expect("write rules");
    std::fs::create_dir_all(dir.join("drills")).expect("drills dir");
    let file = dir.join("drills").join("d.ron");
    let drill = |affected: &str| {
        format!(
            r#"(
  name: "d",
  probes: [(name: "p", check: Tcp(addr: "127.0.0.1:1"), affected_by: ["{affected}"])],
  steps: [(at: "0s", action: Enable("db-slow"))],
)"#
        )
    };
    std::fs::write(&file, drill("db-partition")).expect("write drill");
    let (ok, text) = check(&[&file]);
    assert!(!ok, "{text}");
    assert!(
        text.contains(
            "d.ron:3:71: probe \"p\" is affected_by fault \"db-partition\", which no step changes"
        ),
        "{text}"
    );
    std::fs::write(&file, drill("db-slow")).expect("write drill");
    let (ok, text) = check(&[&file]);
    assert!(ok, "{text}");
}

/// `drill --dry-run` prints the expanded timeline and contacts no Switchboard.
#[test]
fn drill_dry_run_prints_the_timeline_and_injects_nothing() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/shop/drills/orders-db-outage.ron");
    let out = Command::new(BIN)
        .args(["drill", "--dry-run", "--url", "http://127.0.0.1:1"])
        .arg(&file)
        .output()
        .expect("drill --dry-run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("0.00 s  enable orders-partition"), "{text}");
    assert!(text.contains("10.00 s  set catalog-slow.ms = 60"), "{text}");
    assert!(
        text.contains("every fault is lifted; recovery is observed for 30.00 s"),
        "{text}"
    );
}

#[test]
fn run_refuses_broken_rules_and_names_the_place() {
    let dir = scratch("run-broken");
    std::fs::write(dir.join("broken.ron"), BROKEN).expect("write");
    let out = Command::new(BIN)
        .args(["run", "--rules"])
        .arg(&dir)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.ron:4:6:"), "{err}");
}

/// A rules directory that is not there is named once, with the system's reason once.
#[test]
fn run_names_a_missing_rules_directory_once() {
    let dir = scratch("run-missing");
    let missing = dir.join("not-there");
    let out = Command::new(BIN)
        .args(["run", "--control", "127.0.0.1:0", "--rules"])
        .arg(&missing)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert!(
        err.contains(&format!("{}: No such file", missing.display())),
        "{err}"
    );
}

#[test]
fn run_refuses_a_public_control_endpoint_without_a_token() {
    let dir = scratch("run-public");
    std::fs::write(dir.join("empty.ron"), "()").expect("write");
    let out = Command::new(BIN)
        .args(["run", "--control", "0.0.0.0:0", "--rules"])
        .arg(&dir)
        .env_remove("SWITCHBOARD_TOKEN")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a loopback address"), "{err}");
    assert!(err.contains("--token-file"), "{err}");

    // Said explicitly, it starts, with a warning: for a private compose network.
    let dir = dir.to_string_lossy().into_owned();
    let running = start_run(&[
        "--control",
        "0.0.0.0:0",
        "--insecure-no-token",
        "--rules",
        &dir,
    ]);
    assert!(
        running.control.starts_with("0.0.0.0:"),
        "{}",
        running.control
    );
}

#[test]
fn run_serves_its_control_endpoint_until_sigterm_then_exits_cleanly() {
    let dir = scratch("run-empty");
    std::fs::write(dir.join("empty.ron"), "()").expect("write");
    let dir_text = dir.to_string_lossy().into_owned();
    let mut running = start_run(&["--control", "127.0.0.1:0", "--rules", &dir_text]);

    let url = format!("http://{}", running.control);
    let status = Command::new(BIN)
        .args(["ctl", "--json", "--url", &url, "status"])
        .output()
        .expect("ctl");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(status["rules_dir"], dir_text.as_str());

    let killed = Command::new("kill")
        .args(["-TERM", &running.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = running.child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn run_loads_a_toxiproxy_config_with_its_toxics() {
    let dir = scratch("run-toxiproxy-config");
    std::fs::write(dir.join("empty.ron"), "()").expect("write");
    let config = dir.join("toxiproxy.json");
    std::fs::write(
        &config,
        r#"[{"name": "cache", "listen": "127.0.0.1:0", "upstream": "cache.internal:6379",
             "toxics": [{"type": "latency", "attributes": {"latency": 40}}]}]"#,
    )
    .expect("write");
    let (dir_text, config_text) = (
        dir.to_string_lossy().into_owned(),
        config.to_string_lossy().into_owned(),
    );
    let running = start_run(&[
        "--control",
        "127.0.0.1:0",
        "--rules",
        &dir_text,
        "--toxiproxy-config",
        &config_text,
    ]);
    let list = Command::new(BIN)
        .args([
            "ctl",
            "--json",
            "--url",
            &format!("http://{}", running.control),
            "list",
        ])
        .output()
        .expect("ctl");
    drop(running);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    assert_eq!(list["routes"][0]["name"], "cache");
    assert_eq!(list["routes"][0]["source"], "api");
    assert_eq!(list["faults"][0]["name"], "cache:latency_downstream");

    // A broken config stops start-up and says why.
    std::fs::write(
        &config,
        r#"[{"name": "x", "upstream": "h:1", "toxics": [{"type": "latency", "attributes": {"latency": -3}}]}]"#,
    )
    .expect("write");
    let out = Command::new(BIN)
        .args([
            "run",
            "--control",
            "127.0.0.1:0",
            "--rules",
            &dir_text,
            "--toxiproxy-config",
            &config_text,
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("toxiproxy.json") && err.contains("attribute latency"),
        "{err}"
    );
}

#[test]
fn a_ron_entry_that_is_not_a_file_is_skipped_with_a_warning() {
    let dir = scratch("not-a-file");
    std::fs::write(dir.join("good.ron"), GOOD).expect("write");
    std::fs::create_dir_all(dir.join("mounted-wrong.ron")).expect("mkdir");
    std::os::unix::fs::symlink(dir.join("gone.txt"), dir.join("dangling.ron")).expect("symlink");
    let (ok, text) = check(&[&dir]);
    assert!(ok, "{text}");
    assert!(text.contains("ok: 1 route(s), 1 fault(s)"), "{text}");
    for name in ["mounted-wrong.ron", "dangling.ron"] {
        assert!(
            text.lines()
                .any(|l| l.contains("not a regular file") && l.contains(name)),
            "no warning for {name}: {text}"
        );
    }
}
