//! `switchboard ctl`, the real binary, against a control endpoint on an ephemeral port.

use crate::support;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Harness, route_with, spawn_switchboard, upstream};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

const FAULTS: &str = r#"
    (name: "file-slow", route: "r", enabled: false, kind: Latency(ms: 100, jitter_ms: 5)),
    (name: "file-cut", route: "r", enabled: true, probability: 0.0, kind: Partition(mode: Refuse)),
"#;

async fn ctl(sb: &Harness, args: &[&str]) -> Output {
    let url = format!("http://{}", sb.control.local_addr());
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["ctl", "--url", &url])
            .args(&args)
            .output()
            .expect("run ctl")
    })
    .await
    .expect("ctl task")
}

async fn blocking_run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || Command::new(BIN).args(&args).output().expect("run"))
        .await
        .expect("task")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_status_enable_disable_add_remove_reset() {
    let sb = spawn_switchboard(&route_with("r", upstream::echo().await, FAULTS)).await;

    let list = ctl(&sb, &["list"]).await;
    assert!(list.status.success(), "{}", stderr(&list));
    let text = stdout(&list);
    assert!(text.contains("ROUTE") && text.contains("FAULT"), "{text}");
    assert!(
        text.contains("file-slow") && text.contains("Latency(ms: 100, jitter_ms: 5)"),
        "{text}"
    );

    let status = ctl(&sb, &["--json", "status"]).await;
    let status: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["faults"], 2);
    // --json is global: before the subcommand and after it too.
    let url = format!("http://{}", sb.control.local_addr());
    for args in [
        vec!["--json", "ctl", "--url", url.as_str(), "status"],
        vec!["ctl", "--url", url.as_str(), "status", "--json"],
    ] {
        let out = blocking_run(args.iter().map(|a| a.to_string()).collect()).await;
        let status: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stderr(&out)));
        assert_eq!(status["faults"], 2, "{args:?}");
    }

    let enable = ctl(&sb, &["enable", "file-slow", "--ttl", "1h"]).await;
    assert!(enable.status.success(), "{}", stderr(&enable));
    let fault = sb.app.fault("file-slow").expect("fault");
    assert!(fault.fault.enabled);
    assert!(fault.expires_at.is_some());

    let disable = ctl(&sb, &["disable", "file-slow"]).await;
    assert!(disable.status.success());
    assert!(!sb.app.fault("file-slow").expect("fault").fault.enabled);

    let add = ctl(
        &sb,
        &[
            "add",
            "api-lat",
            "--route",
            "r",
            "--probability",
            "0.5",
            "--direction",
            "both",
            "Latency(ms: 20)",
        ],
    )
    .await;
    assert!(add.status.success(), "{}", stderr(&add));
    let added = sb.app.fault("api-lat").expect("added");
    assert_eq!(added.fault.probability, 0.5);
    assert_eq!(
        serde_json::to_value(&added.fault.kind).expect("json"),
        json!({"Latency": {"ms": 20, "jitter_ms": 0}})
    );

    let remove = ctl(&sb, &["remove", "api-lat"]).await;
    assert!(remove.status.success());
    assert!(stdout(&remove).contains("removed api-lat"));
    assert!(sb.app.fault("api-lat").is_err());

    let reset = ctl(&sb, &["reset"]).await;
    assert!(reset.status.success());
    assert!(
        stdout(&reset).contains("turned off: file-cut"),
        "{}",
        stdout(&reset)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_shown_as_the_server_words_them_with_a_failing_exit() {
    let sb = spawn_switchboard(&route_with("r", upstream::echo().await, FAULTS)).await;
    let bad_route = ctl(&sb, &["add", "x", "--route", "nope", "Latency(ms: 1)"]).await;
    assert!(!bad_route.status.success());
    let err = stderr(&bad_route);
    assert!(
        err.contains("names route \"nope\", which is not defined")
            && err.contains("(field: route)"),
        "{err}"
    );

    let bad_kind = ctl(&sb, &["add", "x", "--route", "r", "Latency(ms: "]).await;
    assert!(!bad_kind.status.success());
    assert!(
        stderr(&bad_kind).contains("kind \"Latency(ms: \""),
        "{}",
        stderr(&bad_kind)
    );

    let missing = ctl(&sb, &["enable", "nope"]).await;
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("404") && stderr(&missing).contains("no fault named \"nope\""),
        "{}",
        stderr(&missing)
    );

    let unreachable = tokio::task::spawn_blocking(|| {
        // Bind and drop a listener to get a port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        Command::new(BIN)
            .args(["ctl", "--url", &format!("http://127.0.0.1:{port}"), "list"])
            .output()
            .expect("run")
    })
    .await
    .expect("task");
    assert!(!unreachable.status.success());
    assert!(
        stderr(&unreachable).contains("cannot reach the control endpoint"),
        "{}",
        stderr(&unreachable)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_follows_events() {
    let sb = spawn_switchboard(&route_with("r", upstream::echo().await, FAULTS)).await;
    let url = format!("http://{}", sb.control.local_addr());
    let mut child = Command::new(BIN)
        .args(["ctl", "--url", &url, "--json", "watch"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("watch");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    // The watcher subscribes some time after it starts; keep changing things until it shows.
    let api = sb.api();
    let line = tokio::time::timeout(Duration::from_secs(10), async {
        let mut on = true;
        loop {
            api.patch("/v1/faults/file-slow", json!({"enabled": on}))
                .await;
            on = !on;
            if let Ok(Some(line)) =
                tokio::time::timeout(Duration::from_millis(100), lines.recv()).await
            {
                return line;
            }
        }
    })
    .await
    .expect("an event is printed");
    let _ = child.kill();
    let _ = child.wait();
    let event: Value = serde_json::from_str(&line).expect("a JSON event");
    assert_eq!(event["fault"], "file-slow");
    assert_eq!(event["source"], "api");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_aims_a_fault_at_clients_and_caps_it() {
    let sb = spawn_switchboard(&route_with("r", upstream::echo().await, "")).await;
    let out = ctl(
        &sb,
        &[
            "--json",
            "add",
            "canary-slow",
            "--route",
            "r",
            "--client",
            "127.0.0.2,10.1.4.0/24",
            "--max-active",
            "5",
            "Latency(ms: 300)",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: Value = serde_json::from_slice(&out.stdout).expect("fault JSON");
    assert_eq!(
        shown["when"],
        json!({"client": ["127.0.0.2", "10.1.4.0/24"]})
    );
    assert_eq!(shown["max_active"], 5);
    assert_eq!(shown["active"], 0);
    let fault = sb.app.fault("canary-slow").expect("added");
    assert_eq!(fault.fault.max_active, Some(5));

    // A bad network is refused before anything is sent, naming the value.
    let bad = ctl(
        &sb,
        &[
            "add",
            "x",
            "--route",
            "r",
            "--client",
            "10.1.2.3/16",
            "Latency(ms: 1)",
        ],
    )
    .await;
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("the network is 10.1.0.0/16"),
        "{}",
        stderr(&bad)
    );
    let zero = ctl(
        &sb,
        &[
            "add",
            "x",
            "--route",
            "r",
            "--max-active",
            "0",
            "Latency(ms: 1)",
        ],
    )
    .await;
    assert!(!zero.status.success());
    assert!(stderr(&zero).contains("max-active"), "{}", stderr(&zero));
}
