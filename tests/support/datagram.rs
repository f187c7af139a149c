//! UDP upstreams for Udp routes: an echo, and a sink that records the number each datagram
//! carries in its first four bytes.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

/// Sends every datagram back to where it came from.
pub async fn echo() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = socket.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(&buf[..n], from).await;
        }
    });
    addr
}

/// The numbers of the datagrams a sink received, in the order they came.
pub type Seen = Arc<Mutex<Vec<u32>>>;

/// Records the first four bytes (big-endian) of every datagram it receives.
pub async fn sink() -> (SocketAddr, Seen) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind sink");
    let addr = socket.local_addr().expect("addr");
    let seen: Seen = Arc::default();
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        while let Ok(n) = socket.recv(&mut buf).await {
            if let Some(number) = buf.get(..4).filter(|_| n >= 4) {
                let number = u32::from_be_bytes([number[0], number[1], number[2], number[3]]);
                record.lock().expect("seen").push(number);
            }
        }
    });
    (addr, seen)
}

/// A datagram numbered `n`, padded to `len` bytes (at least 4).
pub fn numbered(n: u32, len: usize) -> Vec<u8> {
    let mut datagram = n.to_be_bytes().to_vec();
    datagram.resize(len.max(4), (n % 251) as u8);
    datagram
}

/// A client socket on `source` (an address of the loopback network) connected to `to`.
pub async fn client(source: &str, to: SocketAddr) -> UdpSocket {
    let socket = UdpSocket::bind(format!("{source}:0"))
        .await
        .expect("bind client");
    socket.connect(to).await.expect("connect");
    socket
}

/// The number in a received datagram.
pub fn number_of(datagram: &[u8]) -> u32 {
    u32::from_be_bytes([datagram[0], datagram[1], datagram[2], datagram[3]])
}
