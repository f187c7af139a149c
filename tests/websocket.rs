//! Connections that switch protocols (WebSocket) on an HTTP route: after the 101, the tunnel
//! is under the route's partitions, and a stop reaches it.

use crate::support;

use std::net::SocketAddr;
use std::time::Duration;

use support::http_upstream::{self, HttpUpstream};
use support::spawn_switchboard;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn rules(upstream: &HttpUpstream, partition: Option<&str>) -> String {
    let fault = partition.map_or(String::new(), |mode| {
        format!(r#"(name: "cut", route: "web", kind: Partition(mode: {mode}))"#)
    });
    format!(
        r#"(
  routes: [(name: "web", protocol: Http, listen: "127.0.0.1:0", upstream: "{}")],
  faults: [{fault}],
)"#,
        upstream.url()
    )
}

/// Connects and upgrades to a WebSocket through the route; the upstream echoes after its 101.
async fn open_tunnel(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: shop\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .expect("handshake");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("handshake answer")
            .expect("read");
        assert_eq!(n, 1, "closed during the handshake");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

async fn echo(stream: &mut TcpStream, message: &[u8], within: Duration) -> Result<Vec<u8>, String> {
    stream.write_all(message).await.map_err(|e| e.to_string())?;
    let mut back = vec![0u8; message.len()];
    match tokio::time::timeout(within, stream.read_exact(&mut back)).await {
        Err(_) => Err("no echo in time".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(_)) => Ok(back),
    }
}

/// Resolves with how the tunnel ended for the client, or fails after 5 s.
async fn ended(stream: &mut TcpStream) -> String {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await {
        Err(_) => panic!("the tunnel stayed open"),
        Ok(Ok(0)) => "closed".into(),
        Ok(Ok(_)) => panic!("a byte nobody sent"),
        Ok(Err(e)) => e.to_string(),
    }
}

#[tokio::test]
async fn a_blackhole_holds_an_open_tunnel_and_its_lift_delivers_what_was_held() {
    let upstream = http_upstream::start().await;
    let sb = spawn_switchboard(&rules(&upstream, None)).await;
    let mut tunnel = open_tunnel(sb.addr("web").await).await;
    assert_eq!(
        echo(&mut tunnel, b"before", Duration::from_secs(5))
            .await
            .as_deref(),
        Ok(&b"before"[..])
    );

    sb.set_rules(&rules(&upstream, Some("Blackhole"))).await;
    // Held, not lost: nothing comes back while the blackhole is in force...
    assert_eq!(
        echo(&mut tunnel, b"held", Duration::from_millis(300)).await,
        Err("no echo in time".into())
    );
    // ...and the held bytes arrive once it lifts.
    sb.set_rules(&rules(&upstream, None)).await;
    let mut back = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), tunnel.read_exact(&mut back))
        .await
        .expect("the held bytes after the lift")
        .expect("read");
    assert_eq!(&back, b"held");
}

#[tokio::test]
async fn a_refuse_partition_cuts_an_idle_tunnel_at_once() {
    let upstream = http_upstream::start().await;
    let sb = spawn_switchboard(&rules(&upstream, None)).await;
    let mut tunnel = open_tunnel(sb.addr("web").await).await;
    assert!(
        echo(&mut tunnel, b"up", Duration::from_secs(5))
            .await
            .is_ok()
    );
    sb.set_rules(&rules(&upstream, Some("Refuse"))).await;
    ended(&mut tunnel).await;
    assert_eq!(sb.app.metrics().times_fired("cut"), 1);
}

#[tokio::test]
async fn a_stop_ends_open_tunnels_when_the_grace_period_runs_out() {
    let upstream = http_upstream::start().await;
    let sb = spawn_switchboard(&rules(&upstream, None)).await;
    let mut tunnel = open_tunnel(sb.addr("web").await).await;
    assert!(
        echo(&mut tunnel, b"up", Duration::from_secs(5))
            .await
            .is_ok()
    );
    // The tunnel is tracked: the stop waits for it, then ends it.
    let unfinished = sb.app.shutdown(Duration::from_millis(300)).await;
    assert_eq!(unfinished, 1, "the open tunnel outlived the grace period");
    ended(&mut tunnel).await;
}
