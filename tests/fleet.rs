//! `switchboard ctl --targets`: the real binary against three Switchboards on ephemeral
//! ports, each with its own route and echo upstream. Every command reaches all three; a target
//! that is down or never answers is named, the others are still reset, and the exit is
//! non-zero; `dns:` finds a Switchboard by name; a targets file carries a token per target.

use crate::support;

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use support::process::BIN;
use support::{Harness, route_with, rules, spawn_switchboard, start, upstream};
use switchboard::Config;
use switchboard::control::Auth;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn fleet_of_three() -> Vec<Harness> {
    let mut fleet = Vec::new();
    for _ in 0..3 {
        fleet.push(spawn_switchboard(&route_with("db", upstream::echo().await, "")).await);
    }
    fleet
}

fn url(sb: &Harness) -> String {
    format!("http://{}", sb.control.local_addr())
}

fn targets(fleet: &[Harness]) -> String {
    fleet.iter().map(url).collect::<Vec<_>>().join(",")
}

async fn ctl(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let run = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .arg("ctl")
            .args(&args)
            .env_remove("SWITCHBOARD_TOKEN")
            .env_remove("SWITCHBOARD_URL")
            .output()
            .expect("run ctl")
    });
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("ctl ran past 30 s")
        .expect("ctl task")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A round trip through `sb`'s route, in ms.
