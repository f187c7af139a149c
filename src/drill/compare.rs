//! A drill's report against an earlier run of it: did any probe recover more slowly than the
//! budget allows, or fail where it held before?

use std::fmt::Write;
use std::time::Duration;

use super::markdown::secs;
use super::measure::Verdict;
use super::report::Report;

/// One probe in both runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The probe.
    pub probe: String,
    /// Recovery before, in milliseconds.
    pub before_ms: Option<f64>,
    /// Recovery now.
    pub now_ms: Option<f64>,
    /// Why this is a regression, when it is.
    pub regression: Option<String>,
}

/// Compares every probe present in both reports. A probe regressed when it recovered more
/// than `budget` later than before, stopped recovering, or failed where it held before.
pub fn compare(before: &Report, now: &Report, budget: Duration) -> Vec<Comparison> {
    let budget_ms = budget.as_secs_f64() * 1000.0;
    now.probes
        .iter()
        .filter_map(|probe| {
            let old = before.probes.iter().find(|p| p.name == probe.name)?;
            let before_ms = old.measures.as_ref().and_then(|m| m.recovery_ms);
            let now_ms = probe.measures.as_ref().and_then(|m| m.recovery_ms);
            let held_before = old.verdict.is_some_and(|v| v != Verdict::Failed);
            let regression = match (before_ms, now_ms) {
                (Some(b), Some(n)) if n > b + budget_ms => Some(format!(
                    "recovery {} → {}, more than {} slower",
                    secs(Some(b)),
                    secs(Some(n)),
                    humantime::format_duration(budget)
                )),
                (Some(_), None) => Some("recovered before, did not recover now".into()),
                _ if held_before && probe.verdict == Some(Verdict::Failed) => Some(format!(
                    "{} before, failed now",
                    old.verdict.map_or("held", |v| v.label())
                )),
                _ => None,
            };
            Some(Comparison {
                probe: probe.name.clone(),
                before_ms,
                now_ms,
                regression,
            })
        })
        .collect()
}

/// The comparison as a small text table.
pub fn render(comparisons: &[Comparison]) -> String {
    let mut out = String::from("probe                 recovery before   recovery now   \n");
    for c in comparisons {
        let _ = writeln!(
            out,
            "{:<21} {:>15}   {:>12}   {}",
            c.probe,
            secs(c.before_ms),
            secs(c.now_ms),
            c.regression
                .as_deref()
                .map_or("ok".into(), |r| format!("REGRESSION: {r}"))
        );
    }
    out
}
