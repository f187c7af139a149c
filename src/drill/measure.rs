//! The measures of a drill, computed from the probe samples and the phase boundaries alone,
//! and the verdict on each probe's hypothesis.

use serde::{Deserialize, Serialize};

use super::probe::Sample;
use super::scenario::{Probe, Steady};

/// When the phases began, in milliseconds from the start of the drill.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    /// Injection started (the end of the baseline).
    pub injected_ms: f64,
    /// Every fault was lifted (the restore finished).
    pub lifted_ms: f64,
    /// Sampling stopped.
    pub end_ms: f64,
}

/// What a drill measured of one probe. Times are in milliseconds; `None` when it did not
/// happen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measures {
    /// Samples taken in all.
    pub samples: usize,
    /// From injection to the first failed sample.
    pub detect_ms: Option<f64>,
    /// From injection to the first sample showing the planned degraded mode.
    pub degraded_ms: Option<f64>,
    /// Share of samples showing the degraded mode from its first appearance until the lift.
    pub degraded_share: Option<f64>,
    /// Failed samples from injection on.
    pub failed_samples: usize,
    /// Failed samples over those the steady state allows (1 − min_success of the samples
    /// from injection on); above 1.0 the budget is overdrawn. `None` when none are allowed.
    pub error_budget_burned: Option<f64>,
    /// The lowest success over a whole window while the faults were in force. When the
    /// faults held for less than one window, the success over all of that time instead, and
    /// `worst_window_partial` says so.
    pub worst_window_success: Option<f64>,
    /// `worst_window_success` was scored on less than a whole window.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub worst_window_partial: bool,
    /// Samples of a route probe that saw no traffic to judge (counted as failed).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub no_traffic_samples: usize,
    /// From the lift to the first moment from which the steady state held for whole windows
    /// until the end of the drill.
    pub recovery_ms: Option<f64>,
    /// The measured recovery time: from the injection to the first moment from which the
    /// steady state held for whole windows until the end, through the faults or after them;
    /// 0 when no sample failed. `None` when it never came back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_ms: Option<f64>,
}

/// The verdict on one probe's hypothesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Stayed healthy through the faults and was healthy after them.
    Passed,
    /// Showed the planned reduced mode and recovered.
    DegradedAsPlanned,
    /// Anything else; the reason says what.
    Failed,
}

