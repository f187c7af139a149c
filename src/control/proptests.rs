//! Property tests of the control API's JSON bodies, native and Toxiproxy's: any JSON value a
//! client sends is answered with a value or an error that names the problem, never a panic.
//! Long run: `PROPTEST_CASES=200000 cargo test --lib proptests`.

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::toxiproxy::{fault_of, kind_of};
use crate::fault_json::{read_new_fault, read_update};
use crate::faults::{FaultKind, Latency};
use crate::rules::{Direction, Fault};

/// Any JSON value, nested a few levels, with keys that the API knows mixed in.
fn json() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "name",
        "route",
        "kind",
        "enabled",
        "probability",
        "direction",
        "ttl",
        "when",
        "Latency",
        "ms",
        "jitter_ms",
        "Abort",
        "status",
        "type",
        "attributes",
        "stream",
        "toxicity",
        "latency",
        "rate",
        "listen",
        "upstream",
        "x",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "Downstream",
            "Both",
            "10s",
            "300000000000years",
            "-1",
            "upstream"
        ])
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|pairs| Value::Object(
                pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => Map::from_iter([("attributes".to_string(), other)]),
    }
}

fn current() -> Fault {
    Fault {
        name: "f".into(),
        route: "r".into(),
        enabled: true,
        probability: 1.0,
        direction: Direction::Downstream,
        kind: FaultKind::Latency(Latency {
            ms: 1,
            jitter_ms: 0,
        }),
        when: None,
        max_active: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn native_bodies_are_answered(body in json()) {
        if let Err(e) = read_new_fault(body.clone()) {
            prop_assert!(!e.message.is_empty(), "{e:?}");
        }
        if let Err(e) = read_update(&current(), body) {
            prop_assert!(!e.message.is_empty(), "{e:?}");
        }
    }

    #[test]
    fn toxiproxy_bodies_are_answered(
        body in json(),
        kind in prop::sample::select(vec![
            "latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer",
            "limit_data", "partition", "connect_delay", "cut_after", "nope", "",
        ]),
    ) {
        let map = object(body);
        let attributes = map.get("attributes").and_then(Value::as_object).cloned().unwrap_or_default();
        let _ = kind_of(kind, &attributes);
        let _ = fault_of("proxy", &map);
    }
}
