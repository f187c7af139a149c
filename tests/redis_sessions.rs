//! Redis routes across a connection's life: RESP3 pub/sub with commands between pushes, AUTH
//! before the faulted commands, and a fault switched on inside MULTI; plus the command table
//! the route ships, checked against the installed server's COMMAND.

use crate::rd;
use crate::support;

use rd::*;
use support::spawn_switchboard;
use tokio::io::AsyncWriteExt;

const READ_ONLY: &str = r#"(name: "read-only", route: "cache", when: (command: ["@write"]),
    kind: Error(message: "READONLY You can't write against a read only replica."))"#;

async fn send(socket: &mut tokio::net::TcpStream, commands: &[&str]) {
    let mut wire = String::new();
    for command in commands {
        wire.push_str(command);
        wire.push_str("\r\n");
    }
    socket.write_all(wire.as_bytes()).await.expect("write");
}

/// On a RESP3 connection a subscriber may still send commands: messages arrive as pushes,
/// faults answer its commands in order between them, and unfaulted ones reach the server.
#[tokio::test]
async fn resp3_pubsub_with_faulted_commands_between_pushes() {
    let server = start_redis().await;
    let sb = spawn_switchboard(&redis_route(server.addr, READ_ONLY)).await;
    let proxy = sb.addr("cache").await;
    let mut subscriber = tokio::net::TcpStream::connect(proxy)
        .await
        .expect("connect");
    send(&mut subscriber, &["HELLO 3", "SUBSCRIBE news"]).await;
    let replies = text(&read_replies(&mut subscriber, 2).await);
    assert!(
        replies[0].starts_with('%'),
        "HELLO 3 answers a map: {replies:?}"
    );
    assert_eq!(replies[1], ">3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");

    let published = pipeline(proxy, &["PUBLISH news hello"], 1).await;
    assert_eq!(text(&published), [":1\r\n"]);
    let message = text(&read_replies(&mut subscriber, 1).await);
    assert_eq!(
        message,
        [">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n"]
    );

    send(&mut subscriber, &["SET k v", "PING", "GET k"]).await;
    let replies = text(&read_replies(&mut subscriber, 3).await);
    assert_eq!(
        replies,
        [
            "-READONLY You can't write against a read only replica.\r\n",
            "+PONG\r\n",
            "_\r\n"
        ]
    );
}

/// AUTH passes through untouched, failed and good; the fault then answers writes only.
#[tokio::test]
async fn auth_passes_and_the_fault_answers_after_it() {
    let server = start_redis_with(&["--requirepass".into(), "s3cret".into()]).await;
    let sb = spawn_switchboard(&redis_route(server.addr, READ_ONLY)).await;
    let proxy = sb.addr("cache").await;
    let replies = pipeline(
        proxy,
        &["GET k", "AUTH wrong", "AUTH s3cret", "SET k v", "GET k"],
        5,
    )
    .await;
    let replies = text(&replies);
    assert!(replies[0].starts_with("-NOAUTH"), "{replies:?}");
    assert!(replies[1].starts_with("-WRONGPASS"), "{replies:?}");
    assert_eq!(
        replies[2..],
        [
            "+OK\r\n",
            "-READONLY You can't write against a read only replica.\r\n",
            "$-1\r\n"
        ]
    );
    let info = sb.api().get("/v1/routes/cache").await.body;
    assert_eq!(info["commands"]["injected"], 1, "{info}");
    assert_eq!(info["commands"]["errors"], 2, "{info}");
}

/// A fault switched on while MULTI is open refuses the next write; the transaction is then
/// flagged on the client's side and discarded on the server's, so EXEC runs nothing.
#[tokio::test]
async fn a_fault_switched_on_inside_multi() {
    let server = start_redis().await;
    let sb = spawn_switchboard(&redis_route(server.addr, "")).await;
    let proxy = sb.addr("cache").await;
    let mut client = tokio::net::TcpStream::connect(proxy)
        .await
        .expect("connect");
    send(&mut client, &["MULTI", "SET a 1"]).await;
    assert_eq!(
        text(&read_replies(&mut client, 2).await),
        ["+OK\r\n", "+QUEUED\r\n"]
    );
    sb.set_rules(&redis_route(server.addr, READ_ONLY)).await;
    send(&mut client, &["SET b 2", "EXEC", "GET a"]).await;
    assert_eq!(
        text(&read_replies(&mut client, 3).await),
        [
            "-READONLY You can't write against a read only replica.\r\n",
            "-EXECABORT Transaction discarded because of previous errors.\r\n",
            "$-1\r\n"
        ]
    );
    let direct = pipeline(server.addr, &["EXISTS a", "EXISTS b"], 2).await;
    assert_eq!(
        text(&direct),
        [":0\r\n", ":0\r\n"],
        "the server ran nothing of it"
    );
}

/// The command table the route classifies with (from redis 7.0's COMMAND) agrees with the
/// installed server on every command both know: the same categories and first key position.
#[tokio::test]
async fn the_command_table_agrees_with_the_installed_server() {
    let server = start_redis().await;
    let addr = server.addr;
    let table: Vec<redis::Value> = blocking(move || {
        let mut con = connection(addr).expect("connect");
        redis::cmd("COMMAND").query(&mut con).expect("COMMAND")
    })
    .await;
    let ours = include_str!("../src/proxy/redis/commands.txt");
    let mut checked = 0;
    for entry in table {
        let redis::Value::Array(fields) = entry else {
            continue;
        };
        let name = match &fields[0] {
            redis::Value::BulkString(b) => String::from_utf8_lossy(b).to_lowercase(),
            other => panic!("command name {other:?}"),
        };
        let Some(line) = ours
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name.as_str()))
        else {
            continue;
        };
        let first_key = match &fields[3] {
            redis::Value::Int(n) => n.to_string(),
            other => panic!("first key {other:?}"),
        };
        let mut categories: Vec<String> = match &fields[6] {
            redis::Value::Array(c) => c
                .iter()
                .map(|v| match v {
                    redis::Value::SimpleString(s) => s.trim_start_matches('@').to_string(),
                    redis::Value::BulkString(b) => String::from_utf8_lossy(b)
                        .trim_start_matches('@')
                        .to_string(),
                    other => panic!("category {other:?}"),
                })
                .collect(),
            other => panic!("categories {other:?}"),
        };
        categories.sort();
        assert!(
            line.contains(&first_key),
            "{name}: first key {first_key} vs {line}"
        );
        for c in &categories {
            assert!(
                line.contains(c.as_str()),
                "{name}: category {c} missing from {line}"
            );
        }
        checked += 1;
    }
    assert!(checked > 200, "only {checked} commands checked");
}

/// A server that answers with something that is not RESP is a protocol error: that
/// connection closes and is counted.
#[tokio::test]
async fn garbage_from_the_server_closes_the_connection() {
    use tokio::io::AsyncReadExt;
    let addr = support::garbage_upstream().await;
    let sb = spawn_switchboard(&redis_route(addr, "")).await;
    let mut client = tokio::net::TcpStream::connect(sb.addr("cache").await)
        .await
        .expect("connect");
    send(&mut client, &["PING"]).await;
    let mut got = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        client.read_to_end(&mut got),
    )
    .await;
    assert!(read.is_ok(), "the connection is closed");
    assert!(
        got.is_empty(),
        "nothing of the garbage reaches the client: {got:?}"
    );
    let info = sb.api().get("/v1/routes/cache").await.body;
    assert_eq!(info["commands"]["protocol_errors"], 1, "{info}");
}
