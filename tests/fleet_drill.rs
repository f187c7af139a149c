//! Drills across services: `switchboard drill` (the real binary) with a drill file whose
//! `targets` name two real Switchboards, `orders` and `catalog`, each a `switchboard run` with
//! a route `db` in front of an echo server and a fault `db-down` of the same name. A step's
//! `target` decides which Switchboard it changes; a `Route` probe's, whose counters it reads.
//! Killing one target mid-drill rolls the other back and the report names the lost one.

use crate::support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use support::api::Api;
use support::process::{BIN, Running, start_run};
use support::{eventually, upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RULES: &str = r#"(
  routes: [(name: "db", protocol: Tcp, listen: "127.0.0.1:PORT", upstream: "UPSTREAM")],
  faults: [(name: "db-down", route: "db", enabled: false, kind: Partition(mode: Refuse))],
)"#;

/// One service's Switchboard: the process, its API, its route's address.
struct Service {
    process: Running,
    api: Api,
    route: SocketAddr,
    _rules: support::Scratch,
}

async fn service(name: &str) -> Service {
    let upstream = upstream::echo().await;
    let dir = support::scratch_dir(&format!("fleet-drill-{name}"));
    let port = support::free_port();
    std::fs::write(
        dir.join("rules.ron"),
        RULES
            .replace("PORT", &port.to_string())
            .replace("UPSTREAM", &upstream.to_string()),
    )
    .expect("write rules");
    let rules = dir.to_string_lossy().into_owned();
    let process = start_run(&["--control", "127.0.0.1:0", "--rules", &rules]);
    let api = Api::new(process.control.parse().expect("control address"), None);
    Service {
        process,
        api,
        route: format!("127.0.0.1:{port}").parse().expect("route address"),
        _rules: dir,
    }
}

fn url(s: &Service) -> String {
    format!("http://{}", s.process.control)
}

/// Connections through `route`, one round trip each, until the task is aborted: the traffic a
/// `Route` probe reads.
fn traffic(route: SocketAddr) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Ok(mut conn) = tokio::net::TcpStream::connect(route).await {
                let mut back = [0u8; 4];
                let _ = conn.write_all(b"ping").await;
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), conn.read_exact(&mut back)).await;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    })
}

async fn enabled(api: &Api, fault: &str) -> Option<bool> {
    let answer = api.get(&format!("/v1/faults/{fault}")).await;
    (answer.status == 200).then(|| answer.body["enabled"] == true)
}

