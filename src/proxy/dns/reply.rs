//! The answers a fault gives in the resolver's place, built from the query so that a client
//! cannot tell them from a resolver's: the same id, question, flags it asked for, and an OPT
//! record when it sent one.

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, Metadata, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};

use super::query::Asked;
use crate::faults::DnsErrorCode;

/// The UDP payload size our answers advertise, the size DNS Flag Day 2020 settled on.
const PAYLOAD: u16 = 1232;

/// A response to `asked` with nothing in it yet.
fn response(asked: &Asked) -> Message {
    let query = &asked.message;
    let mut message = Message::new(
        query.metadata.id,
        hickory_proto::op::MessageType::Response,
        query.metadata.op_code,
    );
    message.metadata = Metadata::response_from_request(&query.metadata);
    // A forwarding resolver recurses for its clients.
    message.metadata.recursion_available = true;
    message.queries = query.queries.clone();
    if let Some(theirs) = &query.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(PAYLOAD);
        edns.set_dnssec_ok(theirs.flags().dnssec_ok);
        message.edns = Some(edns);
    }
    message
}

fn encode(message: &Message) -> Option<Vec<u8>> {
    message.to_vec().ok()
}

/// An answer with `code` and no records.
pub fn error(asked: &Asked, code: DnsErrorCode) -> Option<Vec<u8>> {
    let mut message = response(asked);
    message.metadata.response_code = ResponseCode::from_low(code.value());
    encode(&message)
}

/// For A and AAAA queries, an answer with the `addresses` of the query's family; `None` for
/// other types, which pass to the resolver.
pub fn addresses(asked: &Asked, addresses: &[IpAddr], ttl: u32) -> Option<Vec<u8>> {
    let question = asked.message.queries.first()?;
    let name = question.name().clone();
    let records: Vec<Record> = match asked.qtype {
        RecordType::A => addresses
            .iter()
            .filter_map(|a| match a {
                IpAddr::V4(v4) => Some(Record::from_rdata(name.clone(), ttl, RData::A(A(*v4)))),
                IpAddr::V6(_) => None,
            })
            .collect(),
        RecordType::AAAA => addresses
            .iter()
            .filter_map(|a| match a {
                IpAddr::V6(v6) => Some(Record::from_rdata(
                    name.clone(),
                    ttl,
                    RData::AAAA(AAAA(*v6)),
                )),
                IpAddr::V4(_) => None,
            })
            .collect(),
        _ => return None,
    };
    let mut message = response(asked);
    message.answers = records;
    encode(&message)
}

/// An empty answer with the TC bit set: the client asks again over TCP.
pub fn truncated(asked: &Asked) -> Option<Vec<u8>> {
    let mut message = response(asked);
    message.metadata.truncation = true;
    encode(&message)
}

/// The response code in a message's header (the low four bits; extended codes in an OPT
/// record are rare and count by their low bits).
pub fn rcode_of(message: &[u8]) -> Option<u8> {
    message.get(3).map(|b| b & 0x0f)
}

/// The id in a message's header.
pub fn id_of(message: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*message.first()?, *message.get(1)?]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;

    fn asked(qtype: RecordType, edns: bool) -> Asked {
        let mut query = Message::query();
        query.metadata.id = 0x4242;
        query.metadata.recursion_desired = true;
        let name = Name::from_ascii("db.primary.shop.internal.").expect("name");
        query.add_query(Query::query(name, qtype));
        if edns {
            query.set_edns(Edns::new());
        }
        let bytes = query.to_vec().expect("encode");
        Asked::parse(&bytes).expect("parse")
    }

    #[test]
    fn an_error_answer_keeps_id_question_and_opt() {
        let bytes = error(&asked(RecordType::A, true), DnsErrorCode::ServFail).expect("encode");
        let answer = Message::from_vec(&bytes).expect("decode");
        assert_eq!(answer.metadata.id, 0x4242);
        assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
        assert!(answer.metadata.recursion_desired);
        assert_eq!(answer.queries.len(), 1);
        assert!(answer.edns.is_some());
        assert_eq!(rcode_of(&bytes), Some(2));
        assert_eq!(id_of(&bytes), Some(0x4242));
        let plain = error(&asked(RecordType::A, false), DnsErrorCode::NxDomain).expect("encode");
        assert!(Message::from_vec(&plain).expect("decode").edns.is_none());
    }

    #[test]
    fn addresses_answer_their_family_only() {
        let addrs: Vec<IpAddr> = vec!["127.0.0.2".parse().unwrap(), "::2".parse().unwrap()];
        let a = addresses(&asked(RecordType::A, false), &addrs, 5).expect("A");
        let a = Message::from_vec(&a).expect("decode");
        assert_eq!(a.answers.len(), 1);
        assert_eq!(a.answers[0].ttl, 5);
        let aaaa = addresses(&asked(RecordType::AAAA, false), &addrs, 5).expect("AAAA");
        assert_eq!(Message::from_vec(&aaaa).expect("decode").answers.len(), 1);
        assert!(addresses(&asked(RecordType::MX, false), &addrs, 5).is_none());
    }
}