async fn round_trip_ms(sb: &Harness) -> u128 {
    let mut client = TcpStream::connect(sb.addr("db").await)
        .await
        .expect("connect");
    let start = std::time::Instant::now();
    client.write_all(b"ping").await.expect("write");
    let mut back = [0u8; 4];
    client.read_exact(&mut back).await.expect("read");
    start.elapsed().as_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_enable_status_list_and_reset_reach_every_target() {
    let fleet = fleet_of_three().await;
    let all = targets(&fleet);

    let add = ctl(&[
        "--targets",
        &all,
        "add",
        "slow",
        "--route",
        "db",
        "--disabled",
        "Latency(ms: 150)",
    ])
    .await;
    assert!(add.status.success(), "{}", text(&add));
    let enable = ctl(&["--targets", &all, "enable", "slow", "--ttl", "10m"]).await;
    assert!(enable.status.success(), "{}", text(&enable));
    let table = text(&enable);
    for sb in &fleet {
        let shown = sb.app.fault("slow").expect("the fault is on every target");
        assert!(shown.fault.enabled && shown.expires_at.is_some());
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(&url(sb)) && l.contains("slow on Latency(ms: 150")),
            "a row for {}:\n{table}",
            url(sb)
        );
        // The fault acts on each target's own route.
        assert!(round_trip_ms(sb).await >= 150);
    }

    let status = ctl(&["--targets", &all, "status"]).await;
    assert!(status.status.success(), "{}", text(&status));
    let status = text(&status);
    assert!(status.starts_with("TARGET"), "{status}");
    for sb in &fleet {
        assert!(
            status
                .lines()
                .any(|l| l.starts_with(&url(sb)) && l.contains("1 (1 on)")),
            "{status}"
        );
    }

    let list = ctl(&["--json", "--targets", &all, "list"]).await;
    let list: Vec<Value> =
        serde_json::from_slice(&list.stdout).expect("one JSON object per target");
    assert_eq!(list.len(), 3);
    for (object, sb) in list.iter().zip(&fleet) {
        assert_eq!(object["target"], url(sb), "in the order given");
        assert_eq!(object["ok"], true);
        assert_eq!(object["answer"]["faults"][0]["name"], "slow");
        assert_eq!(object["answer"]["routes"][0]["name"], "db");
    }
    let merged = text(&ctl(&["--targets", &all, "list"]).await);
    assert_eq!(
        merged
            .lines()
            .filter(|l| l.contains(" slow ") && l.contains(" on "))
            .count(),
        3,
        "the faults table has a row per target:\n{merged}"
    );

    let reset = ctl(&["--targets", &all, "reset", "--deadline", "5s"]).await;
    assert!(reset.status.success(), "{}", text(&reset));
    for sb in &fleet {
        assert!(
            sb.app.fault("slow").is_err(),
            "the API fault is removed from {}",
            url(sb)
        );
        assert!(round_trip_ms(sb).await < 150);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_down_or_silent_is_named_and_the_others_are_still_reset() {
    let fleet = fleet_of_three().await;
    for sb in &fleet {
        let on = ctl(&[
            "--url",
            &url(sb),
            "add",
            "cut",
            "--route",
            "db",
            "Partition(mode: Refuse)",
        ])
        .await;
        assert!(on.status.success(), "{}", text(&on));
    }
    // One Switchboard gone (its port closed), and one that accepts but never answers.
    // Bound but never listening: connects are refused, and no other test can take the port
    // while it is held (a freed port could be reused meanwhile).
    let held_port = tokio::net::TcpSocket::new_v4().expect("socket");
    held_port
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let gone = held_port.local_addr().expect("addr");
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_url = format!("http://{}", silent.local_addr().expect("addr"));
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            open.push(conn);
        }
    });
    let gone_url = format!("http://{gone}");
    let all = format!("{},{gone_url},{silent_url}", targets(&fleet[..2]));

    let reset = ctl(&["--targets", &all, "reset", "--deadline", "1s"]).await;
    let said = text(&reset);
    assert!(
        !reset.status.success(),
        "a target did not confirm, so the exit is non-zero:\n{said}"
    );
    assert!(
        said.contains("2 of 4 targets have not confirmed the reset"),
        "{said}"
    );
    assert!(
        said.contains(&format!("{gone_url}: cannot reach")),
        "{said}"
    );
    assert!(
        said.contains(&format!("{silent_url}: no answer within 1s")),
        "{said}"
    );
    for sb in &fleet[..2] {
        assert!(sb.app.fault("cut").is_err(), "{} was reset", url(sb));
        assert!(
            said.lines()
                .any(|l| l.starts_with(&url(sb)) && l.contains("turned off: cut")),
            "{said}"
        );
    }
    assert!(
        fleet[2].app.fault("cut").is_ok(),
        "the target not named keeps its fault"
    );

    let json = ctl(&["--json", "--targets", &all, "reset", "--deadline", "1s"]).await;
    let objects: Vec<Value> = serde_json::from_slice(&json.stdout).expect("JSON array");
    let failed: Vec<&str> = objects
        .iter()
        .filter(|o| o["ok"] == false)
        .filter_map(|o| o["target"].as_str())
        .collect();
    assert_eq!(failed, vec![gone_url.as_str(), silent_url.as_str()]);
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_names_and_a_targets_file_with_tokens_find_the_fleet() {
    let open = spawn_switchboard(&route_with("db", upstream::echo().await, "")).await;
    let token = "fleet-secret-token";
    let locked = {
        let files = rules(&route_with("db", upstream::echo().await, ""));
        let auth = Auth::for_bind("127.0.0.1:1".parse().expect("addr"), Some(token.into()))
            .expect("token auth");
        start(files, Config::default(), auth).await
    };

    // localhost resolves to 127.0.0.1 here: dns: turns the name into that address.
    let port = open.control.local_addr().port();
    let by_name = ctl(&[
        "--json",
        "--targets",
        &format!("dns:localhost:{port}"),
        "status",
    ])
    .await;
    let objects: Vec<Value> = serde_json::from_slice(&by_name.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&by_name)));
    assert!(
        objects
            .iter()
            .any(|o| o["target"] == format!("http://127.0.0.1:{port}") && o["ok"] == true),
        "{objects:?}"
    );
    let nowhere = ctl(&["--targets", "dns:no-such-host.invalid:8474", "status"]).await;
    assert!(!nowhere.status.success());
    assert!(
        text(&nowhere).contains("dns:no-such-host.invalid:8474"),
        "{}",
        text(&nowhere)
    );

    let dir = support::scratch_dir("fleet-targets");
    let file = dir.join("targets");
    std::fs::write(
        &file,
        format!(
            "# the shop's sidecars\n{}\n{} {token}\n",
            url(&open),
            url(&locked)
        ),
    )
    .expect("write targets");
    let file = file.to_string_lossy().into_owned();
    let add = ctl(&[
        "--targets-file",
        &file,
        "add",
        "slow",
        "--route",
        "db",
        "Latency(ms: 10)",
    ])
    .await;
    assert!(
        add.status.success(),
        "each target gets its own token:\n{}",
        text(&add)
    );
    assert!(open.app.fault("slow").is_ok() && locked.app.fault("slow").is_ok());

    std::fs::write(&file, format!("{}\n{}\n", url(&open), url(&locked))).expect("rewrite");
    let refused = ctl(&["--targets-file", &file, "reset"]).await;
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains(&format!("{}: 401", url(&locked))),
        "the target without its token is named: {}",
        text(&refused)
    );
    assert!(
        open.app.fault("slow").is_err(),
        "the other target was reset"
    );

    std::fs::write(&file, "http://a:1 token extra\n").expect("rewrite");
    let bad = ctl(&["--targets-file", &file, "status"]).await;
    assert!(!bad.status.success());
    assert!(text(&bad).contains("line 1"), "{}", text(&bad));
}