/// Starts `switchboard drill` on `drill` against `own`, with the targets' URLs in env.
fn start_drill(
    drill: &str,
    dir: &Path,
    own: &Service,
    env: &[(&str, String)],
) -> tokio::process::Child {
    let file = dir.join("drill.ron");
    std::fs::write(&file, drill).expect("write drill");
    let mut command = tokio::process::Command::new(BIN);
    command
        .arg("--json")
        .arg("drill")
        .arg(&file)
        .arg("--url")
        .arg(url(own))
        .arg("--report")
        .arg(dir.join("report"))
        .env_remove("SWITCHBOARD_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    command.spawn().expect("start the drill")
}

/// Waits until `condition` holds while the drill runs; a drill that ends first fails the
/// test with what it said.
async fn while_running<F, Fut>(drill: &mut tokio::process::Child, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + Duration::from_secs(15);
    while !condition().await {
        if let Ok(Some(status)) = drill.try_wait() {
            let mut said = String::new();
            if let Some(mut err) = drill.stderr.take() {
                let _ = err.read_to_string(&mut said).await;
            }
            panic!("the drill ended ({status}) before {what}: {said}");
        }
        assert!(tokio::time::Instant::now() < end, "within 15 s: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn finish(child: tokio::process::Child) -> Output {
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the drill ran past 60 s")
        .expect("the drill's output")
}

fn report(dir: &Path, out: &Output) -> Value {
    let text = std::fs::read_to_string(dir.join("report/report.json")).unwrap_or_else(|e| {
        panic!(
            "report.json: {e}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    serde_json::from_str(&text).expect("report.json is JSON")
}

const ACROSS: &str = r#"(
  name: "orders down, catalog slow",
  baseline: "1s",
  observe: "3s",
  targets: {"orders": "${ORDERS_SB}", "catalog": "${CATALOG_SB}"},
  probes: [
    (name: "orders-db", check: Tcp(addr: "${ORDERS_DB}", send: "ping", expect: "ping"),
     interval: "100ms", steady: (min_success: 0.9, window: "1s"), rto: "20s",
     affected_by: ["db-down@orders"]),
    (name: "catalog-db", check: Route(route: "db", target: "catalog", max_error_rate: 0.2),
     interval: "250ms", steady: (min_success: 0.5, window: "1s")),
  ],
  steps: [
    (at: "0s", target: "orders", action: Enable("db-down")),
    (at: "0s", target: "catalog",
     action: Add(name: "catalog-slow", route: "db", kind: Latency(ms: 30))),
    (at: "0s", action: Hold("2500ms")),
  ],
)"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_service_drill_lands_each_fault_on_its_target_and_restores_both() {
    let orders = service("orders").await;
    let catalog = service("catalog").await;
    let load = traffic(catalog.route);
    let dir = support::scratch_dir("fleet-drill-across");
    let env = [
        ("ORDERS_SB", url(&orders)),
        ("CATALOG_SB", url(&catalog)),
        ("ORDERS_DB", orders.route.to_string()),
    ];
    let mut drill = start_drill(ACROSS, &dir, &orders, &env);
    while_running(&mut drill, "the drill's faults are on", || async {
        enabled(&orders.api, "db-down").await == Some(true)
            && enabled(&catalog.api, "catalog-slow").await == Some(true)
    })
    .await;
    // Each fault on its own target, and only there: the catalog's db-down of the same name is
    // untouched, and the orders Switchboard has no catalog-slow.
    assert_eq!(enabled(&catalog.api, "db-down").await, Some(false));
    assert_eq!(enabled(&orders.api, "catalog-slow").await, None);

    let out = finish(drill).await;
    load.abort();
    let report = report(&dir, &out);
    assert_eq!(report["outcome"], "completed", "{report:#}");
    assert_eq!(
        enabled(&orders.api, "db-down").await,
        Some(false),
        "restored"
    );
    assert_eq!(enabled(&catalog.api, "catalog-slow").await, None, "removed");

    let windows: Vec<(&str, &str)> = report["fault_windows"]
        .as_array()
        .expect("windows")
        .iter()
        .map(|w| {
            (
                w["fault"].as_str().unwrap_or(""),
                w["target"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        windows.contains(&("db-down@orders", "orders")),
        "{windows:?}"
    );
    assert!(
        windows.contains(&("catalog-slow@catalog", "catalog")),
        "{windows:?}"
    );
    let targets = report["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 2);
    for target in targets {
        assert!(target["lost"].is_null(), "{target}");
    }
    let catalog_probe = &report["probes"][1];
    assert_eq!(
        catalog_probe["probe"]["check"]["Route"]["target"],
        "catalog"
    );
    // The Route probe read the catalog's counters: its samples saw the traffic sent there.
    let read = catalog_probe["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .filter(|s| s["ok"] == true)
        .count();
    assert!(read > 3, "{catalog_probe:#}");
    let events: Vec<&str> = report["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["what"].as_str())
        .collect();
    assert!(events.contains(&"enable db-down on orders"), "{events:?}");
    assert!(
        events.contains(&"add catalog-slow on catalog"),
        "{events:?}"
    );
    let markdown = std::fs::read_to_string(dir.join("report/report.md")).expect("report.md");
    assert!(
        markdown.contains("- Target catalog at http://"),
        "{markdown}"
    );
    assert!(markdown.contains("| catalog-db@catalog |"), "{markdown}");
}

const LONG: &str = r#"(
  name: "both databases down",
  baseline: "1s",
  observe: "2s",
  targets: {"orders": "${ORDERS_SB}", "catalog": "${CATALOG_SB}"},
  probes: [
    (name: "orders-db", check: Tcp(addr: "${ORDERS_DB}", send: "ping", expect: "ping"),
     interval: "100ms", steady: (min_success: 0.9, window: "1s")),
  ],
  steps: [
    (at: "0s", target: "orders", action: Enable("db-down")),
    (at: "0s", target: "catalog", action: Enable("db-down")),
    (at: "0s", action: Hold("40s")),
  ],
)"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_killed_mid_drill_is_named_and_the_other_is_rolled_back() {
    let orders = service("orders").await;
    let mut catalog = service("catalog").await;
    let dir = support::scratch_dir("fleet-drill-lost");
    let env = [
        ("ORDERS_SB", url(&orders)),
        ("CATALOG_SB", url(&catalog)),
        ("ORDERS_DB", orders.route.to_string()),
    ];
    let drill = start_drill(LONG, &dir, &orders, &env);
    eventually(
        Duration::from_secs(15),
        "db-down on at both targets",
        || async {
            enabled(&orders.api, "db-down").await == Some(true)
                && enabled(&catalog.api, "db-down").await == Some(true)
        },
    )
    .await;
    let catalog_url = url(&catalog);
    catalog
        .process
        .child
        .kill()
        .expect("kill the catalog's Switchboard");
    catalog.process.child.wait().expect("reap it");

    // Long before the 40 s hold is over, the drill sees the loss and rolls orders back.
    eventually(Duration::from_secs(10), "orders rolled back", || async {
        enabled(&orders.api, "db-down").await == Some(false)
    })
    .await;
    let out = finish(drill).await;
    assert_eq!(out.status.code(), Some(2), "a rolled-back drill exits 2");
    let report = report(&dir, &out);
    assert_eq!(report["outcome"], "rolled_back", "{report:#}");
    let reason = report["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("lost target \"catalog\""), "{reason}");
    let targets = report["targets"].as_array().expect("targets");
    let lost: Vec<&str> = targets
        .iter()
        .filter(|t| !t["lost"].is_null())
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(lost, vec!["catalog"], "{targets:?}");
    let catalog_entry = targets
        .iter()
        .find(|t| t["name"] == "catalog")
        .expect("catalog");
    assert_eq!(catalog_entry["control"], catalog_url);
    let markdown = std::fs::read_to_string(dir.join("report/report.md")).expect("report.md");
    assert!(
        markdown.contains(&format!("- Target catalog at {catalog_url}: **lost**")),
        "{markdown}"
    );
    assert!(
        markdown.contains("- Target orders at") && markdown.contains("held to the end"),
        "{markdown}"
    );
}

#[tokio::test]
async fn a_drill_naming_targets_is_refused_where_it_cannot_hold_them() {
    // Checked like any drill file: a target no `targets` entry names is placed at file:line:col.
    let dir = support::scratch_dir("fleet-drill-check");
    std::fs::create_dir(dir.join("drills")).expect("drills/");
    std::fs::write(dir.join("rules.ron"), "(routes: [], faults: [])").expect("write rules");
    let file = dir.join("drills/drill.ron");
    std::fs::write(
        &file,
        ACROSS.replace(
            r#"target: "catalog", max_error_rate"#,
            r#"target: "catalgo", max_error_rate"#,
        ),
    )
    .expect("write drill");
    let checked = tokio::process::Command::new(BIN)
        .arg("check")
        .arg(&file)
        .output()
        .await
        .expect("run check");
    let said = String::from_utf8_lossy(&checked.stdout).into_owned()
        + &String::from_utf8_lossy(&checked.stderr);
    assert!(!checked.status.success(), "{said}");
    assert!(
        said.contains("drill.ron:10:")
            && said.contains(r#"probe "catalog-db" names target "catalgo"; the drill's targets are catalog, orders"#),
        "{said}"
    );

    // A server-run drill is held by one lease on one Switchboard: one with targets is refused.
    let sb =
        support::spawn_switchboard(&support::route_with("db", upstream::echo().await, "")).await;
    let refused = sb
        .api()
        .post("/v1/drills", serde_json::json!({ "ron": ACROSS }))
        .await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert_eq!(refused.body["field"], "targets");
    assert!(
        refused.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("switchboard drill")),
        "{:?}",
        refused.body
    );
    assert!(
        sb.api()
            .get("/v1/drills")
            .await
            .body
            .as_array()
            .is_some_and(Vec::is_empty)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_controller_leaves_every_targets_faults_on_for_one_lease_at_most() {
    let orders = service("orders").await;
    let catalog = service("catalog").await;
    let dir = support::scratch_dir("fleet-drill-controller");
    let env = [
        ("ORDERS_SB", url(&orders)),
        ("CATALOG_SB", url(&catalog)),
        ("ORDERS_DB", orders.route.to_string()),
    ];
    let mut drill = start_drill(LONG, &dir, &orders, &env);
    while_running(&mut drill, "db-down is on at both targets", || async {
        enabled(&orders.api, "db-down").await == Some(true)
            && enabled(&catalog.api, "db-down").await == Some(true)
    })
    .await;
    // The 40 s hold is far off; each fault is leased for 15 s at a time, not until then.
    for service in [&orders, &catalog] {
        let shown = service.api.get("/v1/faults/db-down").await.body;
        let expires = shown["expires_at"]
            .as_str()
            .expect("a leased fault expires");
        let left = humantime::parse_rfc3339(expires)
            .expect("RFC 3339")
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        assert!(
            left <= Duration::from_secs(16),
            "{left:?} left on {expires}"
        );
    }
    // The controller dies without a word: no restore runs.
    drill.kill().await.expect("kill the drill");
    eventually(
        Duration::from_secs(25),
        "the lease runs out on both targets",
        || async {
            enabled(&orders.api, "db-down").await == Some(false)
                && enabled(&catalog.api, "db-down").await == Some(false)
        },
    )
    .await;
}
