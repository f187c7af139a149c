//! `report.md`: the human summary of a drill.

use std::fmt::Write;

use super::report::{Outcome, Report};

/// The report as Markdown: outcome, one table row per probe, the timeline.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Drill: {}\n", report.drill);
    if !report.description.is_empty() {
        let _ = writeln!(out, "{}\n", report.description);
    }
    let outcome = match report.outcome {
        Outcome::Completed => "completed",
        Outcome::Refused => "refused (nothing was injected)",
        Outcome::RolledBack => "rolled back",
    };
    let _ = writeln!(out, "- Outcome: **{outcome}**");
    if let Some(reason) = &report.reason {
        let _ = writeln!(out, "- Why: {reason}");
    }
    if let Some(verdict) = report.verdict {
        let _ = writeln!(out, "- Verdict: **{}**", verdict.label());
    }
    let _ = writeln!(
        out,
        "- Started {} against {} (Switchboard {}, seed {})",
        report.started_at,
        report.control,
        report.switchboard_version,
        report
            .seed
            .map_or_else(|| "unknown".to_string(), |s| s.to_string())
    );
    for target in &report.targets {
        let state = match &target.lost {
            Some(why) => format!("**lost**: {why}"),
            None => "held to the end".to_string(),
        };
        let _ = writeln!(
            out,
            "- Target {} at {}: {state}",
            target.name, target.control
        );
    }
    let p = &report.phases;
    let _ = writeln!(
        out,
        "- Baseline {}, faults in force {}, observed {} after the lift\n",
        secs(Some(report.baseline_ms)),
        secs(Some(p.lifted_ms - p.injected_ms)),
        secs(Some(p.end_ms - p.lifted_ms))
    );
    let _ = writeln!(
        out,
        "| probe | verdict | baseline | detected after | degraded mode after | worst window | failed samples | error budget | recovery | RTO |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    for probe in &report.probes {
        let m = probe.measures.as_ref();
        let verdict = probe.verdict.map_or("—", |v| v.label());
        // A Route probe reads one target's counters: the table says whose.
        let name = match &probe.probe.check {
            super::scenario::Check::Route {
                target: Some(target),
                ..
            } => format!("{}@{target}", probe.name),
            _ => probe.name.clone(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.1}% | {} | {} | {} | {} | {} | {} | {} |",
            name,
            verdict,
            probe.baseline_success * 100.0,
            secs(m.and_then(|m| m.detect_ms)),
            secs(m.and_then(|m| m.degraded_ms)),
            m.and_then(|m| m.worst_window_success.map(|w| (w, m.worst_window_partial)))
                .map_or("—".into(), |(w, partial)| if partial {
                    format!("{:.0}% (partial window)", w * 100.0)
                } else {
                    format!("{:.0}%", w * 100.0)
                }),
            m.map_or("—".into(), |m| format!(
                "{} / {}",
                m.failed_samples, m.samples
            )),
            m.and_then(|m| m.error_budget_burned)
                .map_or("—".into(), |b| format!("{:.0}×", b)),
            secs(m.and_then(|m| m.recovery_ms)),
            against(m.and_then(|m| m.rto_ms), probe.probe.rto),
        );
    }
    let reasons: Vec<_> = report
        .probes
        .iter()
        .filter_map(|p| p.reason.as_ref().map(|r| (&p.name, r)))
        .collect();
    if !reasons.is_empty() {
        let _ = writeln!(out);
        for (name, reason) in reasons {
            let _ = writeln!(out, "- **{name}** failed: {reason}");
        }
    }
    for probe in &report.probes {
        let Some(m) = &probe.measures else { continue };
        if m.worst_window_partial {
            let _ = writeln!(
                out,
                "- **{}**: the faults held for less than one steady-state window; its worst window is scored on all of that time",
                probe.name
            );
        }
        if m.no_traffic_samples > 0 {
            let _ = writeln!(
                out,
                "- **{}**: {} of {} readings saw no traffic through the route, so they could not show health; they count as failed",
                probe.name, m.no_traffic_samples, m.samples
            );
        }
    }
    durability_section(&mut out, report);
    let _ = writeln!(out, "\n## Timeline\n");
    for event in &report.events {
        let _ = writeln!(out, "- {:>8} {}", secs(Some(event.t_ms)), event.what);
    }
    out
}

/// The writes each `Durability` probe had acknowledged and what reading them back found.
fn durability_section(out: &mut String, report: &Report) {
    let found: Vec<_> = report
        .probes
        .iter()
        .filter_map(|p| p.durability.as_ref().map(|d| (p, d)))
        .collect();
    if found.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n## Durability\n");
    let _ = writeln!(
        out,
        "| probe | acknowledged writes | lost | RPO (span of the lost writes) | duplicates | unverified |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for (probe, d) in &found {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            probe.name,
            d.acknowledged,
            d.lost.len(),
            against(Some(d.rpo_ms), probe.probe.rpo),
            d.duplicates.values().map(|n| n - 1).sum::<usize>(),
            d.unverified.len()
        );
    }
    for (probe, d) in found {
        if let (Some(first), Some(last)) = (d.lost.first(), d.lost.last()) {
            let _ = writeln!(
                out,
                "\n- **{}** lost the writes acknowledged from {} to {} (ids {} … {})",
                probe.name,
                secs(Some(first.t_ms)),
                secs(Some(last.t_ms)),
                first.id,
                last.id
            );
        }
    }
}

/// A measured time against its objective: `3.20 s (≤ 30 s, met)`.
fn against(measured: Option<f64>, objective: Option<std::time::Duration>) -> String {
    match (measured, objective) {
        (measured, None) => secs(measured),
        (None, Some(o)) => format!("never (≤ {}, missed)", humantime::format_duration(o)),
        (Some(ms), Some(o)) => {
            let met = ms <= o.as_secs_f64() * 1000.0;
            format!(
                "{} (≤ {}, {})",
                secs(Some(ms)),
                humantime::format_duration(o),
                if met { "met" } else { "missed" }
            )
        }
    }
}

/// Milliseconds as seconds with two decimals, or a dash.
pub fn secs(ms: Option<f64>) -> String {
    ms.map_or_else(|| "—".to_string(), |ms| format!("{:.2} s", ms / 1000.0))
}
