//! Property tests of drill files: whatever text a drill file holds, parsing and checking it
//! answers without panicking (a drill posted to the API is outside input), and durations of
//! any size are judged before anything is planned. Long run:
//! `PROPTEST_CASES=200000 cargo test --lib proptests`.

use std::path::Path;

use proptest::prelude::*;

use super::load::parse;
use super::timeline;
use crate::rules::proptests::mutated;

static EXAMPLES: [&str; 2] = [
    include_str!("../../rules/shop/drills/orders-db-outage.ron"),
    include_str!("../../rules/shop/drills/db-failover-read-only.ron"),
];

/// A duration as a drill file writes it, from tiny to absurd.
fn duration() -> impl Strategy<Value = String> {
    (
        any::<u64>(),
        prop::sample::select(vec!["ms", "s", "m", "h", "days", "years"]),
    )
        .prop_map(|(n, unit)| format!("{n}{unit}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        let _ = parse(Path::new("d.ron"), &text);
    }

    #[test]
    fn mutated_examples_never_panic(text in mutated(&EXAMPLES)) {
        if let Ok(scenario) = parse(Path::new("d.ron"), &text) {
            // What passes the checks can be planned without overflow or a flood of steps.
            let _ = timeline::plan(&scenario.steps);
        }
    }

    #[test]
    fn any_durations_are_judged_before_planning(
        observe in duration(), over in duration(), every in duration(), at in duration(),
    ) {
        let text = format!(
            r#"(name: "d", observe: "{observe}",
                probes: [(name: "p", check: Tcp(addr: "127.0.0.1:1"))],
                steps: [(at: "{at}", action: Ramp(fault: "f", param: "ms", from: 0, to: 9, over: "{over}", every: "{every}"))])"#
        );
        if let Ok(scenario) = parse(Path::new("d.ron"), &text) {
            let _ = timeline::plan(&scenario.steps);
        }
    }
}
