//! A drill's RTO and RPO against apps whose failover is known: tests/support/failover_app.rs
//! fails over in 1.5 s while the cut of its primary still holds, and
//! tests/support/durable_app.rs loses the writes its secondary had not been fed yet (2 s of
//! them). The report must give both, judged against each probe's objective.

use crate::support;

use support::{drill_run, durable_app, failover_app, route_with, scratch_dir, spawn_switchboard};

/// A Switchboard with one Tcp route to an echo "database", and its partition switched off.
async fn primary() -> support::Harness {
    let primary = support::upstream::echo().await;
    spawn_switchboard(&route_with(
        "primary-db",
        primary,
        r#"(name: "primary-gone", route: "primary-db", enabled: false, kind: Partition(mode: Refuse))"#,
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rto_is_the_apps_failover_time_judged_against_the_objective() {
    let sb = primary().await;
    let app = failover_app::start(sb.addr("primary-db").await).await;
    let dir = scratch_dir("drill-rto");
    // Two probes of the same page: one whose objective the failover meets, one it misses.
    let text = format!(
        r#"(
  name: "region-failover",
  baseline: "1s",
  observe: "2s",
  probes: [
    (name: "orders", check: Http(url: "http://{app}/orders"), interval: "100ms",
     timeout: "500ms", steady: (min_success: 1.0, window: "500ms"), rto: "3s"),
    (name: "orders-strict", check: Http(url: "http://{app}/orders"), interval: "100ms",
     timeout: "500ms", steady: (min_success: 1.0, window: "500ms"), rto: "1s"),
  ],
  steps: [(action: Enable("primary-gone")), (action: Hold("4s"))],
)"#
    );
    let ran = drill_run::run(sb.control.local_addr(), &dir, &text).await;
    // One probe missed its objective, so the drill fails (exit 1).
    assert_eq!(
        ran.exit,
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        ran.stdout,
        ran.stderr
    );
    let orders = ran.probe("orders");
    let rto = orders["measures"]["rto_ms"].as_f64().expect("an RTO");
    // The app fails over 1.5 s after its first failed health check (every 50 ms), and a
    // probe every 100 ms sees it within both intervals.
    let truth = failover_app::FAILOVER_TAKES.as_secs_f64() * 1000.0;
    assert!(
        (rto - truth).abs() <= 250.0,
        "measured RTO {rto} ms; the app fails over in {truth} ms"
    );
    assert_eq!(orders["verdict"], "passed", "{orders:#}");
    // The recovery after the lift is nothing: the app was already on its secondary.
    assert_eq!(orders["measures"]["recovery_ms"], 0.0);
    let strict = ran.probe("orders-strict");
    assert_eq!(strict["verdict"], "failed");
    assert!(
        strict["reason"]
            .as_str()
            .is_some_and(|r| r.contains("missed its RTO") && r.contains("the objective is 1s")),
        "{strict:#}"
    );
    assert!(ran.markdown.contains("| RTO |"), "{}", ran.markdown);
    assert!(
        ran.markdown.contains("(≤ 3s, met)") && ran.markdown.contains("(≤ 1s, missed)"),
        "{}",
        ran.markdown
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rpo_counts_the_writes_the_failover_lost_and_the_time_they_span() {
    let sb = primary().await;
    let app = durable_app::start(sb.addr("primary-db").await).await;
    let addr = app.addr;
    // A second app on the same primary, for a probe that reads back before the restore.
    let other = durable_app::start(sb.addr("primary-db").await).await;
    let other_addr = other.addr;
    let dir = scratch_dir("drill-rpo");
    let text = format!(
        r#"(
  name: "lossy-failover",
  baseline: "3s",
  observe: "2s",
  probes: [
    (name: "orders-written", interval: "100ms", timeout: "500ms",
     check: Durability(
       write: Http(url: "http://{addr}/orders", body: "{{\"item\": \"kettle ${{n}}\"}}", id: Json("/id")),
       read: Http(url: "http://{addr}/orders/${{id}}")),
     steady: (min_success: 1.0, window: "500ms"), rto: "3s", rpo: "1s"),
    // The same writes' fate read while the failover stands, before the faults are lifted.
    (name: "orders-before-restore", interval: "100ms", timeout: "500ms",
     check: Durability(
       write: Http(url: "http://{other_addr}/orders", id: Json("/id")),
       read: Http(url: "http://{other_addr}/orders/${{id}}"),
       read_back: BeforeRestore),
     steady: (min_success: 1.0, window: "500ms")),
  ],
  steps: [(action: Enable("primary-gone")), (action: Hold("3s"))],
)"#
    );
    let ran = drill_run::run(sb.control.local_addr(), &dir, &text).await;
    assert_eq!(
        ran.exit,
        Some(1),
        "the RPO is missed:\nstdout:\n{}\nstderr:\n{}",
        ran.stdout,
        ran.stderr
    );
    let probe = ran.probe("orders-written");
    let found = &probe["durability"];
    let lost = app.lost();
    let lost_ids: Vec<String> = lost.keys().map(u64::to_string).collect();
    let reported = lost_ids_of(found);
    assert!(!lost.is_empty(), "the failover lost writes");
    assert_eq!(
        reported, lost_ids,
        "the report names exactly the writes the app lost"
    );
    // The app loses what it acknowledged in the LAG before the failure; a write every 100 ms
    // makes the span of those writes LAG less at most one interval.
    let (first, last) = (lost.values().next(), lost.values().last());
    let app_span = match (first, last) {
        (Some(f), Some(l)) => (*l - *f).as_secs_f64() * 1000.0,
        _ => 0.0,
    };
    let rpo = found["rpo_ms"].as_f64().expect("an RPO");
    let lag = durable_app::LAG.as_secs_f64() * 1000.0;
    assert!(
        (rpo - app_span).abs() <= 50.0,
        "RPO {rpo} ms, the app's lost writes span {app_span} ms"
    );
    assert!(
        (rpo - lag).abs() <= 250.0,
        "RPO {rpo} ms against a replication lag of {lag} ms"
    );
    assert_eq!(found["duplicates"], serde_json::json!({}));
    assert_eq!(found["unverified"], serde_json::json!([]));
    assert!(
        found["acknowledged"]
            .as_u64()
            .is_some_and(|n| n > lost.len() as u64)
    );
    assert_eq!(probe["verdict"], "failed");
    assert!(
        probe["reason"]
            .as_str()
            .is_some_and(|r| r.contains("missed its RPO")),
        "{probe:#}"
    );
    // The writes fail from the cut until the failover is over.
    let rto = probe["measures"]["rto_ms"].as_f64().expect("an RTO");
    let truth = durable_app::FAILOVER_TAKES.as_secs_f64() * 1000.0;
    assert!(
        (rto - truth).abs() <= 250.0,
        "RTO {rto} ms, the failover takes {truth} ms"
    );
    assert!(ran.markdown.contains("## Durability"), "{}", ran.markdown);
    assert!(ran.markdown.contains("(≤ 1s, missed)"), "{}", ran.markdown);
    assert!(
        ran.svg.contains("lost write"),
        "the chart marks the lost writes"
    );

    // Read before the restore, the other probe finds exactly what its app lost, all of it
    // acknowledged before the lift.
    let before = &ran.probe("orders-before-restore")["durability"];
    let its_lost = lost_ids_of(before);
    let other_lost: Vec<String> = other.lost().keys().map(u64::to_string).collect();
    assert!(!its_lost.is_empty());
    assert_eq!(its_lost, other_lost);
    let lifted = ran.report["phases"]["lifted_ms"].as_f64().expect("lifted");
    let last_ack = before["lost"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["t_ms"].as_f64())
        .fold(0.0, f64::max);
    assert!(last_ack < lifted, "read back before the restore");
    assert!(
        ran.report["events"].as_array().is_some_and(|es| es
            .iter()
            .any(|e| e["what"] == "acknowledged writes read back before the restore")),
        "{:#}",
        ran.report["events"]
    );
}

#[test]
fn durability_probes_and_objectives_are_checked_with_file_line_col() {
    let drill = |probe: &str| {
        format!(
            r#"(name: "d", baseline: "1s", probes: [{probe}],
 steps: [(action: Hold("1s"))])"#
        )
    };
    let bad = |probe: &str, needle: &str| {
        let err = switchboard::drill::load::parse(std::path::Path::new("d.ron"), &drill(probe))
            .expect_err("refused");
        let message = err.to_string();
        assert!(message.starts_with("d.ron:"), "{message}");
        assert!(message.contains(needle), "{message} should say {needle}");
    };
    let write = r#"write: Http(url: "http://127.0.0.1:1/orders", id: Json("/id"))"#;
    bad(
        &format!(
            r#"(name: "w", check: Durability({write}, read: Http(url: "http://127.0.0.1:1/orders")))"#
        ),
        "has no ${id}",
    );
    bad(
        r#"(name: "w", check: Durability(write: Http(url: "http://h:1/", id: Regex("(")), read: Http(url: "http://h:1/${id}")))"#,
        "id: Regex",
    );
    bad(
        r#"(name: "w", check: Http(url: "http://127.0.0.1:1/"), rpo: "1s")"#,
        "rpo is measured by a Durability probe",
    );
}

/// The ids of the lost writes a Durability report names, in its order.
fn lost_ids_of(durability: &serde_json::Value) -> Vec<String> {
    durability["lost"]
        .as_array()
        .expect("lost writes")
        .iter()
        .map(|a| a["id"].as_str().unwrap_or_default().to_string())
        .collect()
}
