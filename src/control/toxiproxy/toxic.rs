//! Toxiproxy's toxics as Switchboard faults, both ways.
//!
//! A toxic belongs to a proxy and is named within it; a fault's name is global. A toxic
//! created through this API becomes the fault `<proxy>:<toxic>`, and a fault shows as a toxic
//! under its name with that prefix taken off. Attributes keep Toxiproxy's names and units
//! (`rate` in KB/s of 1000 bytes, slicer `delay` in µs, the rest in ms or bytes).

use serde::Serialize;
use serde_json::{Map, Value};

use super::ToxiError;
use crate::faults::{
    Bandwidth, ConnectDelay, CutAfter, FaultKind, Latency, LimitData, Partition, PartitionMode,
    ResetPeer, Slicer, SlowClose, Timeout,
};
use crate::rules::{Direction, Fault};

/// A toxic as Toxiproxy shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Toxic {
    /// Its parameters, in Toxiproxy's names and units.
    pub attributes: Map<String, Value>,
    /// Its name within the proxy.
    pub name: String,
    /// Its toxic type (`latency`, `bandwidth`, ...).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `upstream`, `downstream` (or `both`, for a file fault on both streams).
    pub stream: &'static str,
    /// The share of connections it applies to.
    pub toxicity: f64,
}

/// The fault name of toxic `toxic` on proxy `proxy`.
pub fn fault_name(proxy: &str, toxic: &str) -> String {
    format!("{proxy}:{toxic}")
}

/// The toxic name of a fault on `proxy`.
pub fn toxic_name<'a>(proxy: &str, fault: &'a str) -> &'a str {
    fault
        .strip_prefix(proxy)
        .and_then(|rest| rest.strip_prefix(':'))
        .unwrap_or(fault)
}

fn stream_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Upstream => "upstream",
        Direction::Downstream => "downstream",
        Direction::Both => "both",
    }
}

/// Parses Toxiproxy's `stream`, which it reads case-insensitively.
pub fn parse_stream(stream: &str) -> Result<Direction, ToxiError> {
    match stream.to_ascii_lowercase().as_str() {
        "upstream" => Ok(Direction::Upstream),
        "downstream" => Ok(Direction::Downstream),
        _ => Err(ToxiError::bad_request(
            "stream was invalid, can be either upstream or downstream",
        )),
    }
}

fn attrs(pairs: &[(&str, u64)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect()
}

/// The toxic type and attributes of a fault kind; none for HTTP, Redis and PostgreSQL kinds, which have no
/// toxic.
pub fn describe(kind: &FaultKind) -> Option<(&'static str, Map<String, Value>)> {
    Some(match kind {
        FaultKind::Latency(l) => (
            "latency",
            attrs(&[("latency", l.ms), ("jitter", l.jitter_ms)]),
        ),
        FaultKind::Bandwidth(b) => ("bandwidth", attrs(&[("rate", b.bytes_per_sec / 1000)])),
        FaultKind::SlowClose(s) => ("slow_close", attrs(&[("delay", s.ms)])),
        FaultKind::Timeout(t) => ("timeout", attrs(&[("timeout", t.ms)])),
        FaultKind::ResetPeer(r) => ("reset_peer", attrs(&[("timeout", r.after_ms)])),
        FaultKind::Slicer(s) => (
            "slicer",
            attrs(&[
                ("average_size", s.avg_bytes as u64),
                ("size_variation", s.variation_bytes as u64),
                ("delay", s.delay_us),
            ]),
        ),
        FaultKind::LimitData(l) => ("limit_data", attrs(&[("bytes", l.bytes)])),
        FaultKind::Partition(p) => {
            let mode = match p.mode {
                PartitionMode::Refuse => "refuse",
                PartitionMode::Blackhole => "blackhole",
                PartitionMode::Reset => "reset",
            };
            let mut map = Map::new();
            map.insert("mode".into(), Value::from(mode));
            ("partition", map)
        }
        FaultKind::ConnectDelay(c) => ("connect_delay", attrs(&[("delay", c.ms)])),
        FaultKind::CutAfter(c) => ("cut_after", attrs(&[("timeout", c.ms)])),
        FaultKind::Abort(_)
        | FaultKind::GrpcAbort(_)
        | FaultKind::Delay(_)
        | FaultKind::ResponseDelay(_)
        | FaultKind::SlowBody(_)
        | FaultKind::Truncate(_)
        | FaultKind::Drop(_)
        | FaultKind::RateLimit(_)
        | FaultKind::SetHeaders(_)
        | FaultKind::ReplaceBody(_)
        | FaultKind::FailNth(_)
        | FaultKind::Error(_)
        | FaultKind::Nil(_)
        | FaultKind::SqlError(_)
        | FaultKind::Shutdown(_)
        | FaultKind::Duplicate(_)
        | FaultKind::Reorder(_)
        | FaultKind::Rcode(_)
        | FaultKind::Answer(_)
        | FaultKind::Reject(_) => return None,
    })
}

/// A fault as a toxic of `proxy`, if its kind has a toxic form.
pub fn toxic_of(proxy: &str, fault: &Fault) -> Option<Toxic> {
    let (kind, attributes) = describe(&fault.kind)?;
    Some(Toxic {
        attributes,
        name: toxic_name(proxy, &fault.name).to_string(),
        kind,
        stream: stream_name(fault.direction),
        toxicity: fault.probability,
    })
}

/// The attributes each type takes, in Toxiproxy's order.
fn attribute_names(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "latency" => &["latency", "jitter"],
        "bandwidth" => &["rate"],
        "slow_close" | "connect_delay" => &["delay"],
        "timeout" | "reset_peer" | "cut_after" => &["timeout"],
        "slicer" => &["average_size", "size_variation", "delay"],
        "limit_data" => &["bytes"],
        "partition" => &["mode"],
        _ => return None,
    })
}

