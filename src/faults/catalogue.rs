//! Every fault kind with a working example, the routes it fits and whether `direction` means
//! anything to it: what `GET /v1/kinds` answers, so that a form (the switchboard page's) can
//! offer the kinds a route takes and start from parameters the server accepts, without a copy
//! of the rules in JavaScript.

use serde::Serialize;

use super::{FaultKind, Scope};
use crate::rules::Protocol;

/// One example per kind, as a rules file writes it.
const EXAMPLES: [&str; 30] = [
    "Latency(ms: 200, jitter_ms: 20)",
    "Bandwidth(bytes_per_sec: 100000)",
    "SlowClose(ms: 500)",
    "Timeout(ms: 1000)",
    "ResetPeer(after_ms: 100)",
    "Slicer(avg_bytes: 64, variation_bytes: 32, delay_us: 100)",
    "LimitData(bytes: 1024)",
    "Partition(mode: Refuse)",
    "ConnectDelay(ms: 300)",
    "CutAfter(ms: 5000)",
    r#"Abort(status: 503, body: "down for the drill")"#,
    r#"GrpcAbort(code: 14, message: "unavailable")"#,
    "Delay(ms: 300, jitter_ms: 50)",
    "ResponseDelay(ms: 500)",
    "SlowBody(bytes_per_sec: 1024)",
    "Truncate(after_bytes: 1024)",
    "Drop()",
    "RateLimit(per_sec: 10, status: 429)",
    r#"SetHeaders(request: {"x-chaos": "1"}, response: {})"#,
    r#"ReplaceBody(body: "{\"items\": []}", content_type: "application/json")"#,
    "FailNth(n: 3, status: 503)",
    r#"Error(message: "READONLY You can't write against a read only replica.")"#,
    "Nil()",
    r#"SqlError(code: "25006", message: "cannot execute INSERT in a read-only transaction")"#,
    r#"Shutdown(code: "57P01", message: "terminating connection due to administrator command")"#,
    r#"Reject(code: "53300", message: "sorry, too many clients already")"#,
    "Duplicate()",
    "Reorder(ms: 20)",
    "Rcode(code: ServFail)",
    r#"Answer(addresses: ["127.0.0.2"], ttl: 5)"#,
];

const PROTOCOLS: [Protocol; 6] = [
    Protocol::Tcp,
    Protocol::Http,
    Protocol::Redis,
    Protocol::Postgres,
    Protocol::Udp,
    Protocol::Dns,
];

/// A kind as `GET /v1/kinds` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct KindEntry {
    /// As RON writes it: `Latency`.
    pub name: &'static str,
    /// Parameters the server accepts, in the JSON form `/v1/faults` takes.
    pub example: FaultKind,
    /// The route protocols this kind fits.
    pub protocols: Vec<Protocol>,
    /// Whether the fault's `direction` chooses the streams it acts on.
    pub directional: bool,
}

/// Every kind, in the order the README lists them.
pub fn catalogue() -> Vec<KindEntry> {
    EXAMPLES
        .iter()
        .filter_map(|text| crate::rules::ron_options().from_str::<FaultKind>(text).ok())
        .map(|example| KindEntry {
            name: example.name(),
            protocols: PROTOCOLS
                .into_iter()
                .filter(|p| example.fits(*p).is_ok())
                .collect(),
            directional: matches!(example.scope(), Scope::Stream | Scope::Datagram),
            example,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_example_parses_validates_and_fits_some_route() {
        for text in EXAMPLES {
            let kind: FaultKind = crate::rules::ron_options()
                .from_str(text)
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            kind.validate().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(
                PROTOCOLS.iter().any(|p| kind.fits(*p).is_ok()),
                "{text} fits no route"
            );
        }
        assert_eq!(catalogue().len(), EXAMPLES.len());
    }

    #[test]
    fn every_kind_is_listed_once() {
        let listed: HashSet<&str> = catalogue().iter().map(|k| k.name).collect();
        assert_eq!(listed.len(), EXAMPLES.len(), "a kind is listed twice");
        // serde names every variant when it meets an unknown one: a kind added to FaultKind
        // without an example here fails this.
        let unknown = serde_json::from_str::<FaultKind>(r#"{"NoSuchKind": {}}"#)
            .expect_err("an unknown kind is refused")
            .to_string();
        let known: HashSet<&str> = unknown
            .split("expected one of")
            .nth(1)
            .unwrap_or_else(|| panic!("{unknown}"))
            .split('`')
            .skip(1)
            .step_by(2)
            .collect();
        assert_eq!(listed, known);
    }
}
