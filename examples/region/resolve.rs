//! The shop's resolver: one A query over UDP to a configured DNS server, with hickory-proto,
//! so the demo's name resolution goes through Switchboard's Dns route and nowhere else.

use std::net::Ipv4Addr;
use std::time::Duration;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};

/// The first A record `server` answers for `name`.
pub async fn a_record(server: &str, name: &str) -> Result<Ipv4Addr, String> {
    let mut query = Message::query();
    query.metadata.recursion_desired = true;
    let id = query.metadata.id;
    let fqdn = Name::from_ascii(format!("{name}.")).map_err(|e| e.to_string())?;
    query.add_query(Query::query(fqdn, RecordType::A));
    let bytes = query.to_vec().map_err(|e| e.to_string())?;
    let socket = tokio::net::UdpSocket::bind("0.0.0.0:0")
        .await
        .map_err(|e| e.to_string())?;
    socket.connect(server).await.map_err(|e| e.to_string())?;
    socket.send(&bytes).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_millis(500), socket.recv(&mut buf))
        .await
        .map_err(|_| "no answer within 500 ms".to_string())?
        .map_err(|e| e.to_string())?;
    let answer = Message::from_vec(&buf[..n]).map_err(|e| e.to_string())?;
    if answer.metadata.id != id {
        return Err("an answer to another query".into());
    }
    answer
        .answers
        .iter()
        .find_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .ok_or_else(|| format!("{:?} and no address", answer.metadata.response_code))
}
