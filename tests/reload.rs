//! Hot reload: every way a rules directory changes produces one reload; a broken file changes
//! nothing; a reload under load drops no connection of an unchanged route.

use crate::support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::{scratch_dir, spawn_in_dir_with, upstream};
use switchboard::telemetry::{Event, EventBus, EventKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast;

fn route_file(upstream: std::net::SocketAddr) -> String {
    format!(
        r#"(routes: [(name: "r", protocol: Tcp, listen: "127.0.0.1:0", upstream: "{upstream}")])"#
    )
}

fn fault_file(ms: u64) -> String {
    format!(r#"(faults: [(name: "slow", route: "r", kind: Latency(ms: {ms}))])"#)
}

/// Waits for the next reload or rejection, skipping other events.
async fn next_reload(events: &mut broadcast::Receiver<Event>) -> EventKind {
    let deadline = Duration::from_secs(5);
    tokio::time::timeout(deadline, async {
        loop {
            let event = events.recv().await.expect("event stream");
            if matches!(
                event.kind,
                EventKind::Reloaded { .. } | EventKind::Rejected { .. }
            ) {
                return event.kind;
            }
        }
    })
    .await
    .expect("a reload within 5 s")
}

/// Asserts no further reload comes: one change, one reload.
async fn no_more_reloads(events: &mut broadcast::Receiver<Event>) {
    let more = tokio::time::timeout(Duration::from_millis(400), next_reload_quiet(events)).await;
    assert!(more.is_err(), "an extra reload: {more:?}");
}

async fn next_reload_quiet(events: &mut broadcast::Receiver<Event>) -> EventKind {
    loop {
        if let Ok(event) = events.recv().await
            && matches!(
                event.kind,
                EventKind::Reloaded { .. } | EventKind::Rejected { .. }
            )
        {
            return event.kind;
        }
    }
}

fn latency_of(app: &switchboard::Switchboard) -> Option<String> {
    app.fault("slow")
        .ok()
        .map(|f| serde_json::to_string(&f.fault.kind).expect("json"))
}

fn reloaded(kind: &EventKind, faults: usize) {
    assert!(
        matches!(kind, EventKind::Reloaded { faults: f, .. } if *f == faults),
        "expected a reload with {faults} fault(s), got {kind:?}"
    );
}

#[tokio::test]
async fn edit_in_place_rename_add_and_remove_each_reload_once() {
    let dir = scratch_dir("reload-patterns");
    std::fs::write(dir.join("routes.ron"), route_file(upstream::echo().await)).expect("write");
    std::fs::write(dir.join("faults.ron"), fault_file(10)).expect("write");
    let bus = EventBus::new();
    let mut events = bus.subscribe();
    let sb = spawn_in_dir_with(&dir, bus).await;
    reloaded(&next_reload(&mut events).await, 1); // start-up
    assert_eq!(
        latency_of(&sb.app).as_deref(),
        Some(r#"{"Latency":{"ms":10,"jitter_ms":0}}"#)
    );

    // 1. An edit in place.
    std::fs::write(dir.join("faults.ron"), fault_file(20)).expect("write");
    reloaded(&next_reload(&mut events).await, 1);
    no_more_reloads(&mut events).await;
    assert!(latency_of(&sb.app).is_some_and(|k| k.contains("20")));

    // 2. An editor's save: write a temporary file, rename it over the original.
    std::fs::write(dir.join(".faults.ron.swp"), fault_file(30)).expect("write");
    std::fs::rename(dir.join(".faults.ron.swp"), dir.join("faults.ron")).expect("rename");
    reloaded(&next_reload(&mut events).await, 1);
    no_more_reloads(&mut events).await;
    assert!(latency_of(&sb.app).is_some_and(|k| k.contains("30")));

    // 3. A file added.
    std::fs::write(
        dir.join("more.ron"),
        r#"(faults: [(name: "cut", route: "r", enabled: false, kind: Partition(mode: Reset))])"#,
    )
    .expect("write");
    reloaded(&next_reload(&mut events).await, 2);
    no_more_reloads(&mut events).await;

    // 4. A file removed.
    std::fs::remove_file(dir.join("more.ron")).expect("rm");
    reloaded(&next_reload(&mut events).await, 1);
    no_more_reloads(&mut events).await;
    assert!(sb.app.fault("cut").is_err());
}

/// Lays out a directory the way Kubernetes mounts a ConfigMap: the files are symlinks through
/// `..data`, itself a symlink to a timestamped directory.
fn configmap_version(dir: &Path, version: &str, files: &[(&str, String)]) {
    let versioned = dir.join(version);
    std::fs::create_dir_all(&versioned).expect("version dir");
    for (name, text) in files {
        std::fs::write(versioned.join(name), text).expect("write");
        let link = dir.join(name);
        if !link.exists() {
            std::os::unix::fs::symlink(Path::new("..data").join(name), &link).expect("file link");
        }
    }
    // The swap is atomic: a new link is made beside the old and renamed over it.
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(version, &tmp).expect("data link");
    std::fs::rename(&tmp, dir.join("..data")).expect("swap ..data");
}

#[tokio::test]
async fn a_configmap_symlink_swap_reloads_once() {
    let dir = scratch_dir("reload-configmap");
    let routes = route_file(upstream::echo().await);
    configmap_version(
        &dir,
        "..2026_11_23_01",
        &[
            ("routes.ron", routes.clone()),
            ("faults.ron", fault_file(10)),
        ],
    );
    let bus = EventBus::new();
    let mut events = bus.subscribe();
    let sb = spawn_in_dir_with(&dir, bus).await;
    reloaded(&next_reload(&mut events).await, 1);

    configmap_version(
        &dir,
        "..2026_11_23_02",
        &[("routes.ron", routes), ("faults.ron", fault_file(99))],
    );
    std::fs::remove_dir_all(dir.join("..2026_11_23_01")).expect("old version removed");
    reloaded(&next_reload(&mut events).await, 1);
    no_more_reloads(&mut events).await;
    assert!(latency_of(&sb.app).is_some_and(|k| k.contains("99")));
}

#[tokio::test]
async fn a_broken_file_changes_nothing_and_a_later_fix_is_picked_up() {
    let dir = scratch_dir("reload-broken");
    std::fs::write(dir.join("routes.ron"), route_file(upstream::echo().await)).expect("write");
    std::fs::write(dir.join("faults.ron"), fault_file(10)).expect("write");
    let bus = EventBus::new();
    let mut events = bus.subscribe();
    let sb = spawn_in_dir_with(&dir, bus).await;
    next_reload(&mut events).await;

    std::fs::write(
        dir.join("faults.ron"),
        "(faults: [\n  (name: \"slow\", route: \"r\", kind: Latency(ms: 10)),\n  (name: \"slow\", route: \"r\", kind: Latency(ms: 20)),\n])",
    )
    .expect("write");
    let kind = next_reload(&mut events).await;
    let EventKind::Rejected { problems } = kind else {
        panic!("expected a rejection, got {kind:?}")
    };
    assert_eq!(problems.len(), 1);
    let problem = problems[0].to_string();
    assert!(
        problem.ends_with("faults.ron:3:4: fault name \"slow\" is used twice"),
        "{problem}"
    );
    // The previous rules stay in force, and the status says what was rejected.
    assert!(latency_of(&sb.app).is_some_and(|k| k.contains("10")));
    let status = sb.api().get("/v1/status").await.body;
    assert_eq!(status["last_rejected"][0]["line"], 3);
    assert_eq!(status["last_rejected"][0]["col"], 4);

    std::fs::write(dir.join("faults.ron"), fault_file(40)).expect("write");
    reloaded(&next_reload(&mut events).await, 1);
    assert!(latency_of(&sb.app).is_some_and(|k| k.contains("40")));
    assert_eq!(
        sb.api().get("/v1/status").await.body["last_rejected"],
        serde_json::Value::Null
    );
}

/// Streams seeded bytes through `addr` until `stop`, checking every byte of the echo.
async fn stream_and_check(addr: std::net::SocketAddr, seed: u64, stop: Arc<AtomicBool>) -> u64 {
    let mut client = TcpStream::connect(addr).await.expect("connect");
    let (mut r, mut w) = client.split();
    let write = async {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut chunk = vec![0u8; 8 * 1024];
        let mut sent = 0u64;
        while !stop.load(Ordering::SeqCst) {
            rng.fill_bytes(&mut chunk);
            w.write_all(&chunk)
                .await
                .expect("the connection stays open while streaming");
            sent += chunk.len() as u64;
            tokio::task::yield_now().await;
        }
        w.shutdown().await.expect("half-close");
        sent
    };
    let read = async {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut expected = vec![0u8; 8 * 1024];
        let mut offset = expected.len();
        let mut buf = vec![0u8; 16 * 1024];
        let mut received = 0u64;
        loop {
            let n = r.read(&mut buf).await.expect("read");
            if n == 0 {
                return received;
            }
            for &byte in &buf[..n] {
                if offset == expected.len() {
                    rng.fill_bytes(&mut expected);
                    offset = 0;
                }
                assert_eq!(
                    byte, expected[offset],
                    "byte {received} of connection {seed}"
                );
                offset += 1;
                received += 1;
            }
        }
    };
    let (sent, received) = tokio::join!(write, read);
    assert_eq!(sent, received, "connection {seed} lost bytes");
    received
}

#[tokio::test]
async fn reloads_under_load_drop_no_connection_of_an_unchanged_route() {
    let dir = scratch_dir("reload-load");
    let echo = upstream::echo().await;
    let other = upstream::echo().await;
    let routes = format!(
        r#"(routes: [
            (name: "steady", protocol: Tcp, listen: "127.0.0.1:0", upstream: "{echo}"),
            (name: "churn", protocol: Tcp, listen: "127.0.0.1:0", upstream: "{other}"),
        ])"#
    );
    std::fs::write(dir.join("routes.ron"), &routes).expect("write");
    let bus = EventBus::new();
    let mut events = bus.subscribe();
    let sb = spawn_in_dir_with(&dir, bus).await;
    next_reload(&mut events).await;
    let addr = sb.addr("steady").await;

    let stop = Arc::new(AtomicBool::new(false));
    let streams: Vec<_> = (0..100)
        .map(|i| tokio::spawn(stream_and_check(addr, i, Arc::clone(&stop))))
        .collect();
    for i in 0..20u64 {
        // Faults come and go on the other route, and the steady route's own fault file
        // changes too: neither may disturb its connections.
        let faults = format!(
            r#"(faults: [
                (name: "churn-{i}", route: "churn", kind: Latency(ms: {i})),
                (name: "steady-slicer", route: "steady", enabled: {}, kind: Slicer(avg_bytes: 4096)),
            ])"#,
            i % 2 == 0
        );
        std::fs::write(dir.join("faults.ron"), faults).expect("write");
        reloaded(&next_reload(&mut events).await, 2);
    }
    stop.store(true, Ordering::SeqCst);
    let mut total = 0;
    for s in streams {
        total += s.await.expect("stream task");
    }
    assert!(total > 0);
    assert_eq!(
        sb.addr("steady").await,
        addr,
        "the unchanged route was not rebound"
    );
    assert_eq!(sb.app.metrics().route("steady").snapshot().total, 100);
}
