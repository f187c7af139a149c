//! The switchboard page (`GET /`) in a real browser: Debian's chromium, headless, driven by
//! selenium from `tests/python/page.py` against the real binary on free ports. Each test runs
//! one of its scenarios; screenshots land in `target/screenshots/`.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::process::{BIN, Running, start_command, start_run};
use support::upstream;

/// A drill beside the rules: the echo route slows for 3 s while a probe makes round trips.
const DRILL: &str = r#"(
  name: "echo-slow",
  description: "The echo route answers 300 ms late for 3 s.",
  baseline: "1s",
  observe: "3s",
  probes: [(
    name: "echo",
    check: Tcp(addr: "ROUTE", send: "ping", expect: "ping"),
    interval: "100ms",
    timeout: "1s",
    steady: (min_success: 1.0, window: "1s"),
    affected_by: ["slow"],
  )],
  steps: [(at: "0s", action: Enable("slow")), (at: "0s", action: Hold("3s"))],
)"#;

const RULES: &str = r#"(
  routes: [(name: "echo", protocol: Tcp, listen: "127.0.0.1:PORT", upstream: "UPSTREAM")],
  faults: [(name: "slow", route: "echo", enabled: false, kind: Latency(ms: 300))],
)"#;

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

/// Switchboard on a rules directory holding the echo route, with `token` if given.
async fn start(name: &str, token: Option<&str>) -> (Running, support::Scratch, String) {
    let upstream = upstream::echo().await;
    let dir = support::scratch_dir(&format!("page-{name}"));
    let port = support::free_port();
    std::fs::write(
        dir.join("page.ron"),
        RULES
            .replace("UPSTREAM", &upstream.to_string())
            .replace("PORT", &port.to_string()),
    )
    .expect("write rules");
    std::fs::create_dir(dir.join("drills")).expect("drills directory");
    std::fs::write(
        dir.join("drills/echo-slow.ron"),
        DRILL.replace("ROUTE", &format!("127.0.0.1:{port}")),
    )
    .expect("write drill");
    let rules = dir.to_string_lossy().into_owned();
    let server = match token {
        None => start_run(&["--control", "127.0.0.1:0", "--rules", &rules]),
        Some(token) => {
            let file = dir.join("token");
            std::fs::write(&file, token).expect("write token");
            let mut command = std::process::Command::new(BIN);
            command.args(["run", "--control", "127.0.0.1:0", "--rules", &rules]);
            command.arg("--token-file").arg(&file);
            start_command(command)
        }
    };
    let addr = server.control.parse().expect("control address");
    let api = support::api::Api::new(addr, token.map(str::to_string));
    let route = api.get("/v1/routes/echo").await.body["bound"]
        .as_str()
        .expect("the route is bound")
        .to_string();
    (server, dir, route)
}

async fn scenario(name: &str, token: Option<&str>) {
    let (server, dir, route) = start(name, token).await;
    // Chromium keeps its profile under TMPDIR: in a directory of the test's, removed after it.
    let browser_tmp = support::scratch_dir(&format!("page-{name}-browser"));
    let mut command = tokio::process::Command::new(support::clients_python());
    command
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/page.py"))
        .arg(name)
        .env("SWITCHBOARD_URL", format!("http://{}", server.control))
        .env("ROUTE_ADDR", &route)
        .env("RULES_DIR", dir.as_os_str())
        .env("SHOTS", screenshots())
        .env("TMPDIR", browser_tmp.as_os_str())
        .kill_on_drop(true);
    if let Some(token) = token {
        command.env("TOKEN", token);
    }
    let out = tokio::time::timeout(Duration::from_secs(90), command.output())
        .await
        .unwrap_or_else(|_| panic!("page.py {name} ran past 90 s"))
        .expect("run page.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(&format!("{name}: ok")),
        "page.py {name} failed:\n{stdout}\n{stderr}"
    );
    drop(server);
    drop(browser_tmp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_on_the_page_enables_the_fault_and_a_client_feels_it() {
    scenario("switch", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_asks_first_then_turns_every_fault_off() {
    scenario("kill", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_reload_shows_a_banner_until_a_good_one() {
    scenario("banner", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_the_page_asks_for_it_and_again_after_a_401() {
    scenario("token", Some("page-test-token")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_fits_a_desktop_and_a_phone() {
    scenario("layout", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_started_on_the_page_shows_progress_then_its_report_and_rolls_back() {
    scenario("drill", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fault_form_shows_the_servers_refusals_then_saves_an_edit() {
    scenario("edit", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_added_on_the_page_with_a_ttl_reaches_clients() {
    scenario("add", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_functions_format_kinds_ttls_and_percentiles() {
    scenario("units", None).await;
}

#[tokio::test]
async fn the_page_and_its_drill_calls_answer_bad_input_clearly() {
    let (server, dir, _route) = start("api", None).await;
    std::fs::write(dir.join("drills/broken.ron"), "(name: \"b\", probes: 3)").expect("write");
    let api = support::api::Api::new(server.control.parse().expect("addr"), None);

    let page = api.raw("GET", "/", "").await;
    assert_eq!(page.status, 200);
    let csp = page.headers["content-security-policy"]
        .to_str()
        .expect("ascii");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert_eq!(api.raw("POST", "/", "").await.status, 405);

    let files = api.get("/v1/drill-files").await.body;
    assert_eq!(files[0]["file"], "broken.ron", "{files:#}");
    assert!(
        files[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("broken.ron:1:")),
        "{files:#}"
    );
    assert_eq!(files[1]["name"], "echo-slow", "{files:#}");

    for (body, status, says) in [
        (
            serde_json::json!({"file": "../page.ron"}),
            400,
            "must be the name of a .ron file",
        ),
        (
            serde_json::json!({"file": "gone.ron"}),
            404,
            "no drill file \"gone.ron\"",
        ),
        (serde_json::json!({"file": 7}), 400, "file must be the name"),
        (
            serde_json::json!({"file": "broken.ron"}),
            400,
            "broken.ron:1:",
        ),
        (
            serde_json::json!({"file": "echo-slow.ron", "ron": "()"}),
            400,
            "one of `drill`, `ron` or `file`",
        ),
    ] {
        let answer = api.post("/v1/drills", body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {:#}", answer.body);
        let error = answer.body["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{body}: {error}");
    }
    assert_eq!(api.get("/v1/drills").await.body, serde_json::json!([]));
    assert_eq!(api.get("/v1/drills/d9/chart.svg").await.status, 404);
}
