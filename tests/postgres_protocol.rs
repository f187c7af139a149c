//! What passes through a PostgreSQL route untouched, against a real server: COPY both ways,
//! LISTEN/NOTIFY, cancel requests, the TLS request a server without TLS declines, pgbench's
//! three query modes; and bytes that are not the protocol, from either side.

use crate::pg;
use crate::support;

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, TryStreamExt};
use pg::{PgServer, READ_ONLY, Raw, Seen, connect, pg_route};
use support::{eventually, spawn_switchboard};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn copy_in(
    client: &tokio_postgres::Client,
    data: &'static str,
) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in("COPY orders (item) FROM STDIN").await?;
    futures_util::pin_mut!(sink);
    sink.send(Bytes::from_static(data.as_bytes())).await?;
    sink.finish().await
}

/// COPY in and out passes through; under the read-only fault a COPY FROM fails as on a
/// read-only server, and COPY TO still works.
#[tokio::test]
async fn copy_passes_and_fails_as_a_read_only_server() {
    let server = PgServer::start("copy").await;
    let sb = spawn_switchboard(&pg_route(server.addr, "")).await;
    let proxy = sb.addr("orders-db").await;
    let (client, _a) = connect(proxy, "shop").await.expect("connect");
    assert_eq!(copy_in(&client, "book\npen\n").await.expect("COPY FROM"), 2);
    let out = client
        .copy_out("COPY (SELECT item FROM orders ORDER BY id) TO STDOUT")
        .await
        .expect("COPY TO");
    let chunks: Vec<Bytes> = out.try_collect().await.expect("COPY data");
    assert_eq!(chunks.concat(), b"first\nbook\npen\n");

    sb.set_rules(&pg_route(server.addr, READ_ONLY)).await;
    let (real, _b) = connect(server.addr, "readonly").await.expect("read-only");
    let want = copy_in(&real, "x\n").await.expect_err("read-only COPY");
    let got = copy_in(&client, "x\n").await.expect_err("faulted COPY");
    let fields = |e: &tokio_postgres::Error| {
        e.as_db_error()
            .map(|db| (db.severity().to_string(), db.code().code().to_string()))
    };
    assert_eq!(fields(&got), fields(&want));
    assert_eq!(fields(&got).map(|f| f.1).as_deref(), Some("25006"));
    // tokio-postgres then takes the ReadyForQuery of its CopyFail for the next call's answer
    // (on the real server too), so the read goes on a fresh connection.
    let (client, _c) = connect(proxy, "shop").await.expect("connect again");
    let out = client
        .copy_out("COPY orders TO STDOUT")
        .await
        .expect("COPY TO, read-only");
    let rows: Vec<Bytes> = out.try_collect().await.expect("COPY data");
    assert_eq!(rows.concat().iter().filter(|&&b| b == b'\n').count(), 3);
}

/// A notification reaches a listener through the route, between its queries.
#[tokio::test]
async fn listen_notify_passes_through() {
    let server = PgServer::start("notify").await;
    let sb = spawn_switchboard(&pg_route(server.addr, "")).await;
    let proxy = sb.addr("orders-db").await;
    let mut listener = Raw::connect(proxy, "shop").await.expect("listener");
    listener.query("LISTEN orders").await.expect("LISTEN");
    let mut sender = Raw::connect(proxy, "shop").await.expect("sender");
    sender
        .query("NOTIFY orders, 'placed'")
        .await
        .expect("NOTIFY");
    assert_eq!(
        listener.next().await.expect("the notification"),
        Seen::Other('A')
    );
}

/// A cancel request sent to the route reaches the server and cancels the query it names.
#[tokio::test]
async fn a_cancel_request_cancels_the_running_query() {
    let server = PgServer::start("cancel").await;
    let sb = spawn_switchboard(&pg_route(server.addr, "")).await;
    let (client, _a) = connect(sb.addr("orders-db").await, "shop")
        .await
        .expect("connect");
    let token = client.cancel_token();
    let sleeping =
        tokio::spawn(async move { client.simple_query("SELECT pg_sleep(60)").await.map(|_| ()) });
    let (admin, _b) = connect(server.addr, "shop").await.expect("admin");
    eventually(Duration::from_secs(10), "the query runs", || {
        let admin = &admin;
        async move {
            admin
                .query(
                    "SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'",
                    &[],
                )
                .await
                .is_ok_and(|rows| rows.len() == 1)
        }
    })
    .await;
    token
        .cancel_query(tokio_postgres::NoTls)
        .await
        .expect("cancel through the route");
    let result = tokio::time::timeout(Duration::from_secs(10), sleeping)
        .await
        .expect("the query ends within 10 s")
        .expect("task");
    let err = result.expect_err("cancelled");
    assert_eq!(
        err.as_db_error().map(|db| db.code().code()),
        Some("57014"),
        "{err}"
    );
}