/// Builds a fault kind from a toxic type and attributes; missing attributes are 0, as in
/// Toxiproxy, but every value is checked and unknown attributes are refused.
pub fn kind_of(kind: &str, attributes: &Map<String, Value>) -> Result<FaultKind, ToxiError> {
    let names =
        attribute_names(kind).ok_or_else(|| ToxiError::bad_request("invalid toxic type"))?;
    if let Some(unknown) = attributes.keys().find(|k| !names.contains(&k.as_str())) {
        return Err(ToxiError::bad_request(format!(
            "bad request body: unknown attribute {unknown:?} for a {kind} toxic; it takes {}",
            names.join(", ")
        )));
    }
    let int = |name: &str| -> Result<u64, ToxiError> {
        match attributes.get(name) {
            None | Some(Value::Null) => Ok(0),
            Some(v) => v.as_u64().ok_or_else(|| {
                ToxiError::bad_request(format!(
                    "bad request body: attribute {name} must be a non-negative integer, not {v}"
                ))
            }),
        }
    };
    let size = |name: &str| -> Result<usize, ToxiError> {
        usize::try_from(int(name)?).map_err(|_| {
            ToxiError::bad_request(format!("bad request body: attribute {name} is too large"))
        })
    };
    let built = match kind {
        "latency" => FaultKind::Latency(Latency {
            ms: int("latency")?,
            jitter_ms: int("jitter")?,
        }),
        "bandwidth" => FaultKind::Bandwidth(Bandwidth {
            bytes_per_sec: int("rate")?.saturating_mul(1000),
            shared: false,
        }),
        "slow_close" => FaultKind::SlowClose(SlowClose { ms: int("delay")? }),
        "timeout" => FaultKind::Timeout(Timeout {
            ms: int("timeout")?,
        }),
        "reset_peer" => FaultKind::ResetPeer(ResetPeer {
            after_ms: int("timeout")?,
        }),
        "slicer" => FaultKind::Slicer(Slicer {
            avg_bytes: size("average_size")?,
            variation_bytes: size("size_variation")?,
            delay_us: int("delay")?,
        }),
        "limit_data" => FaultKind::LimitData(LimitData {
            bytes: int("bytes")?,
        }),
        "connect_delay" => FaultKind::ConnectDelay(ConnectDelay { ms: int("delay")? }),
        "cut_after" => FaultKind::CutAfter(CutAfter {
            ms: int("timeout")?,
        }),
        "partition" => {
            let mode = match attributes.get("mode").and_then(Value::as_str) {
                Some("refuse") => PartitionMode::Refuse,
                Some("blackhole") => PartitionMode::Blackhole,
                Some("reset") => PartitionMode::Reset,
                other => {
                    return Err(ToxiError::bad_request(format!(
                        "bad request body: attribute mode must be refuse, blackhole or reset, not {other:?}"
                    )));
                }
            };
            FaultKind::Partition(Partition { mode })
        }
        _ => return Err(ToxiError::bad_request("invalid toxic type")),
    };
    built.validate().map_err(|e| {
        ToxiError::bad_request(format!(
            "bad request body: attribute {}: {}",
            toxiproxy_attribute(kind, e.field),
            e.message
        ))
    })?;
    Ok(built)
}

