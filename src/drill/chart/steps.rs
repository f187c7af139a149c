//! What the chart draws, worked out from the report alone: each probe's lines as steps that
//! change only at sample times, and which fault windows shade which panel.

use super::super::measure;
use super::super::probe::Sample;
use super::super::report::{FaultWindow, ProbeReport, Report};

/// A stretch of a probe's samples summed up. Its value holds from its first sample until the
/// next stretch's first sample, as a step: nothing is drawn between samples that was not
/// measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Stretch {
    /// The first sample's time, in seconds since the drill started.
    pub from_s: f64,
    /// Where the step ends: the next stretch's first sample, or this one's last.
    pub to_s: f64,
    pub success_pct: f64,
    pub p99_ms: f64,
    pub degraded_pct: f64,
}

/// The probe's samples in stretches of two sample intervals at least, and no more than about
/// 200 across the chart. No stretch spans the injection or the lift, so no line moves before
/// a sample taken after either could have shown it.
pub fn stretches(report: &Report, probe: &ProbeReport) -> Vec<Stretch> {
    let phases = &report.phases;
    let end_ms = phases
        .end_ms
        .max(probe.samples.last().map_or(0.0, |s| s.t_ms + 1.0));
    // At least 1 ms, so that a report with no interval or no length still ends the loop.
    let width_ms = (probe.probe.interval.as_secs_f64() * 2000.0)
        .max(end_ms / 200.0)
        .max(1.0);
    let bounds = [0.0, phases.injected_ms, phases.lifted_ms, end_ms];
    let mut groups: Vec<&[Sample]> = Vec::new();
    for pair in bounds.windows(2) {
        let (from, to) = (pair[0], pair[1].max(pair[0]));
        let mut at = from;
        while at < to {
            let next = (at + width_ms).min(to);
            let samples = measure::between(&probe.samples, at, next);
            if !samples.is_empty() {
                groups.push(samples);
            }
            at = next;
        }
    }
    let starts: Vec<f64> = groups.iter().map(|g| g[0].t_ms / 1000.0).collect();
    groups
        .iter()
        .enumerate()
        .map(|(i, samples)| {
            let last = samples[samples.len() - 1].t_ms / 1000.0;
            Stretch {
                from_s: starts[i],
                to_s: starts.get(i + 1).copied().unwrap_or(last),
                success_pct: measure::success(samples) * 100.0,
                p99_ms: measure::p99_ms(samples),
                degraded_pct: samples.iter().filter(|s| s.degraded).count() as f64 * 100.0
                    / samples.len() as f64,
            }
        })
        .collect()
}

/// The corners of a step line through the stretches: flat across each, upright between.
pub fn step_points(stretches: &[Stretch], value: impl Fn(&Stretch) -> f64) -> Vec<(f64, f64)> {
    stretches
        .iter()
        .flat_map(|s| [(s.from_s, value(s)), (s.to_s, value(s))])
        .collect()
}

/// The faults in the order they were first switched on, each once.
pub fn faults(report: &Report) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for window in &report.fault_windows {
        if !names.contains(&window.fault.as_str()) {
            names.push(&window.fault);
        }
    }
    names
}

