//! Runs a drill: baseline, timeline, restore, observation; then measures and judges.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

mod changes;
mod checks;

use super::DrillError;
use super::control::{Control, Controls};
use super::durability::{self, Durability, Ledger};
use super::measure::{self, Phases, Verdict};
use super::probe::{Sample, Sampler};
use super::report::{
    FaultWindow, Outcome, ProbeReport, Report, SCHEMA, TargetReport, TimelineEvent,
};
use super::scenario::{ReadBack, Scenario};
use super::timeline::{self, Plan};
use crate::telemetry::timestamp;

/// How often abort conditions, recovery and the progress display are looked at.
const TICK: Duration = Duration::from_millis(100);
/// A drill's faults outlive its planned end by at most this, should its controller vanish.
const TTL_GRACE: Duration = Duration::from_secs(10);
/// How long a fault the drill switched on stays on unless the drill renews it.
const LEASE: Duration = Duration::from_secs(15);
/// How often the drill renews it.
const RENEW_EVERY: Duration = Duration::from_secs(5);
/// How often every Switchboard the drill acts on is asked whether it is still there.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// How long one of them has to answer before the drill counts it lost.
const WATCH_WITHIN: Duration = Duration::from_secs(2);

/// A fault on one of the drill's Switchboards: the target (`None` for its own) and the name.
type FaultKey = (Option<String>, String);

/// A Switchboard that stopped answering: its target (`None` for the drill's own), and why.
type Lost = (Option<String>, String);

/// Which part of the drill is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Checking the steady state before anything is injected.
    Baseline,
    /// The timeline is running.
    Injecting,
    /// Putting every fault back as it was.
    Restoring,
    /// Waiting for every probe to recover.
    Observing,
    /// Over.
    Done,
}

/// What the drill is doing now, for a progress display.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Progress {
    /// The phase.
    pub phase: Phase,
    /// Milliseconds since the start.
    pub elapsed_ms: u64,
    /// The planned length: baseline, timeline and the longest observation.
    pub total_ms: u64,
    /// Faults the drill has switched on now.
    pub faults_on: Vec<String>,
    /// Each probe's success over its last window.
    pub probes: Vec<(String, f64)>,
}

/// Runs `scenario` to its end, or until `stop` carries a reason (Ctrl-C, a lost lease, an
/// API call), in which case everything is rolled back at once.
pub async fn run(
    scenario: &Scenario,
    control: &Control,
    stop: watch::Receiver<Option<String>>,
    progress: Option<watch::Sender<Progress>>,
) -> Result<Report, DrillError> {
    run_with(scenario, &Controls::single(control.clone()), stop, progress).await
}

/// Runs `scenario` on its own Switchboard and the targets it names. Every one of them is
/// watched: one that stops answering stops the drill, which rolls back all the others and
/// reports the lost one by name.
pub async fn run_with(
    scenario: &Scenario,
    controls: &Controls,
    mut stop: watch::Receiver<Option<String>>,
    progress: Option<watch::Sender<Progress>>,
) -> Result<Report, DrillError> {
    let samplers = scenario
        .probes
        .iter()
        .enumerate()
        .map(|(i, p)| Sampler::new(i, p, controls))
        .collect::<Result<Vec<_>, _>>()?;
    let plan = timeline::plan(&scenario.steps);
    let mut drill = Drill::new(scenario, controls, &plan, progress);
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let mut tasks = JoinSet::new();
    let ledgers: Vec<Option<Ledger>> = samplers.iter().map(Sampler::ledger).collect();
    for sampler in samplers {
        tasks.spawn(sampler.run(drill.origin, sender.clone()));
    }
    drop(sender);
    let (lost_tx, mut lost) = mpsc::unbounded_channel();
    let mut watchers = JoinSet::new();
    let watched = std::iter::once((None, controls.own())).chain(
        controls
            .targets()
            .map(|(name, c)| (Some(name.to_string()), c)),
    );
    for (target, control) in watched {
        watchers.spawn(watch_target(target, control.clone(), lost_tx.clone()));
    }
    drop(lost_tx);
    drill.seed = controls.own().seed().await;

    drill.ledgers = ledgers;
    let ended = drill.body(&plan, &mut receiver, &mut stop, &mut lost).await;
    tasks.abort_all();
    watchers.abort_all();
    // After the recovery, the rest of the acknowledged writes are read back.
    if ended.injected {
        let after =
            durability::read_back_all(scenario, &drill.ledgers, ReadBack::AfterRecovery).await;
        for (slot, found) in drill.found.iter_mut().zip(after) {
            if slot.is_none() {
                *slot = found;
            }
        }
    }
    let found = std::mem::take(&mut drill.found);
    Ok(drill.finish(ended, found))
}

