//! Game-day drills end to end: the `switchboard drill` binary drives a Switchboard's control
//! endpoint while probing an app with a known circuit breaker (tests/support/breaker_app.rs),
//! and its report must show what that app really does.

use crate::support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use support::process::BIN;
use support::{Harness, breaker_app, eventually, route_with, scratch_dir, spawn_switchboard};

/// The app behind its database route, with the partition fault switched off.
async fn shop() -> (Harness, SocketAddr) {
    let db = support::upstream::echo().await;
    let sb = spawn_switchboard(&route_with(
        "orders-db",
        db,
        r#"(name: "orders-db-partition", route: "orders-db", enabled: false, kind: Partition(mode: Refuse))"#,
    ))
    .await;
    let app = breaker_app::start(sb.addr("orders-db").await).await;
    (sb, app)
}

/// A drill of the app: catalog must stay up, orders must answer the planned 503 while the
/// database is partitioned for `hold`, then recover.
fn drill_text(app: SocketAddr, hold: &str, extra: &str) -> String {
    format!(
        r#"(
  name: "orders-db-outage",
  description: "The orders database is unreachable; the catalog keeps browsing.",
  baseline: "1s",
  observe: "8s",
  probes: [
    (name: "catalog", check: Http(url: "http://{app}/catalog"), interval: "100ms",
     timeout: "500ms", steady: (min_success: 0.99, window: "1s")),
    (name: "orders", check: Http(url: "http://{app}/orders", body_contains: "order placed"),
     interval: "100ms", timeout: "500ms", steady: (min_success: 1.0, window: "1s"),
     affected_by: ["orders-db-partition"],
     degraded: (status: [503], body_contains: "temporarily unavailable")),
  ],
  {extra}
  steps: [
    (at: "0s", action: Enable("orders-db-partition")),
    (at: "0s", action: Hold("{hold}")),
  ],
)"#
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the drill");
    path
}