impl Verdict {
    /// As the report prints it.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::DegradedAsPlanned => "degraded as planned",
            Verdict::Failed => "FAILED",
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Whether a set of samples meets the steady-state condition.
pub fn holds(samples: &[Sample], steady: &Steady) -> bool {
    if samples.is_empty() {
        return false;
    }
    success(samples) >= steady.min_success
        && steady
            .max_p99
            .is_none_or(|max| p99_ms(samples) <= max.as_secs_f64() * 1000.0)
}

/// The share of successful samples (1.0 for none).
pub fn success(samples: &[Sample]) -> f64 {
    if samples.is_empty() {
        return 1.0;
    }
    samples.iter().filter(|s| s.ok).count() as f64 / samples.len() as f64
}

/// The 99th percentile of the samples' latency, nearest-rank; samples that saw no traffic
/// have no latency and are left out.
pub fn p99_ms(samples: &[Sample]) -> f64 {
    let mut latencies: Vec<f64> = samples
        .iter()
        .filter(|s| !s.no_traffic)
        .map(|s| s.latency_ms)
        .collect();
    if latencies.is_empty() {
        return 0.0;
    }
    latencies.sort_by(f64::total_cmp);
    let rank = ((latencies.len() as f64) * 0.99).ceil() as usize;
    latencies[rank.clamp(1, latencies.len()) - 1]
}

/// The samples taken in `[from, to)`; `samples` are in time order.
pub fn between(samples: &[Sample], from: f64, to: f64) -> &[Sample] {
    let start = samples.partition_point(|s| s.t_ms < from);
    let end = samples.partition_point(|s| s.t_ms < to);
    &samples[start..end.max(start)]
}

/// Measures one probe. `samples` are in time order.
pub fn measure(probe: &Probe, samples: &[Sample], phases: &Phases) -> Measures {
    let window = probe.steady.window.as_secs_f64() * 1000.0;
    let after = between(samples, phases.injected_ms, f64::INFINITY);
    let faulted = between(samples, phases.injected_ms, phases.lifted_ms);
    let detect_ms = after
        .iter()
        .find(|s| !s.ok)
        .map(|s| s.t_ms - phases.injected_ms);
    let entered = faulted.iter().position(|s| s.degraded);
    let degraded_share = entered.map(|i| {
        let from_entry = &faulted[i..];
        from_entry.iter().filter(|s| s.degraded).count() as f64 / from_entry.len() as f64
    });
    let failed_samples = after.iter().filter(|s| !s.ok).count();
    let allowed = after.len() as f64 * (1.0 - probe.steady.min_success);
    let (worst_window_success, worst_window_partial) = worst_window(faulted, window, phases);
    Measures {
        samples: samples.len(),
        detect_ms,
        degraded_ms: entered.map(|i| faulted[i].t_ms - phases.injected_ms),
        degraded_share,
        failed_samples,
        error_budget_burned: (allowed > 0.0).then(|| failed_samples as f64 / allowed),
        worst_window_success,
        worst_window_partial,
        no_traffic_samples: samples.iter().filter(|s| s.no_traffic).count(),
        rto_ms: if failed_samples == 0 {
            Some(0.0)
        } else {
            good_from(samples, &probe.steady, phases.injected_ms, phases.end_ms)
                .map(|t| t - phases.injected_ms)
        },
        recovery_ms: recovered_at(samples, &probe.steady, phases).map(|t| {
            // A probe that was healthy when the faults were lifted and stayed so needed no
            // time at all; otherwise the time runs to its first good sample.
            let before = between(samples, 0.0, phases.lifted_ms);
            let first_after = between(samples, phases.lifted_ms, f64::INFINITY).first();
            let healthy_at_lift = before.last().is_some_and(|s| s.ok);
            if healthy_at_lift && first_after.is_some_and(|s| s.t_ms == t) {
                0.0
            } else {
                t - phases.lifted_ms
            }
        }),
    }
}

/// The lowest success over whole windows that start at a sample and end before the lift.
/// Windows that would run past the lift are not scored: they would shrink to a sample or two.
/// With no whole window, all of `faulted` is scored once, marked partial.
fn worst_window(faulted: &[Sample], window: f64, phases: &Phases) -> (Option<f64>, bool) {
    let whole = faulted
        .iter()
        .filter(|s| s.t_ms + window <= phases.lifted_ms)
        .map(|s| success(between(faulted, s.t_ms, s.t_ms + window)))
        .min_by(f64::total_cmp);
    match whole {
        Some(worst) => (Some(worst), false),
        None if faulted.is_empty() => (None, false),
        None => (Some(success(faulted)), true),
    }
}

/// The first successful sample after the lift from which every whole window up to the end
/// holds the steady state, if at least one whole window follows it.
fn recovered_at(samples: &[Sample], steady: &Steady, phases: &Phases) -> Option<f64> {
    good_from(samples, steady, phases.lifted_ms, phases.end_ms)
}

/// The first successful sample at or after `from_ms` from which every whole window up to
/// `end_ms` holds the steady state, if at least one whole window follows it.
fn good_from(samples: &[Sample], steady: &Steady, from_ms: f64, end_ms: f64) -> Option<f64> {
    let window = steady.window.as_secs_f64() * 1000.0;
    let after = between(samples, from_ms, end_ms + 1.0);
    // Walk back from the end: `good_from` is the earliest start from which every whole
    // window so far held.
    let mut good_from = None;
    for (i, sample) in after.iter().enumerate().rev() {
        let whole = sample.t_ms + window <= end_ms;
        if !whole {
            continue;
        }
        let rest = &after[i..];
        let end = rest.partition_point(|s| s.t_ms < sample.t_ms + window);
        if !holds(&rest[..end], steady) {
            break;
        }
        if sample.ok {
            good_from = Some(sample.t_ms);
        }
    }
    good_from
}

/// The verdict on a probe, and why when it failed.
pub fn judge(probe: &Probe, measures: &Measures) -> (Verdict, Option<String>) {
    let Some(recovery) = measures.recovery_ms else {
        return (
            Verdict::Failed,
            Some("did not recover: the steady state never held for a whole window after the faults were lifted".into()),
        );
    };
    if let Some(objective) = probe.rto {
        let missed = measures
            .rto_ms
            .is_none_or(|rto| rto > objective.as_secs_f64() * 1000.0);
        if missed {
            return (
                Verdict::Failed,
                Some(format!(
                    "missed its RTO: back {} after the injection, the objective is {}",
                    measures
                        .rto_ms
                        .map_or("never".to_string(), |ms| format!("{:.0} ms", ms)),
                    humantime::format_duration(objective)
                )),
            );
        }
    }
    if let Some(limit) = probe.recover_within
        && recovery > limit.as_secs_f64() * 1000.0
    {
        return (
            Verdict::Failed,
            Some(format!(
                "recovered in {:.0} ms, more than the {} allowed",
                recovery,
                humantime::format_duration(limit)
            )),
        );
    }
    match &probe.degraded {
        Some(plan) => match measures.degraded_share {
            None => (
                Verdict::Failed,
                Some("never showed the planned degraded mode".into()),
            ),
            Some(share) if share < plan.min_share => (
                Verdict::Failed,
                Some(format!(
                    "showed the planned degraded mode in {:.0}% of samples once entered; the plan asks {:.0}%",
                    share * 100.0,
                    plan.min_share * 100.0
                )),
            ),
            Some(_) => (Verdict::DegradedAsPlanned, None),
        },
        // With an RTO the outage is the plan: the hypothesis is that service is back in time.
        None if probe.rto.is_some() => (Verdict::Passed, None),
        None => match measures.worst_window_success {
            Some(worst) if worst < probe.steady.min_success => (
                Verdict::Failed,
                Some(format!(
                    "the steady state broke while faults were in force: {:.0}% success over a window, {:.0}% required",
                    worst * 100.0,
                    probe.steady.min_success * 100.0
                )),
            ),
            _ => (Verdict::Passed, None),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::drill::scenario::{Check, Degraded};

    fn probe(degraded: bool) -> Probe {
        Probe {
            name: "p".into(),
            check: Check::Tcp {
                addr: "x:1".into(),
                send: None,
                expect: None,
            },
            interval: Duration::from_millis(100),
            timeout: Duration::from_secs(1),
            steady: Steady {
                min_success: 1.0,
                window: Duration::from_millis(1000),
                max_p99: None,
            },
            degraded: degraded.then(|| Degraded {
                status: vec![503],
                body_contains: None,
                min_share: 0.9,
            }),
            recover_within: None,
            rto: None,
            rpo: None,
            affected_by: Vec::new(),
        }
    }

    /// A sample every 100 ms from 0 to `end`, failing (and degraded) inside `bad`.
    fn samples(end: u32, bad: std::ops::Range<u32>) -> Vec<Sample> {
        (0..end / 100)
            .map(|i| {
                let t = i * 100;
                let failing = bad.contains(&t);
                Sample {
                    t_ms: t as f64,
                    ok: !failing,
                    latency_ms: 1.0,
                    status: None,
                    degraded: failing,
                    error: None,
                    no_traffic: false,
                }
            })
            .collect()
    }

    const PHASES: Phases = Phases {
        injected_ms: 2000.0,
        lifted_ms: 5000.0,
        end_ms: 10_000.0,
    };

    #[test]
    fn recovery_is_timed_from_the_lift_to_the_first_good_sample_that_stays_good() {
        // Failing from 2.3 s until 7.2 s: 2.2 s after the lift.
        let s = samples(10_000, 2300..7200);
        let m = measure(&probe(true), &s, &PHASES);
        assert_eq!(m.detect_ms, Some(300.0));
        assert_eq!(m.degraded_ms, Some(300.0));
        assert_eq!(m.degraded_share, Some(1.0));
        assert_eq!(m.recovery_ms, Some(2200.0));
        assert_eq!(m.failed_samples, 49);
        assert_eq!(m.error_budget_burned, None);
        assert_eq!(judge(&probe(true), &m).0, Verdict::DegradedAsPlanned);
    }

    #[test]
    fn a_probe_that_never_degrades_passes_only_without_a_degraded_plan() {
        let s = samples(10_000, 0..0);
        let m = measure(&probe(false), &s, &PHASES);
        assert_eq!(m.detect_ms, None);
        assert_eq!(m.recovery_ms, Some(0.0));
        assert_eq!(judge(&probe(false), &m).0, Verdict::Passed);
        let (verdict, why) = judge(&probe(true), &m);
        assert_eq!(verdict, Verdict::Failed);
        assert!(why.is_some_and(|w| w.contains("never showed")));
    }

    #[test]
    fn a_probe_still_failing_at_the_end_did_not_recover() {
        let s = samples(10_000, 2300..10_000);
        let m = measure(&probe(true), &s, &PHASES);
        assert_eq!(m.recovery_ms, None);
        assert_eq!(judge(&probe(true), &m).0, Verdict::Failed);
    }

    #[test]
    fn a_blip_after_recovery_moves_the_recovery_past_it() {
        let mut s = samples(10_000, 2300..5500);
        s[70].ok = false; // 7.0 s
        let m = measure(&probe(false), &s, &PHASES);
        assert_eq!(m.recovery_ms, Some(2100.0));
        assert!(m.worst_window_success.is_some_and(|w| w < 0.1));
        assert_eq!(judge(&probe(false), &m).0, Verdict::Failed);
    }

    #[test]
    fn only_whole_windows_before_the_lift_are_scored() {
        // Healthy throughout but for the last sample before the lift (4.9 s). A 1 s window
        // starting there would hold one sample and score 0%; whole windows see 90% at worst.
        let mut s = samples(10_000, 0..0);
        s[49].ok = false;
        let m = measure(&probe(false), &s, &PHASES);
        assert_eq!(m.worst_window_success, Some(0.9));
        assert!(!m.worst_window_partial);

        // Faults held for 0.5 s, less than the 1 s window: one partial window, said so.
        let short = Phases {
            injected_ms: 2000.0,
            lifted_ms: 2500.0,
            end_ms: 10_000.0,
        };
        let mut s = samples(10_000, 0..0);
        s[24].ok = false;
        let m = measure(&probe(false), &s, &short);
        assert_eq!(m.worst_window_success, Some(0.8));
        assert!(m.worst_window_partial);
    }

    #[test]
    fn samples_without_traffic_count_as_failed_and_are_counted() {
        let mut s = samples(10_000, 0..0);
        for sample in &mut s[20..25] {
            sample.ok = false;
            sample.no_traffic = true;
            sample.latency_ms = 0.0;
        }
        let m = measure(&probe(false), &s, &PHASES);
        assert_eq!(m.no_traffic_samples, 5);
        assert_eq!(m.failed_samples, 5);
        assert_eq!(judge(&probe(false), &m).0, Verdict::Failed);
    }

    #[test]
    fn p99_and_success_over_a_window() {
        let mut s = samples(1000, 0..300);
        s[9].latency_ms = 50.0;
        assert!((success(&s) - 0.7).abs() < 1e-9);
        assert_eq!(p99_ms(&s), 50.0);
    }

    #[test]
    fn rto_runs_from_the_injection_to_a_failover_made_while_the_faults_hold() {
        // Injected at 1000, failing until 2500 (the failover), lifted at 5000.
        let phases = Phases {
            injected_ms: 1000.0,
            lifted_ms: 5000.0,
            end_ms: 8000.0,
        };
        let mut p = probe(false);
        let m = measure(&p, &samples(8000, 1000..2500), &phases);
        assert_eq!(m.rto_ms, Some(1500.0));
        p.rto = Some(Duration::from_secs(2));
        assert_eq!(
            judge(&p, &m).0,
            Verdict::Passed,
            "an outage within the RTO is the plan"
        );
        p.rto = Some(Duration::from_secs(1));
        let (verdict, why) = judge(&p, &m);
        assert_eq!(verdict, Verdict::Failed);
        assert!(why.is_some_and(|w| w.contains("missed its RTO: back 1500 ms")));
    }

    #[test]
    fn rto_counts_the_time_after_the_lift_when_the_service_waited_for_it() {
        let phases = Phases {
            injected_ms: 1000.0,
            lifted_ms: 3000.0,
            end_ms: 6000.0,
        };
        let mut p = probe(true);
        p.rto = Some(Duration::from_secs(3));
        let m = measure(&p, &samples(6000, 1000..3400), &phases);
        assert_eq!(m.rto_ms, Some(2400.0));
        assert_eq!(m.recovery_ms, Some(400.0));
        assert_eq!(judge(&p, &m).0, Verdict::DegradedAsPlanned, "met");
        let healthy = measure(&p, &samples(6000, 0..0), &phases);
        assert_eq!(healthy.rto_ms, Some(0.0), "no failure, no recovery time");
        let never = measure(&p, &samples(6000, 1000..6000), &phases);
        assert_eq!(never.rto_ms, None);
    }
}