/// Toxiproxy's name for one of our parameter names.
fn toxiproxy_attribute(kind: &str, field: &'static str) -> &'static str {
    match (kind, field) {
        ("latency", "ms") => "latency",
        ("latency", "jitter_ms") => "jitter",
        ("bandwidth", _) => "rate",
        ("slicer", "avg_bytes") => "average_size",
        ("slicer", "variation_bytes") => "size_variation",
        ("slicer", "delay_us") => "delay",
        ("slow_close" | "connect_delay", _) => "delay",
        ("timeout" | "reset_peer" | "cut_after", _) => "timeout",
        _ => field,
    }
}

/// Checks a toxicity the way probabilities are checked.
pub fn check_toxicity(toxicity: f64) -> Result<f64, ToxiError> {
    if (0.0..=1.0).contains(&toxicity) {
        // -0.0 is within the range, and would be echoed back as "-0.0"; adding 0.0 makes it 0.
        Ok(toxicity + 0.0)
    } else {
        Err(ToxiError::bad_request(format!(
            "bad request body: toxicity {toxicity} is outside 0.0..=1.0"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn every_type_round_trips_through_its_attributes() {
        let cases = [
            ("latency", json!({"latency": 100, "jitter": 10})),
            ("bandwidth", json!({"rate": 100})),
            ("slow_close", json!({"delay": 5})),
            ("timeout", json!({"timeout": 7})),
            ("reset_peer", json!({"timeout": 3})),
            (
                "slicer",
                json!({"average_size": 64, "size_variation": 32, "delay": 10}),
            ),
            ("limit_data", json!({"bytes": 1024})),
            ("partition", json!({"mode": "blackhole"})),
            ("connect_delay", json!({"delay": 100})),
            ("cut_after", json!({"timeout": 900})),
        ];
        for (kind, attributes) in cases {
            let built = kind_of(kind, &map(attributes.clone())).expect(kind);
            let (back_kind, back) = describe(&built).expect("a toxic kind");
            assert_eq!(back_kind, kind);
            assert_eq!(Value::Object(back), attributes, "{kind}");
        }
    }

    #[test]
    fn a_negative_zero_toxicity_is_zero() {
        let t = check_toxicity(-0.0).expect("in range");
        assert!(t.is_sign_positive(), "{t}");
        assert_eq!(serde_json::to_string(&t).expect("json"), "0.0");
        assert!(check_toxicity(-0.1).is_err());
    }

    #[test]
    fn units_follow_toxiproxy() {
        let bw = kind_of("bandwidth", &map(json!({"rate": 100}))).expect("valid");
        assert_eq!(
            bw,
            FaultKind::Bandwidth(Bandwidth {
                bytes_per_sec: 100_000,
                shared: false,
            })
        );
        let empty = kind_of("latency", &Map::new()).expect("defaults to 0");
        assert_eq!(
            empty,
            FaultKind::Latency(Latency {
                ms: 0,
                jitter_ms: 0
            })
        );
    }

    #[test]
    fn bad_values_name_the_attribute() {
        let cases = [
            ("latency", json!({"latency": -5}), "attribute latency"),
            ("latency", json!({"latency": 1.5}), "attribute latency"),
            ("latency", json!({"lag": 1}), "unknown attribute \"lag\""),
            ("bandwidth", json!({"rate": 0}), "attribute rate"),
            (
                "slicer",
                json!({"average_size": 0}),
                "attribute average_size",
            ),
            (
                "latency",
                json!({"latency": 99_999_999}),
                "attribute latency",
            ),
            ("nonsense", json!({}), "invalid toxic type"),
        ];
        for (kind, attributes, needle) in cases {
            let err = kind_of(kind, &map(attributes.clone())).expect_err("rejected");
            assert_eq!(err.status, 400);
            assert!(
                err.error.contains(needle),
                "{kind} {attributes}: {}",
                err.error
            );
        }
        assert!(check_toxicity(7.0).is_err());
        assert!(check_toxicity(-0.1).is_err());
    }

    #[test]
    fn names_are_scoped_by_proxy() {
        assert_eq!(
            fault_name("redis", "latency_downstream"),
            "redis:latency_downstream"
        );
        assert_eq!(
            toxic_name("redis", "redis:latency_downstream"),
            "latency_downstream"
        );
        assert_eq!(toxic_name("redis", "redis-slow"), "redis-slow");
        assert_eq!(toxic_name("redis", "other:x"), "other:x");
    }
}
