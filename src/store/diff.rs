//! What changed between two rule sets, as events.

use crate::store::RuleSet;
use crate::telemetry::EventKind;

/// The events that turn `old` into `new`, routes first.
pub fn diff(old: &RuleSet, new: &RuleSet) -> Vec<EventKind> {
    let mut events = Vec::new();
    for route in new.routes() {
        let before = old.route(&route.name);
        if let Some(before) = before
            && before.enabled != route.enabled
        {
            let name = route.name.clone();
            events.push(if route.enabled {
                EventKind::RouteEnabled { route: name }
            } else {
                EventKind::RouteDisabled { route: name }
            });
        }
        let changed =
            before.is_none_or(|o| o.listen != route.listen || o.upstream != route.upstream);
        if changed {
            events.push(EventKind::RouteBound {
                route: route.name.clone(),
                listen: route.listen.clone(),
                upstream: route.upstream.clone(),
            });
        }
    }
    for route in old.routes() {
        if new.route(&route.name).is_none() {
            events.push(EventKind::RouteRemoved {
                route: route.name.clone(),
            });
        }
    }
    for fault in new.faults() {
        let name = fault.name.clone();
        match old.fault(&fault.name) {
            None => events.push(EventKind::FaultAdded {
                fault: name,
                enabled: fault.enabled,
            }),
            Some(before) if before.enabled != fault.enabled => events.push(if fault.enabled {
                EventKind::FaultEnabled { fault: name }
            } else {
                EventKind::FaultDisabled { fault: name }
            }),
            Some(before) if **before != **fault => {
                events.push(EventKind::FaultChanged { fault: name })
            }
            Some(_) => {}
        }
    }
    for fault in old.faults() {
        if new.fault(&fault.name).is_none() {
            events.push(EventKind::FaultRemoved {
                fault: fault.name.clone(),
            });
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{LoadOptions, load_texts};

    fn set(faults: &str) -> RuleSet {
        let text = format!(
            r#"(routes: [(name: "r", protocol: Tcp, listen: "127.0.0.1:1", upstream: "h:1")], faults: [{faults}])"#
        );
        let files = load_texts(&[("t.ron".into(), text)], LoadOptions::default()).expect("valid");
        RuleSet::new(files.routes, files.faults)
    }

    #[test]
    fn table() {
        let a = r#"(name: "a", route: "r", kind: Latency(ms: 1))"#;
        let a_off = r#"(name: "a", route: "r", enabled: false, kind: Latency(ms: 1))"#;
        let a_slower = r#"(name: "a", route: "r", kind: Latency(ms: 2))"#;
        let f = |s: &str| s.to_string();
        let cases = [
            ("", "", vec![]),
            (
                "",
                a,
                vec![EventKind::FaultAdded {
                    fault: f("a"),
                    enabled: true,
                }],
            ),
            (a, "", vec![EventKind::FaultRemoved { fault: f("a") }]),
            (a, a_off, vec![EventKind::FaultDisabled { fault: f("a") }]),
            (a_off, a, vec![EventKind::FaultEnabled { fault: f("a") }]),
            (a, a_slower, vec![EventKind::FaultChanged { fault: f("a") }]),
            (a, a, vec![]),
        ];
        for (old, new, want) in cases {
            assert_eq!(diff(&set(old), &set(new)), want, "{old} -> {new}");
        }
    }
}
