//! PostgreSQL faults that end connections, refuse them, hold statements or switch on in the
//! middle of a transaction, against a real server.

use crate::pg;
use crate::support;

use std::time::{Duration, Instant};

use pg::{PgServer, Raw, Seen, connect, pg_route};
use support::{eventually, spawn_switchboard};

fn code(e: &tokio_postgres::Error) -> Option<String> {
    e.as_db_error().map(|db| db.code().code().to_string())
}

/// `Shutdown` answers as a server whose administrator ended the connection while it ran a
/// statement (`pg_terminate_backend` on an UPDATE waiting for a lock): the client reads the
/// same FATAL error and then the end of the connection. Its reconnect works.
#[tokio::test]
async fn shutdown_ends_the_connection_as_pg_terminate_backend_does() {
    let server = PgServer::start("shutdown").await;
    let sb = spawn_switchboard(&pg_route(
        server.addr,
        r#"(name: "failover", route: "orders-db", when: (statement: ["UPDATE"]), kind: Shutdown())"#,
    ))
    .await;
    let proxy = sb.addr("orders-db").await;
    const UPDATE: &str = "UPDATE orders SET item = 'changed'";

    // The real thing: the UPDATE waits for a row another transaction holds, and is ended.
    let (locker, _a) = connect(server.addr, "shop").await.expect("locker");
    locker
        .batch_execute("BEGIN; UPDATE orders SET item = 'locked'")
        .await
        .expect("lock");
    let mut real = Raw::connect(server.addr, "shop").await.expect("raw");
    real.send(&query_bytes(UPDATE)).await.expect("send");
    let (admin, _b) = connect(server.addr, "shop").await.expect("admin");
    eventually(Duration::from_secs(10), "the UPDATE waits for the lock", || {
        let admin = &admin;
        async move {
            let waiting = admin
                .query(
                    "SELECT 1 FROM pg_stat_activity WHERE usename = 'raw' AND wait_event_type = 'Lock'",
                    &[],
                )
                .await;
            waiting.is_ok_and(|rows| rows.len() == 1)
        }
    })
    .await;
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'raw'",
            &[],
        )
        .await
        .expect("terminate");
    let want = [
        real.next().await.map_err(|e| e.kind()),
        real.next().await.map_err(|e| e.kind()),
    ];
    locker.batch_execute("ROLLBACK").await.expect("unlock");

    let mut faulted = Raw::connect(proxy, "shop")
        .await
        .expect("raw through the route");
    faulted.send(&query_bytes(UPDATE)).await.expect("send");
    let got = [
        faulted.next().await.map_err(|e| e.kind()),
        faulted.next().await.map_err(|e| e.kind()),
    ];
    assert_eq!(
        got[0],
        Ok(Seen::Error(
            "FATAL".into(),
            "57P01".into(),
            "terminating connection due to administrator command".into()
        ))
    );
    assert_eq!(got[1], Err(std::io::ErrorKind::UnexpectedEof));
    assert_eq!(got, want);

    // As tokio-postgres reports it, on a prepared statement, and a reconnect that works.
    let (client, _c) = connect(proxy, "shop").await.expect("connect");
    let err = client.execute(UPDATE, &[]).await.expect_err("shut down");
    assert_eq!(code(&err).as_deref(), Some("57P01"), "{err}");
    eventually(
        Duration::from_secs(5),
        "the client sees its connection closed",
        || {
            let closed = client.is_closed();
            async move { closed }
        },
    )
    .await;
    let (again, _d) = connect(proxy, "shop").await.expect("reconnect");
    let rows = again
        .query("SELECT item FROM orders", &[])
        .await
        .expect("a read");
    let items: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(items, ["first"], "no UPDATE ran");
    let info = sb.api().get("/v1/routes/orders-db").await.body;
    assert_eq!(info["commands"]["injected"], 2, "{info}");
}