/// What the drill waits on: probe samples, a stop, a lost Switchboard.
struct Inbox<'r> {
    samples: &'r mut mpsc::UnboundedReceiver<(usize, Sample)>,
    stop: &'r mut watch::Receiver<Option<String>>,
    lost: &'r mut mpsc::UnboundedReceiver<Lost>,
}

/// How the phases went.
struct Ended {
    outcome: Outcome,
    reason: Option<String>,
    injected: bool,
}

/// Asks `control` whether it is there every [`WATCH_EVERY`]; says so once if it is not.
async fn watch_target(target: Option<String>, control: Control, lost: mpsc::UnboundedSender<Lost>) {
    let mut every = tokio::time::interval(WATCH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(why) = control.alive(WATCH_WITHIN).await {
            let _ = lost.send((target, why));
            return;
        }
    }
}

struct Drill<'a> {
    scenario: &'a Scenario,
    controls: &'a Controls,
    origin: Instant,
    started_at: SystemTime,
    seed: Option<u64>,
    samples: Vec<Vec<Sample>>,
    events: Vec<TimelineEvent>,
    /// Faults the drill added, to remove on restore.
    created: BTreeSet<FaultKey>,
    /// Faults that existed, with their definition before the drill touched them.
    originals: BTreeMap<FaultKey, Value>,
    /// Faults switched on now, since when.
    on_since: BTreeMap<FaultKey, f64>,
    /// The Switchboards that stopped answering, and why.
    lost: BTreeMap<Option<String>, String>,
    /// When the faults' leases were last renewed.
    renewed: Instant,
    windows: Vec<FaultWindow>,
    phases: Phases,
    deadline: Instant,
    total: Duration,
    progress: Option<watch::Sender<Progress>>,
    phase: Phase,
    /// The stop channel's sender is gone.
    unstoppable: bool,
    /// The acknowledged writes of each `Durability` probe, by probe.
    ledgers: Vec<Option<Ledger>>,
    /// What reading them back found, by probe.
    found: Vec<Option<Durability>>,
}

impl<'a> Drill<'a> {
    fn new(
        scenario: &'a Scenario,
        controls: &'a Controls,
        plan: &Plan,
        progress: Option<watch::Sender<Progress>>,
    ) -> Self {
        let origin = Instant::now();
        let total = scenario.baseline + plan.length + scenario.observe;
        Drill {
            scenario,
            controls,
            origin,
            started_at: SystemTime::now(),
            seed: None,
            samples: vec![Vec::new(); scenario.probes.len()],
            events: Vec::new(),
            created: BTreeSet::new(),
            originals: BTreeMap::new(),
            on_since: BTreeMap::new(),
            lost: BTreeMap::new(),
            renewed: origin,
            windows: Vec::new(),
            phases: Phases {
                injected_ms: 0.0,
                lifted_ms: 0.0,
                end_ms: 0.0,
            },
            deadline: origin + total + TTL_GRACE,
            total,
            progress,
            phase: Phase::Baseline,
            unstoppable: false,
            ledgers: Vec::new(),
            found: vec![None; scenario.probes.len()],
        }
    }

    fn now_ms(&self) -> f64 {
        self.origin.elapsed().as_secs_f64() * 1000.0
    }

    fn note(&mut self, what: impl Into<String>) {
        let what = what.into();
        tracing::info!(drill = %self.scenario.name, "{what}");
        self.events.push(TimelineEvent {
            t_ms: self.now_ms(),
            what,
        });
    }

