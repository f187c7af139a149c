//! PostgreSQL routes against a real server (Debian's `postgresql`, installed by `.ci/run`),
//! driven by tokio-postgres (extended protocol, SCRAM login), a raw protocol client (simple
//! and extended protocol, message by message) and pgbench.

use crate::pg;
use crate::support;

use bytes::BytesMut;
use pg::{PgServer, READ_ONLY, Raw, Seen, connect, pg_route};
use postgres_protocol::message::frontend;
use support::spawn_switchboard;

/// What a client sees of one call: rows, or the error's severity, code and message.
fn outcome<T>(result: Result<Vec<T>, tokio_postgres::Error>) -> String {
    match result {
        Ok(rows) => format!("ok {}", rows.len()),
        Err(e) => match e.as_db_error() {
            Some(db) => format!("{} {} {}", db.severity(), db.code().code(), db.message()),
            None => format!("client error: {e}"),
        },
    }
}

/// The same calls, through tokio-postgres, as an application makes them: reads, writes,
/// prepared statements run twice, a transaction that a refused write aborts, and a
/// multi-statement simple query.
async fn extended_script(client: &tokio_postgres::Client) -> Vec<String> {
    let mut seen = Vec::new();
    seen.push(outcome(
        client
            .query("SELECT id, item FROM orders ORDER BY id", &[])
            .await,
    ));
    seen.push(outcome(
        client
            .query(
                "INSERT INTO orders (item) VALUES ($1) RETURNING id",
                &[&"book"],
            )
            .await,
    ));
    let update = client
        .prepare("UPDATE orders SET item = $1 WHERE id = $2")
        .await
        .expect("prepare");
    for item in ["pen", "ink"] {
        seen.push(outcome(client.query(&update, &[&item, &1i32]).await));
    }
    let select = client
        .prepare("SELECT item FROM orders WHERE id = $1")
        .await
        .expect("prepare");
    seen.push(outcome(client.query(&select, &[&1i32]).await));
    seen.push(outcome(client.simple_query("BEGIN").await));
    seen.push(outcome(client.query(&select, &[&1i32]).await));
    seen.push(outcome(client.query("DELETE FROM orders", &[]).await));
    seen.push(outcome(client.query(&select, &[&1i32]).await));
    seen.push(outcome(client.simple_query("ROLLBACK").await));
    seen.push(outcome(client.query(&select, &[&1i32]).await));
    seen.push(outcome(
        client
            .simple_query("SELECT 1; INSERT INTO orders (item) VALUES ('x'); SELECT 2")
            .await,
    ));
    seen.push(outcome(
        client.query("SELECT count(*) FROM orders", &[]).await,
    ));
    seen
}

/// Simple queries and a pipelined extended batch, message by message, with the transaction
/// status of every ReadyForQuery.
async fn raw_script(raw: &mut Raw) -> Vec<Vec<Seen>> {
    let mut seen = Vec::new();
    for sql in [
        "SELECT count(*) FROM orders",
        "INSERT INTO orders (item) VALUES ('a')",
        "BEGIN",
        "SELECT 1",
        "UPDATE orders SET item = 'b'",
        "SELECT 1",
        "ROLLBACK",
        "BEGIN; SELECT 1; DELETE FROM orders; SELECT 2; COMMIT",
        "SELECT 1",
        "ROLLBACK",
        "/* a comment */ WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone",
    ] {
        seen.push(raw.query(sql).await.expect(sql));
    }
    // Parse/Bind/Describe/Execute for a write and a read, then one Sync: the server skips the
    // read after the refused write, and the batch's implicit transaction rolls back.
    let mut batch = BytesMut::new();
    frontend::parse(
        "w",
        "INSERT INTO orders (item) VALUES ('c')",
        [],
        &mut batch,
    )
    .unwrap();
    frontend::parse("", "SELECT 1", [], &mut batch).unwrap();
    bind(&mut batch, "", "w");
    frontend::describe(b'P', "", &mut batch).unwrap();
    frontend::execute("", 0, &mut batch).unwrap();
    bind(&mut batch, "r", "");
    frontend::execute("r", 0, &mut batch).unwrap();
    frontend::sync(&mut batch);
    // Then the named statement again, alone, in an explicit transaction.
    frontend::query("BEGIN", &mut batch).unwrap();
    bind(&mut batch, "", "w");
    frontend::execute("", 0, &mut batch).unwrap();
    frontend::sync(&mut batch);
    raw.send(&batch).await.expect("batch");
    seen.push(raw.until_ready().await.expect("batch answers"));
    seen.push(raw.until_ready().await.expect("BEGIN"));
    seen.push(raw.until_ready().await.expect("named statement"));
    seen.push(raw.query("ROLLBACK").await.expect("ROLLBACK"));
    seen
}

