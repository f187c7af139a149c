//! What changed between two rule sets, as events.

use std::sync::Arc;

use crate::rules::Fault;
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
        let before = old.fault(&fault.name);
        // The same Arc is the same fault: most of a large set is shared between versions.
        if before.is_some_and(|b| Arc::ptr_eq(b, fault)) {
            continue;
        }
        events.extend(fault_event(before.map(|b| &**b), fault));
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

/// The event that turns `before` (None: it did not exist) into `after`, if any.
pub fn fault_event(before: Option<&Fault>, after: &Fault) -> Option<EventKind> {
    let name = after.name.clone();
    match before {
        None => Some(EventKind::FaultAdded {
            fault: name,
            enabled: after.enabled,
        }),
        Some(b) if b.enabled != after.enabled => Some(if after.enabled {
            EventKind::FaultEnabled { fault: name }
        } else {
            EventKind::FaultDisabled { fault: name }
        }),
        Some(b) if *b != *after => Some(EventKind::FaultChanged { fault: name }),
        Some(_) => None,
    }
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
