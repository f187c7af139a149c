//! What the drill watches while it runs: whether the baseline held, whether an abort
//! condition fired, and whether every probe has recovered.

use super::Drill;
use crate::drill::measure::{self, Phases};

impl Drill<'_> {
    pub(super) fn baseline_problem(&self) -> Option<String> {
        let end = self.scenario.baseline.as_secs_f64() * 1000.0;
        self.scenario
            .probes
            .iter()
            .zip(&self.samples)
            .find_map(|(probe, samples)| {
                let baseline = measure::between(samples, 0.0, end);
                (!measure::holds(baseline, &probe.steady)).then(|| {
                    format!(
                        "the steady state did not hold before injection: probe {:?} had {:.1}% success (p99 {:.1} ms) over {} samples",
                        probe.name,
                        measure::success(baseline) * 100.0,
                        measure::p99_ms(baseline),
                        baseline.len()
                    )
                })
            })
    }

    pub(super) fn abort_reason(&mut self) -> Option<String> {
        let now = self.now_ms();
        for abort in &self.scenario.abort {
            let Some(index) = self
                .scenario
                .probes
                .iter()
                .position(|p| p.name == abort.probe)
            else {
                continue;
            };
            let span = abort.sustained.as_secs_f64() * 1000.0;
            if now - self.phases.injected_ms < span {
                continue;
            }
            let recent = measure::between(&self.samples[index], now - span, now);
            let share = measure::success(recent);
            if !recent.is_empty() && share < abort.below {
                return Some(format!(
                    "abort condition: probe {:?} at {:.0}% success over the last {}, under {:.0}%",
                    abort.probe,
                    share * 100.0,
                    humantime::format_duration(abort.sustained),
                    abort.below * 100.0
                ));
            }
        }
        None
    }

    pub(super) fn all_recovered(&self) -> bool {
        let phases = Phases {
            end_ms: self.now_ms(),
            ..self.phases
        };
        self.scenario
            .probes
            .iter()
            .zip(&self.samples)
            .all(|(probe, samples)| {
                measure::measure(probe, samples, &phases)
                    .recovery_ms
                    .is_some()
            })
    }
}