fn bind(buf: &mut BytesMut, portal: &str, statement: &str) {
    frontend::bind(
        portal,
        statement,
        std::iter::empty::<i16>(),
        std::iter::empty::<Option<&[u8]>>(),
        |_: Option<&[u8]>,
         _: &mut BytesMut|
         -> Result<postgres_protocol::IsNull, Box<dyn std::error::Error + Sync + Send>> {
            Ok(postgres_protocol::IsNull::Yes)
        },
        Some(0),
        buf,
    )
    .map_err(|_| ())
    .expect("bind");
}

/// The fault fails writes as `default_transaction_read_only = on` does: the same errors,
/// codes and transaction states, in both query protocols, with prepared statements and
/// inside transactions, and the server never ran a refused write.
#[tokio::test]
async fn sql_error_answers_as_a_read_only_server_does() {
    let server = PgServer::start("read-only").await;
    let sb = spawn_switchboard(&pg_route(server.addr, READ_ONLY)).await;
    let proxy = sb.addr("orders-db").await;

    let (real, _a) = connect(server.addr, "readonly")
        .await
        .expect("real read-only");
    let (faulted, _b) = connect(proxy, "shop").await.expect("through the route");
    let want = extended_script(&real).await;
    let got = extended_script(&faulted).await;
    assert_eq!(
        got, want,
        "tokio-postgres sees the fault as a read-only server"
    );
    assert!(
        want.iter().filter(|s| s.contains(" 25006 ")).count() >= 4,
        "{want:?}"
    );
    assert!(want.iter().any(|s| s.contains(" 25P02 ")), "{want:?}");

    let mut real = Raw::connect(server.addr, "readonly")
        .await
        .expect("raw read-only");
    let mut faulted = Raw::connect(proxy, "shop")
        .await
        .expect("raw through the route");
    let want = raw_script(&mut real).await;
    let got = raw_script(&mut faulted).await;
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "raw step {i}");
    }
    assert_eq!(got.len(), want.len());

    // Nothing was written: the one row of the fixture is all there is, unchanged.
    let (direct, _c) = connect(server.addr, "shop").await.expect("direct");
    let rows = direct
        .query("SELECT item FROM orders", &[])
        .await
        .expect("rows");
    let items: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(items, ["first"]);

    let info = sb.api().get("/v1/routes/orders-db").await.body;
    let commands = &info["commands"];
    // Five writes refused in the first script, six in the second; the server's own errors are
    // the three 25P02s of statements in an aborted transaction.
    assert_eq!(commands["injected"], 11, "{commands}");
    assert_eq!(commands["errors"], 3, "{commands}");
    assert_eq!(commands["protocol_errors"], 0);
}

/// With no fault the route changes nothing: a raw transcript through it equals one taken
/// directly from an identical server, writes included.
#[tokio::test]
async fn without_faults_the_route_passes_everything() {
    let behind = PgServer::start("pass-behind").await;
    let beside = PgServer::start("pass-beside").await;
    let sb = spawn_switchboard(&pg_route(behind.addr, "")).await;
    let proxy = sb.addr("orders-db").await;
    let mut direct = Raw::connect(beside.addr, "shop").await.expect("direct");
    let mut through = Raw::connect(proxy, "shop").await.expect("through");
    let want = raw_script(&mut direct).await;
    assert!(
        !want.iter().flatten().any(|s| matches!(s, Seen::Error(..))),
        "{want:?}"
    );
    assert_eq!(raw_script(&mut through).await, want);
    let info = sb.api().get("/v1/routes/orders-db").await.body;
    assert_eq!(info["commands"]["injected"], 0);
    assert_eq!(info["commands"]["errors"], 0);
}