/// The FATAL error the route gives is the one the server writes, read message by message.
#[tokio::test]
async fn shutdown_writes_the_fatal_error_then_closes() {
    let server = PgServer::start("shutdown-raw").await;
    let sb = spawn_switchboard(&pg_route(
        server.addr,
        r#"(name: "failover", route: "orders-db", kind: Shutdown(code: "57P01", message: "terminating connection due to administrator command"))"#,
    ))
    .await;
    let mut raw = Raw::connect(sb.addr("orders-db").await, "shop")
        .await
        .expect("raw");
    raw.send(&query_bytes("SELECT 1")).await.expect("send");
    assert_eq!(
        raw.next().await.expect("the error"),
        Seen::Error(
            "FATAL".into(),
            "57P01".into(),
            "terminating connection due to administrator command".into()
        )
    );
    assert_eq!(
        raw.next().await.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::UnexpectedEof)
    );
}

fn query_bytes(sql: &str) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    postgres_protocol::message::frontend::query(sql, &mut out).expect("query");
    out.to_vec()
}

/// `Reject` refuses new connections at startup with a FATAL error, only for the database it
/// names; connections already open go on.
#[tokio::test]
async fn reject_refuses_new_connections_at_startup() {
    let server = PgServer::start("reject").await;
    let sb = spawn_switchboard(&pg_route(server.addr, "")).await;
    let proxy = sb.addr("orders-db").await;
    let (open, _a) = connect(proxy, "shop").await.expect("before the fault");
    sb.set_rules(&pg_route(
        server.addr,
        r#"(name: "full", route: "orders-db", when: (database: "shop"), kind: Reject())"#,
    ))
    .await;

    let Err(err) = connect(proxy, "shop").await else {
        panic!("a connection was let in under Reject");
    };
    assert_eq!(code(&err).as_deref(), Some("53300"), "{err}");
    let Err(raw) = Raw::connect(proxy, "shop").await else {
        panic!("a raw connection was let in under Reject");
    };
    assert_eq!(raw.to_string(), "53300 sorry, too many clients already");
    connect(proxy, "readonly")
        .await
        .expect("another database is not refused");
    let rows = open
        .query("SELECT 1", &[])
        .await
        .expect("the open connection");
    assert_eq!(rows.len(), 1);
    let info = sb.api().get("/v1/routes/orders-db").await.body;
    assert_eq!(info["stats"]["failed"], 2, "{info}");
}

/// `Delay` holds matching statements by its time, and only those.
#[tokio::test]
async fn delay_holds_matching_statements() {
    let server = PgServer::start("delay").await;
    let sb = spawn_switchboard(&pg_route(
        server.addr,
        r#"(name: "slow-reads", route: "orders-db", when: (statement: ["@read"], matches: "orders"), kind: Delay(ms: 1500))"#,
    ))
    .await;
    let proxy = sb.addr("orders-db").await;
    let (reader, _a) = connect(proxy, "shop").await.expect("connect");
    let (writer, _b) = connect(proxy, "shop").await.expect("connect");
    let started = Instant::now();
    let read = tokio::spawn(async move {
        reader
            .query("SELECT * FROM orders", &[])
            .await
            .map(|rows| rows.len())
    });
    // A write on another connection is not matched: it is done while the read is held.
    writer
        .execute("INSERT INTO orders (item) VALUES ('fast')", &[])
        .await
        .expect("write");
    assert!(
        !read.is_finished(),
        "the write finished after the held read"
    );
    let rows = read.await.expect("task").expect("read");
    let took = started.elapsed();
    assert!(rows >= 1);
    // At least the delay; the upper bound only catches a delay applied twice or never ended.
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_millis(6500),
        "a held read took {took:?}"
    );
}