/// The windows shaded on a probe's panel: those of the faults it is `affected_by`.
pub fn shaded<'r>(report: &'r Report, probe: &ProbeReport) -> Vec<&'r FaultWindow> {
    report
        .fault_windows
        .iter()
        .filter(|w| {
            let plain = w.fault.split('@').next().unwrap_or_default();
            probe
                .probe
                .affected_by
                .iter()
                .any(|a| *a == w.fault || (w.target.is_some() && a == plain))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::drill::measure::Phases;
    use crate::drill::report::{Outcome, SCHEMA};
    use crate::drill::scenario::{Check, Probe, Steady};

    fn sample(t_ms: f64, ok: bool) -> Sample {
        Sample {
            t_ms,
            ok,
            latency_ms: if ok { 5.0 } else { 1000.0 },
            status: None,
            degraded: false,
            error: None,
            no_traffic: false,
        }
    }

    fn probe(affected_by: &[&str], samples: Vec<Sample>) -> ProbeReport {
        ProbeReport {
            name: "p".into(),
            probe: Probe {
                name: "p".into(),
                check: Check::Tcp {
                    addr: "127.0.0.1:1".into(),
                    send: None,
                    expect: None,
                },
                interval: Duration::from_millis(200),
                timeout: Duration::from_secs(1),
                steady: Steady::default(),
                degraded: None,
                recover_within: None,
                rto: None,
                rpo: None,
                affected_by: affected_by.iter().map(|s| s.to_string()).collect(),
            },
            baseline_success: 1.0,
            measures: None,
            verdict: None,
            reason: None,
            durability: None,
            samples,
        }
    }

    fn report(probes: Vec<ProbeReport>) -> Report {
        let window = |fault: &str, from_ms, to_ms| FaultWindow {
            fault: fault.into(),
            target: None,
            from_ms,
            to_ms,
        };
        Report {
            schema: SCHEMA.into(),
            drill: "d".into(),
            description: String::new(),
            switchboard_version: "test".into(),
            control: "in-process".into(),
            seed: None,
            started_at: String::new(),
            outcome: Outcome::Completed,
            reason: None,
            verdict: None,
            baseline_ms: 5000.0,
            phases: Phases {
                injected_ms: 5050.0,
                lifted_ms: 15_050.0,
                end_ms: 25_000.0,
            },
            events: Vec::new(),
            fault_windows: vec![
                window("partition", 5050.0, 15_050.0),
                window("slow", 5050.0, 15_050.0),
            ],
            probes,
            targets: Vec::new(),
        }
    }

    /// Samples every 200 ms that fail from the first one after the injection until the
    /// first one after the lift, as a probe whose dependency is partitioned sees it.
    fn outage_samples() -> Vec<Sample> {
        (0..125)
            .map(|i| {
                let t = i as f64 * 200.0 + 17.0;
                sample(t, !(5050.0..15_050.0).contains(&t))
            })
            .collect()
    }

    fn value_at(points: &[(f64, f64)], x: f64) -> f64 {
        points
            .iter()
            .rev()
            .find(|(px, _)| *px <= x)
            .map_or(f64::NAN, |p| p.1)
    }

    #[test]
    fn the_success_line_moves_only_at_the_first_sample_after_the_injection_and_the_lift() {
        let p = probe(&[], outage_samples());
        let r = report(vec![p.clone()]);
        let points = step_points(&stretches(&r, &p), |s| s.success_pct);
        let first_after = |t: f64| {
            p.samples
                .iter()
                .find(|s| s.t_ms >= t)
                .map(|s| s.t_ms / 1000.0)
        };
        let failing_from = first_after(5050.0).expect("a sample after the injection");
        let healthy_from = first_after(15_050.0).expect("a sample after the lift");
        for pair in points.windows(2) {
            let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
            assert!(x1 >= x0, "the line runs forward in time: {pair:?}");
            if y0 != y1 {
                assert_eq!(
                    x0, x1,
                    "the value changes only straight up or down: {pair:?}"
                );
                assert!(
                    p.samples.iter().any(|s| s.t_ms / 1000.0 == x0),
                    "a step at {x0} s is at a sample time"
                );
            }
        }
        for i in 0..250 {
            let x = i as f64 / 10.0;
            let y = value_at(&points, x);
            if x < failing_from && x >= points[0].0 {
                assert_eq!(
                    y, 100.0,
                    "healthy before the injection's first sample, at {x} s"
                );
            } else if (failing_from..healthy_from).contains(&x) {
                assert_eq!(y, 0.0, "failing while the fault held, at {x} s");
            } else if x >= healthy_from && x <= points[points.len() - 1].0 {
                assert_eq!(y, 100.0, "healthy from the lift's first sample, at {x} s");
            }
        }
    }

    #[test]
    fn a_stretch_ends_where_the_next_begins_and_the_last_at_its_last_sample() {
        let p = probe(&[], outage_samples());
        let r = report(vec![p.clone()]);
        let s = stretches(&r, &p);
        for pair in s.windows(2) {
            assert_eq!(pair[0].to_s, pair[1].from_s);
        }
        let last = s.last().expect("stretches");
        assert_eq!(last.to_s, p.samples[p.samples.len() - 1].t_ms / 1000.0);
    }

    #[test]
    fn a_panel_shades_only_the_faults_its_probe_is_affected_by() {
        let affected = probe(&["slow"], outage_samples());
        let untouched = probe(&[], outage_samples());
        let r = report(vec![affected.clone(), untouched.clone()]);
        let names: Vec<&str> = shaded(&r, &affected)
            .iter()
            .map(|w| w.fault.as_str())
            .collect();
        assert_eq!(names, ["slow"]);
        assert!(shaded(&r, &untouched).is_empty());
        assert_eq!(faults(&r), ["partition", "slow"]);
    }

    /// The rendered chart, read back as XML: every panel names every fault beside its lane,
    /// marks both phases, and keeps its legend above the lanes, clear of the data.
    #[test]
    fn the_chart_labels_each_panel_and_keeps_the_legend_off_the_data() {
        let r = report(vec![
            probe(&["slow"], outage_samples()),
            probe(&[], outage_samples()),
        ]);
        let svg = crate::drill::chart::render(&r);
        let doc = roxmltree::Document::parse(&svg).expect("the chart is XML");
        let texts: Vec<(&str, f64)> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .map(|n| {
                let y = n
                    .attribute("y")
                    .and_then(|y| y.parse().ok())
                    .unwrap_or(f64::NAN);
                (n.text().unwrap_or("").trim(), y)
            })
            .collect();
        let count = |label: &str| texts.iter().filter(|(t, _)| *t == label).count();
        for label in [
            "fault partition",
            "fault slow",
            "injected",
            "lifted",
            "p99 latency (right axis)",
        ] {
            assert_eq!(count(label), 2, "{label:?} once per panel: {texts:?}");
        }
        assert_eq!(
            count("shaded: faults it is affected by"),
            1,
            "only the panel with shading explains it"
        );
        let y_of = |label: &str| {
            texts
                .iter()
                .find(|(t, _)| *t == label)
                .map(|(_, y)| *y)
                .expect(label)
        };
        assert!(y_of("p99 latency (right axis)") < y_of("fault partition"));
        assert!(y_of("fault slow") < y_of("injected"));
    }
}
