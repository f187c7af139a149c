//! Readers never wait for a change in progress: a change that is slow to prepare (here, a
//! certificate that is a FIFO, read once to validate the rules and again to start the route,
//! held the second time) takes the change lock, while `/v1/routes` and `/v1/status` answer.

use crate::support;

use std::io::Write;
use std::time::Duration;

use rcgen::{CertificateParams, KeyPair};
use support::{route_with, rules, scratch_dir, spawn_switchboard, upstream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_routes_does_not_wait_for_a_change_reading_its_certificate() {
    let dir = scratch_dir("locks-fifo");
    let key = KeyPair::generate().expect("key");
    let cert_pem = CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert")
        .pem();
    let key_path = dir.join("key.pem");
    std::fs::write(&key_path, key.serialize_pem()).expect("key");
    let cert = dir.join("cert.pem");
    let made = std::process::Command::new("mkfifo")
        .arg(&cert)
        .status()
        .expect("mkfifo");
    assert!(made.success());

    // The FIFO's writer: readers get the certificate at once (the test's own validation
    // reads it too), except the first once the change has begun, which waits until the test
    // says go. The thread outlives the test, blocked in its last open.
    let (reading_tx, reading) = std::sync::mpsc::channel();
    let (go, go_rx) = std::sync::mpsc::channel::<()>();
    let fifo = cert.clone();
    let begun = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let change_begun = std::sync::Arc::clone(&begun);
    std::thread::spawn(move || {
        let mut held = false;
        loop {
            // Opening to write blocks until a reader opens the FIFO.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(&fifo)
                .expect("open");
            if !held && change_begun.load(std::sync::atomic::Ordering::SeqCst) {
                held = true;
                let _ = reading_tx.send(());
                let _ = go_rx.recv();
            }
            let _ = file.write_all(cert_pem.as_bytes());
        }
    });

    let echo = upstream::echo().await;
    let sb = spawn_switchboard(&route_with("r", echo, "")).await;
    let text = format!(
        r#"(routes: [
            (name: "r", protocol: Tcp, listen: "127.0.0.1:0", upstream: "{echo}"),
            (name: "secure", protocol: Http, listen: "127.0.0.1:0", upstream: "http://{echo}",
             tls: (cert: "{}", key: "{}")),
        ])"#,
        cert.display(),
        key_path.display()
    );
    let files = tokio::task::spawn_blocking(move || rules(&text))
        .await
        .expect("validated");
    let app = sb.app.clone();
    begun.store(true, std::sync::atomic::Ordering::SeqCst);
    let change = tokio::spawn(async move { app.apply_files(files).await });
    tokio::task::spawn_blocking(move || reading.recv_timeout(Duration::from_secs(10)))
        .await
        .expect("task")
        .expect("the change to open the certificate");

    let api = sb.api();
    let routes = tokio::time::timeout(Duration::from_secs(2), api.get("/v1/routes"))
        .await
        .expect("/v1/routes answers while the change waits on its certificate");
    assert_eq!(routes.status, 200);
    assert!(
        routes.body.to_string().contains(r#""bound""#),
        "{}",
        routes.body
    );
    let status = tokio::time::timeout(Duration::from_secs(2), api.get("/v1/status"))
        .await
        .expect("/v1/status answers too");
    assert_eq!(status.status, 200);
    assert!(!change.is_finished(), "the change is still waiting");

    go.send(()).expect("go");
    let result = tokio::time::timeout(Duration::from_secs(10), change)
        .await
        .expect("the change ends")
        .expect("task");
    assert!(result.is_ok(), "{result:?}");
    assert!(sb.app.route_addr("secure").await.is_some());
}