    fn record(&mut self, (probe, sample): (usize, Sample)) {
        let list = &mut self.samples[probe];
        let at = list.partition_point(|s| s.t_ms <= sample.t_ms);
        list.insert(at, sample);
    }

    /// Takes samples and watches for a stop until `until`; returns the stop's reason.
    async fn wait(
        &mut self,
        until: Instant,
        inbox: &mut Inbox<'_>,
        mut check: impl FnMut(&mut Self) -> Option<String>,
    ) -> Option<String> {
        let Inbox {
            samples,
            stop,
            lost,
        } = inbox;
        let mut tick = tokio::time::interval(TICK);
        loop {
            if let Some(reason) = stop.borrow().clone() {
                return Some(reason);
            }
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return None,
                Some(sample) = samples.recv() => self.record(sample),
                Some((target, why)) = lost.recv() => {
                    let reason = format!("lost {}: {why}", self.name_of(target.as_deref()));
                    self.lost.insert(target, why);
                    return Some(reason);
                }
                _ = tick.tick() => {
                    self.publish();
                    if self.renewed.elapsed() >= RENEW_EVERY {
                        self.renew().await;
                    }
                    if let Some(reason) = check(self) {
                        return Some(reason);
                    }
                }
                changed = stop.changed(), if !self.unstoppable => if changed.is_err() {
                    // Nobody can stop it any more; carry on to the end.
                    self.unstoppable = true;
                },
            }
        }
    }

    /// How the report names one of the drill's Switchboards.
    fn name_of(&self, target: Option<&str>) -> String {
        match target {
            Some(name) => format!("target {name:?}"),
            None => format!(
                "the drill's Switchboard ({})",
                self.controls.own().describe()
            ),
        }
    }

    async fn body(
        &mut self,
        plan: &Plan,
        samples: &mut mpsc::UnboundedReceiver<(usize, Sample)>,
        stop: &mut watch::Receiver<Option<String>>,
        lost: &mut mpsc::UnboundedReceiver<Lost>,
    ) -> Ended {
        let mut inbox = Inbox {
            samples,
            stop,
            lost,
        };
        let inbox = &mut inbox;
        self.note(format!(
            "baseline: checking the steady state for {}",
            humantime::format_duration(self.scenario.baseline)
        ));
        let baseline_end = self.origin + self.scenario.baseline;
        if let Some(reason) = self.wait(baseline_end, inbox, |_| None).await {
            self.note(format!("stopped during the baseline: {reason}"));
            return self.refused(reason);
        }
        if let Some(reason) = self.baseline_problem() {
            self.note(format!("refused: {reason}"));
            return self.refused(reason);
        }

        self.phase = Phase::Injecting;
        let injected = Instant::now();
        self.phases.injected_ms = self.now_ms();
        self.note("injection started");
        let mut stopped = None;
        for planned in &plan.changes {
            if let Some(reason) = self
                .wait(injected + planned.at, inbox, Self::abort_reason)
                .await
            {
                stopped = Some(reason);
                break;
            }
            if let Err(e) = self.apply(planned).await {
                stopped = Some(format!("a step failed: {e}"));
                break;
            }
        }
        if stopped.is_none() {
            stopped = self
                .wait(injected + plan.length, inbox, Self::abort_reason)
                .await;
        }

        self.phase = Phase::Restoring;
        match &stopped {
            Some(reason) => self.note(format!("rolling back: {reason}")),
            None => self.note("timeline finished; restoring"),
        }
        if stopped.is_none() {
            self.found =
                durability::read_back_all(self.scenario, &self.ledgers, ReadBack::BeforeRestore)
                    .await;
            if self.found.iter().any(Option::is_some) {
                self.note("acknowledged writes read back before the restore");
            }
        }
        self.restore().await;
        self.phases.lifted_ms = self.now_ms();
        self.note("every fault lifted");

        // An interruption means "stop now"; an abort condition or a failed step still
        // leaves the recovery worth measuring.
        let interrupted = stopped.is_some() && inbox.stop.borrow().is_some();
        if !interrupted {
            self.phase = Phase::Observing;
            let until = Instant::now() + self.scenario.observe;
            let stop_reason = self
                .wait(until, inbox, |d| d.all_recovered().then(String::new))
                .await;
            match stop_reason {
                Some(r) if r.is_empty() => self.note("every probe recovered"),
                Some(r) => self.note(format!("observation stopped: {r}")),
                None => self.note("observation deadline reached"),
            }
        }
        self.phases.end_ms = self.now_ms();
        Ended {
            outcome: if stopped.is_some() {
                Outcome::RolledBack
            } else {
                Outcome::Completed
            },
            reason: stopped,
            injected: true,
        }
    }

    fn refused(&mut self, reason: String) -> Ended {
        let now = self.now_ms();
        self.phases = Phases {
            injected_ms: now,
            lifted_ms: now,
            end_ms: now,
        };
        Ended {
            outcome: Outcome::Refused,
            reason: Some(reason),
            injected: false,
        }
    }

    fn publish(&self) {
        let Some(progress) = &self.progress else {
            return;
        };
        let now = self.now_ms();
        let probes = self
            .scenario
            .probes
            .iter()
            .zip(&self.samples)
            .map(|(p, s)| {
                let window = p.steady.window.as_secs_f64() * 1000.0;
                (
                    p.name.clone(),
                    measure::success(measure::between(s, now - window, now)),
                )
            })
            .collect();
        progress.send_replace(Progress {
            phase: self.phase,
            elapsed_ms: now as u64,
            total_ms: self.total.as_millis() as u64,
            faults_on: self
                .on_since
                .keys()
                .map(|(target, fault)| super::control::label(target.as_deref(), fault))
                .collect(),
            probes,
        });
    }

    fn finish(mut self, ended: Ended, found: Vec<Option<Durability>>) -> Report {
        self.phase = Phase::Done;
        self.publish();
        let end = self.phases.end_ms;
        let baseline_ms = self.scenario.baseline.as_secs_f64() * 1000.0;
        let probes: Vec<ProbeReport> = self
            .scenario
            .probes
            .iter()
            .zip(std::mem::take(&mut self.samples))
            .zip(found)
            .map(|((probe, mut samples), durability)| {
                samples.retain(|s| s.t_ms <= end);
                let baseline_success =
                    measure::success(measure::between(&samples, 0.0, baseline_ms));
                let (measures, verdict, reason) = if ended.injected {
                    let m = measure::measure(probe, &samples, &self.phases);
                    let (verdict, reason) = measure::judge(probe, &m);
                    // A lost recovery point fails the probe whatever else it showed.
                    match durability
                        .as_ref()
                        .and_then(|d| durability::judge(probe, d))
                    {
                        Some(why) => (Some(m), Some(Verdict::Failed), Some(why)),
                        None => (Some(m), Some(verdict), reason),
                    }
                } else {
                    (None, None, None)
                };
                ProbeReport {
                    name: probe.name.clone(),
                    probe: probe.clone(),
                    baseline_success,
                    measures,
                    verdict,
                    reason,
                    durability,
                    samples,
                }
            })
            .collect();
        let verdict = ended.injected.then(|| {
            let verdicts: Vec<Verdict> = probes.iter().filter_map(|p| p.verdict).collect();
            if verdicts.contains(&Verdict::Failed) {
                Verdict::Failed
            } else if verdicts.contains(&Verdict::DegradedAsPlanned) {
                Verdict::DegradedAsPlanned
            } else {
                Verdict::Passed
            }
        });
        Report {
            schema: SCHEMA.into(),
            drill: self.scenario.name.clone(),
            description: self.scenario.description.clone(),
            switchboard_version: env!("CARGO_PKG_VERSION").into(),
            control: self.controls.own().describe(),
            seed: self.seed,
            started_at: timestamp(self.started_at),
            outcome: ended.outcome,
            reason: ended.reason,
            verdict,
            baseline_ms,
            phases: self.phases,
            events: self.events,
            fault_windows: self.windows,
            probes,
            targets: self
                .controls
                .targets()
                .map(|(name, control)| TargetReport {
                    name: name.to_string(),
                    control: control.describe(),
                    lost: self.lost.get(&Some(name.to_string())).cloned(),
                })
                .collect(),
        }
    }
}
