//! The faults an HTTP request can meet on each route, laid out for the request path: only
//! those that are on and act per request, each with its method condition as a one-byte code.
//! A request passes over the faults for other methods by comparing that byte, without
//! following the pointers to the fault and its `when` (with 1,000 faults on a route, walking
//! them took a third of the proxy's throughput).

use std::sync::Arc;

use super::chunked::Chunked;
use crate::faults::{FaultKind, Scope};
use crate::rules::Fault;

/// Any method.
const ANY: u8 = 0;
/// A method without a code of its own: compared by name.
const OTHER: u8 = u8::MAX;

/// A method's code: the standard ones by name (any case), anything else [`OTHER`].
pub fn method_code(method: &str) -> u8 {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .iter()
        .position(|m| m.eq_ignore_ascii_case(method))
        .map_or(OTHER, |i| i as u8 + 1)
}

/// A fault a request may meet.
#[derive(Debug, Clone)]
pub struct RequestFault {
    method: u8,
    /// The fault.
    pub fault: Arc<Fault>,
}

impl RequestFault {
    /// Whether a request whose method has `code` can match it; its `when` still decides.
    pub fn may_match(&self, code: u8) -> bool {
        self.method == ANY || self.method == code || self.method == OTHER || code == OTHER
    }
}

/// The faults of one route that are on and act on requests, in order.
pub fn build(faults: &Chunked<Arc<Fault>>) -> Vec<RequestFault> {
    faults
        .iter()
        .filter(|f| f.enabled)
        .filter(|f| f.kind.scope() == Scope::Request || matches!(f.kind, FaultKind::Partition(_)))
        .map(|f| RequestFault {
            method: f
                .when
                .as_ref()
                .and_then(|w| w.method.as_deref())
                .map_or(ANY, method_code),
            fault: Arc::clone(f),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_match_by_code_and_unknown_ones_by_name_later() {
        assert_eq!(method_code("GET"), method_code("get"));
        assert_ne!(method_code("GET"), method_code("POST"));
        assert_eq!(method_code("PURGE"), OTHER);
        let post = RequestFault {
            method: method_code("POST"),
            fault: Arc::new(crate::rules::Fault {
                name: "f".into(),
                route: "r".into(),
                enabled: true,
                probability: 1.0,
                direction: Default::default(),
                kind: FaultKind::Drop(crate::faults::DropRequest {}),
                when: None,
                max_active: None,
            }),
        };
        assert!(post.may_match(method_code("post")));
        assert!(!post.may_match(method_code("GET")));
        // A method without a code is left to the full match.
        assert!(post.may_match(method_code("PURGE")));
        let any = RequestFault {
            method: ANY,
            ..post.clone()
        };
        assert!(any.may_match(method_code("GET")));
    }
}
