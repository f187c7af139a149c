//! Clients that connect from a chosen loopback address (`127.0.0.2`, say), so that faults
//! aimed at one client address can be seen to pass another by.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `to` from `source` (any port).
pub async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let ip: IpAddr = source.parse().expect("source address");
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(ip, 0))
        .unwrap_or_else(|e| panic!("bind {source}: {e}"));
    let stream = socket.connect(to).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// An HTTP/1.1 answer as a client saw it: the status (None when the connection closed with no
/// answer), the headers' text and the body.
#[derive(Debug)]
pub struct Answer {
    pub status: Option<u16>,
    pub head: String,
    pub body: String,
}

/// `GET path` with `headers` on a connection of its own from `source`; reads to the close.
pub async fn get_from(
    source: &str,
    to: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut stream = connect_from(source, to).await;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
        }
    });
    read.await.expect("the answer within 20 s");
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok());
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}
