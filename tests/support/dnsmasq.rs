//! A real upstream resolver for Dns routes: dnsmasq (Debian's dnsmasq-base) on a free port of
//! loopback, UDP and TCP, answering for `shop.internal` from its command line.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running dnsmasq, stopped when dropped.
pub struct Dnsmasq {
    child: Child,
    pub addr: SocketAddr,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The names it serves: db.primary (A and AAAA), db.secondary, a TXT and an MX record;
/// other names under shop.internal do not exist (NXDOMAIN).
pub async fn start() -> Dnsmasq {
    let port = super::free_port();
    let child = Command::new("dnsmasq")
        .args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--except-interface=none",
            &format!("--port={port}"),
            "--pid-file=",
            "--local=/shop.internal/",
            "--host-record=db.primary.shop.internal,127.0.0.10,fd00::10",
            "--host-record=db.secondary.shop.internal,127.0.0.20",
            "--txt-record=info.shop.internal,\"switchboard test\"",
            "--mx-host=shop.internal,mail.shop.internal,10",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dnsmasq starts (apt-get install dnsmasq-base)");
    let server = Dnsmasq {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    // Ready when it answers.
    let probe = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let query = super::dns_wire::query(0x0101, "db.primary.shop.internal.", "A", false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        probe.send_to(&query, server.addr).await.expect("send");
        let mut buf = [0u8; 512];
        if tokio::time::timeout(Duration::from_millis(100), probe.recv(&mut buf))
            .await
            .is_ok()
        {
            return server;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "dnsmasq did not answer on {}",
            server.addr
        );
    }
}