fn drill_command(sb: &Harness, file: &Path, report: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(BIN);
    command
        .arg("drill")
        .arg(file)
        .arg("--url")
        .arg(format!("http://{}", sb.control.local_addr()))
        .arg("--report")
        .arg(report)
        .env_remove("SWITCHBOARD_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

fn read_report(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json is written");
    serde_json::from_str(&text).expect("report.json is JSON")
}

fn probe<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["probes"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("probe {name} in the report"))
}

async fn fault_enabled(sb: &Harness, name: &str) -> bool {
    sb.api().get(&format!("/v1/faults/{name}")).await.body["enabled"] == true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_drill_measures_the_recovery_the_app_really_has() {
    let (sb, app) = shop().await;
    let dir = scratch_dir("drill-partition");
    let file = write(&dir, "outage.ron", &drill_text(app, "2s", ""));
    let report_dir = dir.join("report");
    let out = drill_command(&sb, &file, &report_dir)
        .output()
        .await
        .expect("run the drill");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let report = read_report(&report_dir);
    assert_eq!(report["schema"], "switchboard.drill.report/1");
    assert_eq!(report["outcome"], "completed");
    assert_eq!(report["verdict"], "degraded_as_planned");
    assert_eq!(report["seed"], 7);

    let catalog = probe(&report, "catalog");
    assert_eq!(catalog["verdict"], "passed", "{catalog:#}");
    assert_eq!(catalog["measures"]["failed_samples"], 0);

    let orders = probe(&report, "orders");
    let m = &orders["measures"];
    assert_eq!(orders["verdict"], "degraded_as_planned", "{m:#}");
    // The breaker opens on the first failed health check (every 50 ms); a probe every 100 ms
    // sees it within both intervals and a little scheduling.
    let detect = m["detect_ms"].as_f64().expect("degradation detected");
    assert!(detect < 400.0, "detected after {detect} ms");
    assert_eq!(m["degraded_ms"], m["detect_ms"]);
    assert!(
        m["degraded_share"].as_f64().is_some_and(|s| s >= 0.95),
        "{m:#}"
    );
    // The app's known behaviour: orders come back 2 s after the database does.
    let recovery = m["recovery_ms"].as_f64().expect("orders recovered");
    assert!(
        (2000.0..3000.0).contains(&recovery),
        "recovery {recovery} ms; the breaker closes 2 s after the database is back"
    );

    // Everything is back as it was.
    assert!(!fault_enabled(&sb, "orders-db-partition").await);
    let windows = report["fault_windows"].as_array().expect("fault windows");
    assert_eq!(windows.len(), 1);
    assert_eq!(windows[0]["fault"], "orders-db-partition");

    // The human summary and the chart.
    let md = std::fs::read_to_string(report_dir.join("report.md")).expect("report.md");
    assert!(md.contains("| orders | degraded as planned |"), "{md}");
    assert!(md.contains("| catalog | passed |"), "{md}");
    assert!(stdout.contains("| orders | degraded as planned |"));
    let svg = std::fs::read_to_string(report_dir.join("report.svg")).expect("report.svg");
    let doc = roxmltree::Document::parse(&svg).expect("report.svg parses as XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    assert!(texts.iter().any(|t| t.contains("orders")), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("lifted")), "{texts:?}");
    // The fault's lane on both panels, its window shaded on the orders panel only (the one
    // affected by it), and the series per panel.
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.trim() == "fault orders-db-partition")
            .count(),
        2,
        "{texts:?}"
    );
    let shades = doc
        .descendants()
        .filter(|n| {
            n.has_tag_name("rect")
                && n.attribute("fill").is_some_and(|f| f.contains("#D62728"))
                && n.attribute("opacity").is_some_and(|o| o.starts_with("0.1"))
        })
        .count();
    assert_eq!(shades, 1, "{svg}");
    assert!(
        doc.descendants()
            .filter(|n| n.has_tag_name("polyline"))
            .count()
            >= 4
    );

    // The same drill compared against a run whose orders recovered in 100 ms: a regression.
    let mut faster = report.clone();
    faster["probes"][1]["measures"]["recovery_ms"] = 100.0.into();
    let old = write(&dir, "old.json", &faster.to_string());
    let out = drill_command(&sb, &file, &dir.join("second"))
        .arg("--compare")
        .arg(&old)
        .arg("--budget")
        .arg("300ms")
        .output()
        .await
        .expect("run the drill again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("REGRESSION: recovery 0.10 s"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_condition_rolls_the_drill_back_and_says_why() {
    let (sb, app) = shop().await;
    let dir = scratch_dir("drill-abort");
    // This plan has orders stay up; it will not, and the abort fires long before the hold ends.
    let text = drill_text(
        app,
        "30s",
        r#"abort: [(probe: "orders", below: 0.5, for: "500ms")],"#,
    )
    .replace(
        r#"degraded: (status: [503], body_contains: "temporarily unavailable")"#,
        "",
    );
    let file = write(&dir, "abort.ron", &text);
    let out = drill_command(&sb, &file, &dir.join("report"))
        .output()
        .await
        .expect("run the drill");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report = read_report(&dir.join("report"));
    assert_eq!(report["outcome"], "rolled_back");
    let reason = report["reason"].as_str().expect("a reason");
    assert!(
        reason.contains("abort condition: probe \"orders\""),
        "{reason}"
    );
    let phases = &report["phases"];
    let in_force = phases["lifted_ms"].as_f64().unwrap() - phases["injected_ms"].as_f64().unwrap();
    assert!(in_force < 5000.0, "faults were in force {in_force} ms");
    assert!(!fault_enabled(&sb, "orders-db-partition").await);
    // The recovery after the rollback is still measured.
    assert!(
        probe(&report, "orders")["measures"]["recovery_ms"]
            .as_f64()
            .is_some()
    );
    assert_eq!(probe(&report, "orders")["verdict"], "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_run_drill_whose_controller_dies_is_rolled_back_when_its_lease_runs_out() {
    let (sb, app) = shop().await;
    let dir = scratch_dir("drill-lease");
    let file = write(&dir, "lease.ron", &drill_text(app, "60s", ""));
    let mut child = drill_command(&sb, &file, &dir.join("report"))
        .arg("--on-server")
        .arg("--lease")
        .arg("1s")
        .spawn()
        .expect("start the drill");
    eventually(
        Duration::from_secs(10),
        "the drill switches the partition on",
        || fault_enabled(&sb, "orders-db-partition"),
    )
    .await;
    child.kill().await.expect("kill the controller");
    // The lease is 1 s; the server rolls back soon after it runs out.
    eventually(
        Duration::from_secs(5),
        "the server rolls the drill back",
        || async { !fault_enabled(&sb, "orders-db-partition").await },
    )
    .await;
    let drills = sb.api().get("/v1/drills").await.body;
    let drill = &drills[0];
    eventually(Duration::from_secs(15), "the drill finishes", || async {
        sb.api().get("/v1/drills/d1").await.body["state"] == "finished"
    })
    .await;
    let status = sb.api().get("/v1/drills/d1").await.body;
    assert_eq!(drill["drill"], "orders-db-outage");
    assert_eq!(status["report"]["outcome"], "rolled_back");
    let reason = status["report"]["reason"].as_str().expect("a reason");
    assert!(reason.contains("lease expired"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_rolls_back_at_once() {
    let (sb, app) = shop().await;
    let dir = scratch_dir("drill-interrupt");
    let file = write(&dir, "interrupt.ron", &drill_text(app, "60s", ""));
    let child = drill_command(&sb, &file, &dir.join("report"))
        .spawn()
        .expect("start the drill");
    eventually(
        Duration::from_secs(10),
        "the drill switches the partition on",
        || fault_enabled(&sb, "orders-db-partition"),
    )
    .await;
    let pid = child.id().expect("the drill runs");
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("send SIGINT");
    assert!(status.success());
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("the drill stops")
        .expect("its output");
    assert_eq!(out.status.code(), Some(2));
    assert!(!fault_enabled(&sb, "orders-db-partition").await);
    let report = read_report(&dir.join("report"));
    assert_eq!(report["outcome"], "rolled_back");
    assert_eq!(report["reason"], "interrupted (Ctrl-C)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_whose_baseline_does_not_hold_injects_nothing() {
    let (sb, app) = shop().await;
    let dir = scratch_dir("drill-refused");
    // A listener that never accepts: held for the whole test, so no other test can take its
    // port, and every request to it goes unanswered.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed = silent.local_addr().expect("addr");
    let text = drill_text(app, "2s", "").replace(
        &format!("http://{app}/catalog"),
        &format!("http://{closed}/catalog"),
    );
    let file = write(&dir, "refused.ron", &text);
    let out = drill_command(&sb, &file, &dir.join("report"))
        .output()
        .await
        .expect("run the drill");
    assert_eq!(out.status.code(), Some(2));
    let report = read_report(&dir.join("report"));
    assert_eq!(report["outcome"], "refused");
    assert!(report["verdict"].is_null());
    let reason = report["reason"].as_str().expect("a reason");
    assert!(
        reason.contains("probe \"catalog\" had 0.0% success"),
        "{reason}"
    );
    assert!(
        report["fault_windows"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    let events: Vec<&str> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["what"].as_str())
        .collect();
    assert!(!events.iter().any(|e| e.contains("enable")), "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_faults_ramp_and_are_removed_afterwards() {
    let db = support::upstream::echo().await;
    let sb = spawn_switchboard(&route_with("db", db, "")).await;
    let route = sb.addr("db").await;
    let dir = scratch_dir("drill-ramp");
    let text = format!(
        r#"(
  name: "slow-db",
  baseline: "300ms",
  observe: "3s",
  probes: [(name: "db", check: Tcp(addr: "{route}", send: "ping", expect: "ping"), interval: "50ms",
            timeout: "2s", steady: (window: "200ms"))],
  steps: [
    (action: Add(name: "slow", route: "db", kind: Latency(ms: 0))),
    (action: Ramp(fault: "slow", param: "ms", from: 0, to: 40, over: "1s", every: "250ms")),
    (at: "1s", action: Hold("600ms")),
  ],
)"#
    );
    let file = write(&dir, "ramp.ron", &text);
    let out = drill_command(&sb, &file, &dir.join("report"))
        .output()
        .await
        .expect("run the drill");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = read_report(&dir.join("report"));
    let events: Vec<&str> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["what"].as_str())
        .collect();
    for expected in ["add slow", "set slow.ms = 10", "set slow.ms = 40"] {
        assert!(events.contains(&expected), "{expected} in {events:?}");
    }
    assert_eq!(sb.api().get("/v1/faults/slow").await.status, 404);
    // The probe's round trips through the route carried the ramp: fast in the baseline, at
    // least the full 40 ms each way once the ramp reached it, fast again after the removal.
    let samples = probe(&report, "db")["samples"].as_array().unwrap().clone();
    let latency = |from: f64, to: f64| -> Vec<f64> {
        samples
            .iter()
            .filter(|s| (from..to).contains(&s["t_ms"].as_f64().unwrap()))
            .map(|s| s["latency_ms"].as_f64().unwrap())
            .collect()
    };
    let phases = &report["phases"];
    let (injected, lifted) = (
        phases["injected_ms"].as_f64().unwrap(),
        phases["lifted_ms"].as_f64().unwrap(),
    );
    let baseline = latency(0.0, injected);
    let at_40 = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["what"] == "set slow.ms = 40")
        .and_then(|e| e["t_ms"].as_f64())
        .expect("the ramp's last step");
    let ramped = latency(at_40 + 100.0, lifted - 100.0);
    assert!(baseline.iter().all(|ms| *ms < 30.0), "{baseline:?}");
    assert!(
        !ramped.is_empty() && ramped.iter().all(|ms| *ms >= 40.0),
        "{ramped:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_of_a_tcp_route_see_refused_connections_round_trips_and_no_traffic() {
    let db = support::upstream::echo().await;
    let sb = spawn_switchboard(&format!(
        r#"(
  routes: [
    (name: "db", protocol: Tcp, listen: "127.0.0.1:0", upstream: "{db}"),
    (name: "idle", protocol: Tcp, listen: "127.0.0.1:0", upstream: "{db}"),
  ],
  faults: [(name: "db-cut", route: "db", enabled: false, kind: Partition(mode: Refuse))],
)"#
    ))
    .await;
    let route = sb.addr("db").await;
    let dir = scratch_dir("drill-tcp-route");
    let text = format!(
        r#"(
  name: "db-refused",
  baseline: "1s",
  observe: "3s",
  probes: [
    // Traffic through the route: a ping per 50 ms, each on a new connection.
    (name: "db-ping", check: Tcp(addr: "{route}", send: "ping", expect: "ping"), interval: "50ms",
     steady: (window: "300ms")),
    (name: "db-route", check: Route(route: "db", max_error_rate: 0.05), interval: "250ms",
     steady: (window: "500ms")),
    // Its plan asks nothing, so that it does not stop the drill; its readings still say
    // what they saw.
    (name: "idle-route", check: Route(route: "idle"), interval: "250ms",
     steady: (min_success: 0.0, window: "500ms")),
  ],
  steps: [(action: Enable("db-cut")), (action: Hold("1s"))],
)"#
    );
    let file = write(&dir, "tcp-route.ron", &text);
    let out = drill_command(&sb, &file, &dir.join("report"))
        .output()
        .await
        .expect("run the drill");
    let report = read_report(&dir.join("report"));

    // The proxy accepts before it dials, so only the round trip sees the partition.
    let ping = probe(&report, "db-ping");
    let failed: Vec<&Value> = ping["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["ok"] == false)
        .collect();
    assert!(failed.len() >= 10, "{ping:#}");
    assert!(
        // Refused with the ping unread: the kernel answers the close with a reset.
        failed.iter().all(|s| s["error"]
            .as_str()
            .is_some_and(|e| e.contains("closed") || e.contains("reset"))),
        "{failed:?}"
    );
    assert!(
        ping["measures"]["recovery_ms"].as_f64().is_some(),
        "{ping:#}"
    );

    // The route's own counters saw the same: refused connections as failures, round trips
    // with a latency while healthy.
    let route_probe = probe(&report, "db-route");
    let samples = route_probe["samples"].as_array().unwrap();
    assert!(
        samples.iter().any(|s| s["error"]
            .as_str()
            .is_some_and(|e| e.contains("failed (100.0%)"))),
        "{route_probe:#}"
    );
    let first = &samples[0];
    assert_eq!(first["ok"], true, "{route_probe:#}");
    assert!(
        first["latency_ms"].as_f64().is_some_and(|ms| ms >= 1.0),
        "{first}"
    );
    assert!(
        route_probe["measures"]["recovery_ms"].as_f64().is_some(),
        "{route_probe:#}"
    );

    // Nothing went through the idle route: its probe says so rather than calling it healthy.
    let idle = probe(&report, "idle-route");
    assert!(
        idle["samples"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["ok"] == false
                && s["no_traffic"] == true
                && s["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("no traffic"))),
        "{idle:#}"
    );
    assert!(
        idle["measures"]["no_traffic_samples"]
            .as_u64()
            .is_some_and(|n| n >= 10),
        "{idle:#}"
    );
    let markdown =
        std::fs::read_to_string(dir.join("report").join("report.md")).expect("report.md");
    assert!(
        markdown.contains("saw no traffic through the route"),
        "{markdown}"
    );
    assert_eq!(out.status.code(), Some(1));

    // The server's state after the drill: the partition it enabled is off again.
    assert!(!fault_enabled(&sb, "db-cut").await);
}

/// Runs `switchboard drill FILE` against an endpoint nobody listens on (a bad file must be
/// reported before anything is dialed): its exit code and stderr.
fn drill_unreachable(file: &Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(BIN)
        .args(["drill", "--url", "http://127.0.0.1:1"])
        .arg(file)
        .output()
        .expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_broken_drill_file_is_reported_at_its_line_and_column() {
    let dir = scratch_dir("drill-broken");
    let file = write(
        &dir,
        "broken.ron",
        "(\n  name: \"x\",\n  probes: [],\n  steps: [(action: Explode(\"now\"))],\n)\n",
    );
    let (code, stderr) = drill_unreachable(&file);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("broken.ron:4:"), "{stderr}");
    assert!(stderr.contains("Explode"), "{stderr}");

    let empty = write(
        &dir,
        "empty.ron",
        "(\n  name: \"x\",\n  probes: [],\n  steps: [(action: Hold(\"1s\"))],\n)\n",
    );
    let (_, stderr) = drill_unreachable(&empty);
    assert!(
        stderr.contains("empty.ron:2:9: a drill needs at least one probe"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_drills_api_refuses_bad_requests_with_the_field_named() {
    let (sb, app) = shop().await;
    let api = sb.api();
    let answer = api
        .post("/v1/drills", serde_json::json!({"ron": "(name: 1)"}))
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["field"], "ron");
    assert!(answer.body["error"].as_str().unwrap().contains("ron:1:"));

    let answer = api
        .post(
            "/v1/drills",
            serde_json::json!({"drill": {"name": "x", "probes": [], "steps": "no"}}),
        )
        .await;
    assert_eq!(answer.status, 400);
    assert!(answer.body["field"].as_str().unwrap().starts_with("drill"));

    let text = drill_text(app, "30s", "");
    let answer = api
        .post(
            "/v1/drills",
            serde_json::json!({"ron": text, "lease": "soon"}),
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["field"], "lease");

    // A ramp of billions of steps is refused before anything is planned.
    let huge = text.replace(
        r#"(at: "0s", action: Hold("30s")),"#,
        r#"(action: Ramp(fault: "orders-db-partition", param: "ms", from: 0, to: 1, over: "1000h", every: "1ms")),"#,
    );
    assert_ne!(huge, text);
    let answer = api
        .post("/v1/drills", serde_json::json!({"ron": huge}))
        .await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.body["error"]
            .as_str()
            .unwrap()
            .contains("more than 10000 changes")
    );

    assert_eq!(api.get("/v1/drills/d99").await.status, 404);
    let started = api
        .post(
            "/v1/drills",
            serde_json::json!({"ron": text, "lease": "30s"}),
        )
        .await;
    assert_eq!(started.status, 201, "{:?}", started.body);
    let busy = api
        .post("/v1/drills", serde_json::json!({"ron": text}))
        .await;
    assert_eq!(busy.status, 409);
    assert!(busy.body["error"].as_str().unwrap().contains("is running"));
    let id = started.body["id"].as_str().unwrap().to_string();
    assert_eq!(api.delete(&format!("/v1/drills/{id}")).await.status, 200);
    eventually(
        Duration::from_secs(10),
        "the stopped drill finishes",
        || async { api.get(&format!("/v1/drills/{id}")).await.body["state"] == "finished" },
    )
    .await;
    let report = &api.get(&format!("/v1/drills/{id}")).await.body["report"];
    assert_eq!(report["reason"], "stopped through the control API");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_probe_reads_switchboards_own_error_rate_and_latency() {
    let db = support::upstream::echo().await;
    let app = breaker_app::start(db).await;
    let sb = spawn_switchboard(&format!(
        r#"(
  routes: [(name: "shop", protocol: Http, listen: "127.0.0.1:0", upstream: "http://{app}")],
  faults: [(name: "shop-503", route: "shop", enabled: false, kind: Abort(status: 503))],
)"#
    ))
    .await;
    let route = sb.addr("shop").await;
    let dir = scratch_dir("drill-route-probe");
    let text = format!(
        r#"(
  name: "shop-errors",
  baseline: "1s",
  observe: "5s",
  probes: [
    // Traffic through the route, which the route probe then reads back.
    (name: "catalog", check: Http(url: "http://{route}/catalog"), interval: "50ms",
     steady: (window: "500ms"), degraded: (status: [503])),
    (name: "shop-route", check: Route(route: "shop", max_error_rate: 0.05), interval: "200ms",
     steady: (min_success: 1.0, window: "600ms", max_p99: "100ms")),
  ],
  steps: [(action: Enable("shop-503")), (action: Hold("1500ms"))],
)"#
    );
    let file = write(&dir, "route.ron", &text);
    let out = drill_command(&sb, &file, &dir.join("report"))
        .output()
        .await
        .expect("run the drill");
    let report = read_report(&dir.join("report"));
    let probe = probe(&report, "shop-route");
    let m = &probe["measures"];
    // Every request failed while the fault held: the route's own counters said so.
    assert!(
        m["failed_samples"].as_u64().is_some_and(|n| n >= 4),
        "{m:#}"
    );
    let failed: Vec<&Value> = probe["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["ok"] == false)
        .collect();
    // A reading that straddles the switch counts some requests from before it.
    assert!(
        failed.iter().any(|s| s["error"]
            .as_str()
            .is_some_and(|e| e.contains("failed (100.0%)"))),
        "{failed:?}"
    );
    assert!(m["recovery_ms"].as_f64().is_some(), "{m:#}");
    // Outside the fault, the p99 comes from the route's latency buckets: a few ms here.
    let baseline_p99 = probe["samples"][0]["latency_ms"].as_f64().unwrap();
    assert!((1.0..=64.0).contains(&baseline_p99), "{baseline_p99}");
    // The plan said the route stays healthy; it did not, and the verdict says so.
    assert_eq!(probe["verdict"], "failed");
    assert_eq!(out.status.code(), Some(1));
}