/// A client that asks for TLS first (psql's and libpq's default, `sslmode=prefer`) is told
/// `N`, as by a server without TLS, and goes on in plaintext.
#[tokio::test]
async fn an_ssl_request_is_declined_and_the_client_goes_on() {
    let server = PgServer::start("ssl").await;
    let sb = spawn_switchboard(&pg_route(server.addr, "")).await;
    let proxy = sb.addr("orders-db").await;
    let (mut direct, mut through) = (
        tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("direct"),
        tokio::net::TcpStream::connect(proxy)
            .await
            .expect("through"),
    );
    let ssl_request = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    let mut answers = Vec::new();
    for socket in [&mut direct, &mut through] {
        socket.write_all(&ssl_request).await.expect("request");
        let mut answer = [0u8; 1];
        socket.read_exact(&mut answer).await.expect("answer");
        answers.push(answer[0]);
    }
    assert_eq!(answers, [b'N', b'N']);
    drop(direct);
    // GSSAPI encryption is declined too (a server built with GSSAPI would say `G`; the route
    // reads the protocol, so it cannot pass an encrypted stream on).
    let gss_request = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];
    through.write_all(&gss_request).await.expect("GSS request");
    let mut answer = [0u8; 1];
    through.read_exact(&mut answer).await.expect("answer");
    assert_eq!(answer[0], b'N');
    let mut startup = bytes::BytesMut::new();
    postgres_protocol::message::frontend::startup_message(
        [("user", "raw"), ("database", "shop")],
        &mut startup,
    )
    .expect("startup");
    through
        .write_all(&startup)
        .await
        .expect("startup after the declined requests");
    let mut first = [0u8; 1];
    through
        .read_exact(&mut first)
        .await
        .expect("the server's answer");
    assert_eq!(first[0], b'R', "authentication goes on");
}

/// Bytes that are not the protocol close that connection only, with a counted protocol
/// error; other connections go on.
#[tokio::test]
async fn garbage_closes_only_its_connection() {
    let server = PgServer::start("garbage").await;
    let sb = spawn_switchboard(&pg_route(server.addr, "")).await;
    let proxy = sb.addr("orders-db").await;
    let (client, _a) = connect(proxy, "shop").await.expect("connect");

    let mut http = tokio::net::TcpStream::connect(proxy)
        .await
        .expect("connect");
    http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), http.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the connection is closed");
    assert!(rest.is_empty());

    let mut raw = Raw::connect(proxy, "shop").await.expect("raw");
    raw.send(b"Q\xff\xff\xff\xffSELECT 1\0")
        .await
        .expect("a message with a length out of range");
    assert!(raw.next().await.is_err(), "closed");

    assert_eq!(
        client
            .query("SELECT 1", &[])
            .await
            .expect("still works")
            .len(),
        1
    );
    let info = sb.api().get("/v1/routes/orders-db").await.body;
    assert_eq!(info["commands"]["protocol_errors"], 2, "{info}");
}

/// A server that answers with something else is a protocol error too.
#[tokio::test]
async fn garbage_from_the_server_closes_the_connection() {
    let addr = support::garbage_upstream().await;
    let sb = spawn_switchboard(&pg_route(addr, "")).await;
    let err = Raw::connect(sb.addr("orders-db").await, "shop")
        .await
        .err()
        .map(|e| e.kind());
    assert!(err.is_some());
    let info = sb.api().get("/v1/routes/orders-db").await.body;
    assert_eq!(info["commands"]["protocol_errors"], 1, "{info}");
}

/// pgbench through the route, in each query mode, with no fault: every transaction passes.
#[tokio::test]
async fn pgbench_passes_without_errors() {
    let server = PgServer::start("pgbench").await;
    let sb = spawn_switchboard(&pg_route(server.addr, "")).await;
    let proxy = sb.addr("orders-db").await;
    let pgbench = pg::bin_dir().join("pgbench");
    let run = move |args: &[&str]| {
        let out = std::process::Command::new(&pgbench)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &proxy.port().to_string(),
                "-U",
                "app",
            ])
            .args(args)
            .arg("shop")
            .env("PGPASSWORD", pg::PASSWORD)
            .output()
            .expect("pgbench");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "pgbench {args:?}: {text}");
        text
    };
    let init = tokio::task::spawn_blocking({
        let run = run.clone();
        move || run(&["-i", "-s", "1", "-q"])
    });
    init.await.expect("init");
    for mode in ["simple", "extended", "prepared"] {
        let text = tokio::task::spawn_blocking({
            let run = run.clone();
            move || run(&["-c", "4", "-j", "2", "-t", "100", "-M", mode])
        })
        .await
        .expect("pgbench");
        assert!(
            text.contains("number of transactions actually processed: 400/400"),
            "{mode}: {text}"
        );
        assert!(
            text.contains("number of failed transactions: 0 "),
            "{mode}: {text}"
        );
    }
    let info = sb.api().get("/v1/routes/orders-db").await.body;
    assert_eq!(info["commands"]["errors"], 0, "{info}");
    assert_eq!(info["commands"]["protocol_errors"], 0, "{info}");
}