/// `Drop` closes the connection when a matching statement arrives; the server never runs it.
#[tokio::test]
async fn drop_closes_before_the_statement_runs() {
    let server = PgServer::start("drop").await;
    let sb = spawn_switchboard(&pg_route(
        server.addr,
        r#"(name: "gone", route: "orders-db", when: (statement: ["DELETE"]), kind: Drop())"#,
    ))
    .await;
    let (client, _a) = connect(sb.addr("orders-db").await, "shop")
        .await
        .expect("connect");
    let err = client
        .execute("DELETE FROM orders", &[])
        .await
        .expect_err("dropped");
    assert!(err.is_closed() || code(&err).is_none(), "{err}");
    let (direct, _b) = connect(server.addr, "shop").await.expect("direct");
    let rows = direct
        .query("SELECT * FROM orders", &[])
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1, "the DELETE never reached the server");
    let info = sb.api().get("/v1/routes/orders-db").await.body;
    assert_eq!(info["commands"]["dropped"], 1, "{info}");
}

/// A fault switched on while a transaction is open fails the next write; the transaction is
/// then aborted on both sides, and what it wrote before is rolled back.
#[tokio::test]
async fn a_fault_switched_on_inside_a_transaction() {
    let server = PgServer::start("mid-tx").await;
    let sb = spawn_switchboard(&pg_route(server.addr, "")).await;
    let (client, _a) = connect(sb.addr("orders-db").await, "shop")
        .await
        .expect("connect");
    client.batch_execute("BEGIN").await.expect("BEGIN");
    client
        .execute("INSERT INTO orders (item) VALUES ('before')", &[])
        .await
        .expect("a write before the fault");
    sb.set_rules(&pg_route(
        server.addr,
        r#"(name: "read-only", route: "orders-db", when: (statement: ["@write"]),
            kind: SqlError(code: "25006", message: "cannot execute {statement} in a read-only transaction"))"#,
    ))
    .await;
    let err = client
        .execute("INSERT INTO orders (item) VALUES ('after')", &[])
        .await
        .expect_err("refused");
    assert_eq!(code(&err).as_deref(), Some("25006"));
    let err = client.query("SELECT 1", &[]).await.expect_err("aborted");
    assert_eq!(code(&err).as_deref(), Some("25P02"));
    client.batch_execute("ROLLBACK").await.expect("ROLLBACK");
    let rows = client
        .query("SELECT item FROM orders", &[])
        .await
        .expect("read");
    let items: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        items,
        ["first"],
        "the write before the fault was rolled back"
    );
}

/// TCP faults act on a Postgres route as on a Tcp route: latency slows every round trip of
/// an open connection, a reset partition cuts it and refuses new ones, and lifting it lets
/// clients back in.
#[tokio::test]
async fn tcp_faults_work_on_a_postgres_route() {
    let server = PgServer::start("tcp-faults").await;
    let sb = spawn_switchboard(&pg_route(server.addr, "")).await;
    let proxy = sb.addr("orders-db").await;
    let (client, _a) = connect(proxy, "shop").await.expect("connect");
    sb.set_rules(&pg_route(
        server.addr,
        r#"(name: "slow", route: "orders-db", direction: Downstream, kind: Latency(ms: 300))"#,
    ))
    .await;
    let started = Instant::now();
    client.simple_query("SELECT 1").await.expect("slow query");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "a query under Latency(300) took {took:?}"
    );

    sb.set_rules(&pg_route(
        server.addr,
        r#"(name: "cut", route: "orders-db", kind: Partition(mode: Reset))"#,
    ))
    .await;
    eventually(Duration::from_secs(5), "the open connection is cut", || {
        let closed = client.is_closed();
        async move { closed }
    })
    .await;
    assert!(
        connect(proxy, "shop").await.is_err(),
        "a new connection during the partition"
    );

    sb.set_rules(&pg_route(server.addr, "")).await;
    let (again, _b) = connect(proxy, "shop").await.expect("after the partition");
    assert_eq!(again.query("SELECT 1", &[]).await.expect("query").len(), 1);
}
