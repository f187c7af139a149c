//! Drills the server runs on behalf of a controller (`POST /v1/drills`). Each holds a lease
//! that its controller renews; if the controller disappears the lease runs out and the drill
//! is rolled back, so a killed CLI never leaves faults behind.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

use super::control::Control;
use super::report::Report;
use super::runner::{self, Phase, Progress};
use super::scenario::Scenario;
use crate::Switchboard;

/// Finished drills kept for their reports.
const KEEP_FINISHED: usize = 16;
/// How often the lease is looked at.
const LEASE_CHECK: Duration = Duration::from_millis(100);

/// The drills of one Switchboard.
#[derive(Debug, Default)]
pub struct Registry {
    drills: Mutex<Vec<Arc<Entry>>>,
    next: std::sync::atomic::AtomicU64,
    /// The drills' tasks, so that a stopping Switchboard can wait for their rollback.
    tasks: tokio_util::task::TaskTracker,
}

#[derive(Debug)]
struct Entry {
    id: String,
    drill: String,
    lease: Duration,
    renewed: Mutex<Instant>,
    stop: watch::Sender<Option<String>>,
    progress: watch::Receiver<Progress>,
    result: Mutex<Option<Result<Report, String>>>,
}

/// A drill as `GET /v1/drills/{id}` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillStatus {
    /// Its id.
    pub id: String,
    /// The drill's name.
    pub drill: String,
    /// `running` or `finished`.
    pub state: String,
    /// The lease, in milliseconds.
    pub lease_ms: u64,
    /// Where it is.
    pub progress: Progress,
    /// The report, once finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
    /// Why it could not run, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Why a drill request was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No drill has that id.
    #[error("no drill with id {0:?}")]
    Unknown(String),
    /// Only one drill runs at a time: two would fight over the same faults.
    #[error("drill {drill:?} ({id}) is running; stop it or wait for it to finish")]
    Busy {
        /// The running drill's id.
        id: String,
        /// Its name.
        drill: String,
    },
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Entry {
    fn finished(&self) -> bool {
        lock(&self.result).is_some()
    }

    fn status(&self) -> DrillStatus {
        let result = lock(&self.result).clone();
        DrillStatus {
            id: self.id.clone(),
            drill: self.drill.clone(),
            state: if result.is_some() {
                "finished"
            } else {
                "running"
            }
            .into(),
            lease_ms: self.lease.as_millis() as u64,
            progress: self.progress.borrow().clone(),
            error: result.as_ref().and_then(|r| r.as_ref().err().cloned()),
            report: result.and_then(Result::ok),
        }
    }
}

impl Registry {
    /// Starts `scenario` against `app`, held by a lease of `lease`.
    pub fn start(
        &self,
        app: &Switchboard,
        scenario: Scenario,
        lease: Duration,
    ) -> Result<DrillStatus, RegistryError> {
        self.start_with(
            app,
            scenario,
            lease,
            |scenario, control, stop, progress| async move {
                runner::run(&scenario, &control, stop, Some(progress))
                    .await
                    .map_err(|e| e.to_string())
            },
        )
    }

