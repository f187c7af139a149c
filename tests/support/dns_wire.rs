//! DNS messages for tests, built and read with hickory-proto, and dig run as a user runs it.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};

/// A recursive query for `name` of type `qtype` with id `id`, with an OPT record asking for
/// DNSSEC records when `dnssec`.
pub fn query(id: u16, name: &str, qtype: &str, dnssec: bool) -> Vec<u8> {
    let mut message = Message::query();
    message.metadata.id = id;
    message.metadata.recursion_desired = true;
    let qtype = RecordType::from_str(qtype).expect("record type");
    message.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    if dnssec {
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        edns.set_dnssec_ok(true);
        message.set_edns(edns);
    }
    message.to_vec().expect("encode")
}

/// Sends `query` over UDP to `server` and returns the answer's bytes.
pub async fn ask_udp(server: SocketAddr, query: &[u8]) -> Vec<u8> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    socket.send_to(query, server).await.expect("send");
    let mut buf = vec![0u8; 65_535];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
        .await
        .expect("an answer within 5 s")
        .expect("recv");
    buf.truncate(n);
    buf
}

/// Sends `query` over TCP to `server` and returns the answer's bytes.
pub async fn ask_tcp(server: SocketAddr, query: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server)
        .await
        .expect("connect");
    let len = u16::try_from(query.len()).expect("short");
    stream.write_all(&len.to_be_bytes()).await.expect("write");
    stream.write_all(query).await.expect("write");
    let read = async {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await.expect("length");
        let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut answer).await.expect("answer");
        answer
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("an answer within 5 s")
}

/// What dig printed and how it exited.
pub struct Dig {
    pub output: String,
    pub success: bool,
}

impl Dig {
    /// The `status:` of the answer dig printed last.
    pub fn status(&self) -> Option<&str> {
        self.output
            .rsplit("status: ")
            .next()
            .filter(|_| self.output.contains("status: "))
            .and_then(|s| s.split(',').next())
    }

    /// The records of the ANSWER SECTION, one line each with runs of blanks made one space.
    pub fn answers(&self) -> Vec<String> {
        let Some(section) = self.output.split(";; ANSWER SECTION:\n").nth(1) else {
            return Vec::new();
        };
        section
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    /// The `Query time:` dig reported, in milliseconds.
    pub fn query_ms(&self) -> Option<u64> {
        let rest = self.output.split(";; Query time: ").nth(1)?;
        rest.split(' ').next()?.parse().ok()
    }
}

/// Runs `dig @server -p port name type` with one try of `wait_s` seconds, plus `extra`.
pub async fn dig(server: SocketAddr, name: &str, qtype: &str, extra: &[&str]) -> Dig {
    let out = tokio::process::Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), name, qtype])
        .args(["+tries=1", "+time=2"])
        .args(extra)
        .output()
        .await
        .expect("dig runs (apt-get install dnsutils)");
    Dig {
        output: String::from_utf8_lossy(&out.stdout).into_owned(),
        success: out.status.success(),
    }
}