    /// [`Registry::start`] with the drill's run given (tests give one that fails).
    fn start_with<F, Fut>(
        &self,
        app: &Switchboard,
        scenario: Scenario,
        lease: Duration,
        run: F,
    ) -> Result<DrillStatus, RegistryError>
    where
        F: FnOnce(
                Scenario,
                Control,
                watch::Receiver<Option<String>>,
                watch::Sender<Progress>,
            ) -> Fut
            + Send
            + 'static,
        Fut: std::future::Future<Output = Result<Report, String>> + Send + 'static,
    {
        let mut drills = lock(&self.drills);
        if let Some(running) = drills.iter().find(|e| !e.finished()) {
            return Err(RegistryError::Busy {
                id: running.id.clone(),
                drill: running.drill.clone(),
            });
        }
        let number = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let (stop, stop_rx) = watch::channel(None);
        let (progress_tx, progress) = watch::channel(Progress {
            phase: Phase::Baseline,
            elapsed_ms: 0,
            total_ms: 0,
            faults_on: Vec::new(),
            probes: Vec::new(),
        });
        let entry = Arc::new(Entry {
            id: format!("d{number}"),
            drill: scenario.name.clone(),
            lease,
            renewed: Mutex::new(Instant::now()),
            stop,
            progress,
            result: Mutex::new(None),
        });
        drills.push(entry.clone());
        let finished = drills.iter().filter(|e| e.finished()).count();
        if finished > KEEP_FINISHED {
            let mut extra = finished - KEEP_FINISHED;
            drills.retain(|e| {
                let drop_it = extra > 0 && e.finished();
                extra -= usize::from(drop_it);
                !drop_it
            });
        }
        let control = Control::Local(app.clone());
        let watched = entry.clone();
        let app = app.clone();
        // What the drill may touch, as it is now: if the runner dies before its own restore,
        // this puts it back.
        let before = Snapshot::take(&app, &scenario);
        self.tasks.spawn(async move {
            let watchdog = tokio::spawn(watch_lease(watched.clone()));
            let result = match tokio::spawn(run(scenario, control, stop_rx, progress_tx)).await {
                Ok(result) => result,
                Err(failure) => {
                    tracing::error!(error = %failure, "a drill task failed; rolling its faults back");
                    before.restore(&app).await;
                    Err(format!(
                        "the drill task failed ({failure}); every fault it touched was put back"
                    ))
                }
            };
            watchdog.abort();
            *lock(&watched.result) = Some(result);
        });
        Ok(entry.status())
    }

    /// Rolls every running drill back, then waits up to `grace` for their rollbacks to end.
    /// Returns whether they all did.
    pub async fn stop_all(&self, reason: &str, grace: Duration) -> bool {
        for entry in lock(&self.drills).iter().filter(|e| !e.finished()) {
            entry.stop.send_replace(Some(reason.to_string()));
        }
        self.tasks.close();
        tokio::time::timeout(grace, self.tasks.wait()).await.is_ok()
    }

    /// Renews a drill's lease.
    pub fn renew(&self, id: &str) -> Result<DrillStatus, RegistryError> {
        let entry = self.find(id)?;
        *lock(&entry.renewed) = Instant::now();
        Ok(entry.status())
    }

    /// Rolls a running drill back at once.
    pub fn stop(&self, id: &str, reason: &str) -> Result<DrillStatus, RegistryError> {
        let entry = self.find(id)?;
        entry.stop.send_replace(Some(reason.to_string()));
        Ok(entry.status())
    }

    /// One drill.
    pub fn status(&self, id: &str) -> Result<DrillStatus, RegistryError> {
        Ok(self.find(id)?.status())
    }

    /// Every drill kept, oldest first.
    pub fn list(&self) -> Vec<DrillStatus> {
        lock(&self.drills).iter().map(|e| e.status()).collect()
    }

    fn find(&self, id: &str) -> Result<Arc<Entry>, RegistryError> {
        lock(&self.drills)
            .iter()
            .find(|e| e.id == id)
            .cloned()
            .ok_or_else(|| RegistryError::Unknown(id.to_string()))
    }
}

/// The faults a drill names, as they were before it started.
struct Snapshot {
    existing: Vec<crate::app::FaultInfo>,
    added: Vec<String>,
}

impl Snapshot {
    fn take(app: &Switchboard, scenario: &Scenario) -> Self {
        use super::scenario::Action;
        let mut existing = Vec::new();
        let mut added = Vec::new();
        for step in &scenario.steps {
            let name = match &step.action {
                // A name already in use is not the drill's to remove.
                Action::Add(fault) if app.fault(&fault.name).is_err() => {
                    added.push(fault.name.clone());
                    continue;
                }
                Action::Add(_) => continue,
                Action::Enable(f) | Action::Disable(f) => f,
                Action::Patch { fault, .. }
                | Action::Ramp { fault, .. }
                | Action::Flap { fault, .. } => fault,
                Action::Hold(_) => continue,
            };
            if let Ok(info) = app.fault(name)
                && !existing
                    .iter()
                    .any(|e: &crate::app::FaultInfo| e.fault.name == *name)
            {
                existing.push(info);
            }
        }
        Snapshot { existing, added }
    }

    async fn restore(&self, app: &Switchboard) {
        for name in &self.added {
            let _ = app.remove_fault(name).await;
        }
        for info in &self.existing {
            let f = &info.fault;
            let update = crate::app::FaultUpdate {
                enabled: Some(f.enabled),
                probability: Some(f.probability),
                direction: Some(f.direction),
                kind: Some(f.kind.clone()),
                max_active: Some(f.max_active),
                ttl: Some(None),
            };
            if let Err(e) = app.update_fault(&f.name, update).await {
                tracing::error!(fault = %f.name, error = %e, "could not put a fault back");
            }
        }
    }
}

async fn watch_lease(entry: Arc<Entry>) {
    let mut tick = tokio::time::interval(LEASE_CHECK);
    loop {
        tick.tick().await;
        let since = lock(&entry.renewed).elapsed();
        if since > entry.lease {
            entry.stop.send_replace(Some(format!(
                "the lease expired: its controller did not renew it for {}",
                humantime::format_duration(Duration::from_millis(since.as_millis() as u64))
            )));
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use crate::app::FaultUpdate;
    use crate::rules::{LoadOptions, load_texts};

    const RULES: &str = r#"(routes: [(name: "r", protocol: Tcp, listen: "127.0.0.1:0", upstream: "127.0.0.1:1")],
        faults: [(name: "slow", route: "r", enabled: false, kind: Latency(ms: 1))])"#;

    const DRILL: &str = r#"(name: "d", probes: [(name: "p", check: Tcp(addr: "127.0.0.1:1"))],
        steps: [(at: "0s", action: Enable("slow")),
                (at: "1s", action: Add(name: "extra", route: "r", kind: Latency(ms: 2)))])"#;

    #[tokio::test]
    async fn a_drill_task_that_panics_ends_failed_puts_faults_back_and_frees_the_registry() {
        let load = LoadOptions {
            allow_ephemeral_listen: true,
        };
        let files = load_texts(&[("t.ron".into(), RULES.into())], load).expect("rules");
        let app = Switchboard::start(files, Config::default())
            .await
            .expect("start");
        let scenario =
            super::super::load::parse(std::path::Path::new("d.ron"), DRILL).expect("drill");
        let registry = Registry::default();
        let touched = app.clone();
        let started = registry
            .start_with(
                &app,
                scenario.clone(),
                Duration::from_secs(60),
                move |_, _, _, _| async move {
                    // Half-way through its steps, as a bug would leave it.
                    let on = FaultUpdate {
                        enabled: Some(true),
                        ..FaultUpdate::default()
                    };
                    touched.update_fault("slow", on).await.expect("enable");
                    let extra = crate::rules::Fault {
                        name: "extra".into(),
                        ..(**touched.store().current().fault("slow").expect("slow")).clone()
                    };
                    touched.create_fault(extra, None).await.expect("add");
                    panic!("a bug in the runner");
                },
            )
            .expect("starts");
        let id = started.id;
        let deadline = Instant::now() + Duration::from_secs(10);
        while registry.status(&id).expect("known").state != "finished" {
            assert!(Instant::now() < deadline, "the drill never ended");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let status = registry.status(&id).expect("known");
        assert!(
            status
                .error
                .as_deref()
                .is_some_and(|e| e.contains("failed")),
            "{status:?}"
        );
        assert!(
            !app.fault("slow").expect("slow").fault.enabled,
            "slow was left on"
        );
        assert!(
            app.fault("extra").is_err(),
            "the added fault was left behind"
        );
        registry
            .start(&app, scenario, Duration::from_secs(60))
            .map(|s| registry.stop(&s.id, "test over"))
            .expect("the next drill may start")
            .expect("stopped");
    }
}
