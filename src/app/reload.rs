//! Background work of a running Switchboard: reloading the rules directory when it changes,
//! and switching faults off when their time to live runs out.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::{ChangeError, Switchboard};
use crate::rules::{LoadOptions, Problem, RulesError, load_dir};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::store::{DirWatcher, watch_dir};
use crate::telemetry::{EventKind, EventSource};

/// Quiet time after the last file event before reloading: editors and ConfigMap swaps make
/// several events for one logical change.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// A directory that never goes quiet is still reloaded this often.
const MAX_DEBOUNCE: Duration = Duration::from_secs(1);

impl Switchboard {
    /// Reads the rules directory again and puts it in force. If anything is invalid nothing
    /// changes: the error is logged, counted and kept for `/v1/status`.
    pub async fn reload(&self) -> Result<(), ChangeError> {
        let dir = self
            .inner
            .rules_dir
            .clone()
            .ok_or(ChangeError::NoRulesDir)?;
        let loaded = read_dir(dir.clone(), self.inner.load).await;
        let mut state = self.inner.state.lock().await;
        let rejected_before = self.health().last_rejected.is_some();
        let result = match loaded {
            Ok(files) if files == state.files && !rejected_before => {
                tracing::debug!("rules directory changed on disk but not in content");
                return Ok(());
            }
            Ok(files) => self.replace_files(&mut state, files).await,
            Err(e) => Err(ChangeError::Rules(e)),
        };
        match &result {
            Ok(()) => {
                {
                    let mut health = self.health();
                    health.last_reload = Some(SystemTime::now());
                    health.last_rejected = None;
                }
                self.metrics().reload(true);
                let rules = self.store().current();
                self.inner.events.emit(
                    EventSource::File,
                    EventKind::Reloaded {
                        routes: rules.routes().len(),
                        faults: rules.faults().len(),
                    },
                );
            }
            Err(e) => {
                let problems = problems_of(e, &dir);
                self.health().last_rejected = Some(problems.clone());
                self.metrics().reload(false);
                self.inner
                    .events
                    .emit(EventSource::File, EventKind::Rejected { problems });
            }
        }
        result
    }
}

async fn read_dir(
    dir: PathBuf,
    options: LoadOptions,
) -> Result<crate::store::FileRules, RulesError> {
    // Reading files is blocking I/O; keep it off the runtime's workers.
    let blocking = tokio::task::spawn_blocking(move || load_dir(&dir, options));
    match blocking.await {
        Ok(result) => result,
        Err(join) => Err(RulesError::Io {
            path: PathBuf::new(),
            reason: std::io::Error::other(join.to_string()),
        }),
    }
}

/// The problems of a rejected reload, each with a place; failures that have no line in a
/// file (a route that cannot bind) are reported against the directory.
fn problems_of(error: &ChangeError, dir: &Path) -> Vec<Problem> {
    match error {
        ChangeError::Rules(e) if !e.problems().is_empty() => e.problems().to_vec(),
        other => vec![Problem {
            file: dir.to_path_buf(),
            line: 0,
            col: 0,
            message: other.to_string(),
        }],
    }
}

/// How often the watch checks that the directory it watches is still the one at its path.
/// A deleted directory takes its inotify watch with it, and a new directory (or a new mount)
/// at the same path is a different one: only looking again finds it.
const REARM_CHECK: Duration = Duration::from_millis(500);

/// Which directory is at a path: its device and inode.
fn dir_identity(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir)
        .ok()
        .filter(std::fs::Metadata::is_dir)
        .map(|m| (m.dev(), m.ino()))
}

/// A watch on one directory, and which directory it was.
struct Armed {
    _watcher: DirWatcher,
    identity: Option<(u64, u64)>,
}

fn arm(dir: &Path, tx: &UnboundedSender<()>) -> Result<Armed, String> {
    let identity = dir_identity(dir);
    match watch_dir(dir, tx.clone()) {
        Ok(watcher) => Ok(Armed {
            _watcher: watcher,
            identity,
        }),
        Err(e) => Err(format!(
            "not watching {}: {e}; hot reload resumes when it can be watched",
            dir.display()
        )),
    }
}

/// Starts watching `dir` now, so that a change made as soon as start-up returns is seen, and
/// reloads after every burst of changes until shutdown. The watch is re-armed whenever the
/// directory is deleted and made again, or replaced by another.
pub(super) fn watch(app: &Switchboard, dir: &Path) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let armed = match arm(dir, &tx) {
        Ok(armed) => Some(armed),
        Err(problem) => {
            tracing::error!("{problem}");
            app.health().watch_problem = Some(problem);
            None
        }
    };
    tokio::spawn(watch_loop(app.clone(), dir.to_path_buf(), armed, tx, rx));
}

async fn watch_loop(
    app: Switchboard,
    dir: PathBuf,
    mut armed: Option<Armed>,
    tx: UnboundedSender<()>,
    mut rx: UnboundedReceiver<()>,
) {
    let stop = app.stopping();
    let mut check = tokio::time::interval(REARM_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            event = rx.recv() => if event.is_none() { return },
            _ = check.tick() => {
                // A stat, off the runtime's workers like every other file access here.
                let probe = dir.clone();
                let now = tokio::task::spawn_blocking(move || dir_identity(&probe))
                    .await
                    .ok()
                    .flatten();
                let current = armed.as_ref().and_then(|a| a.identity);
                if now == current && armed.is_some() {
                    continue;
                }
                armed = rearm(&app, &dir, &tx, now);
                if armed.is_none() || now.is_none() {
                    continue;
                }
                // A new directory: what is in it now was never seen. Load it.
            }
        }
        let burst_start = Instant::now();
        loop {
            let quiet = tokio::time::timeout(DEBOUNCE, rx.recv()).await;
            match quiet {
                Ok(Some(())) if burst_start.elapsed() < MAX_DEBOUNCE => continue,
                Ok(None) => return,
                _ => break,
            }
        }
        // A rejected reload is reported by `reload` itself.
        let _ = app.reload().await;
    }
}

/// Watches `dir` anew after it disappeared or was replaced; says so in the log and status.
fn rearm(
    app: &Switchboard,
    dir: &Path,
    tx: &UnboundedSender<()>,
    identity: Option<(u64, u64)>,
) -> Option<Armed> {
    if identity.is_none() {
        let problem = format!(
            "the rules directory {} is gone; the rules in force stay, and hot reload resumes when it is back",
            dir.display()
        );
        let mut health = app.health();
        if health.watch_problem.as_ref() != Some(&problem) {
            tracing::warn!("{problem}");
            health.watch_problem = Some(problem);
        }
        return None;
    }
    match arm(dir, tx) {
        Ok(armed) => {
            tracing::info!(dir = %dir.display(), "the rules directory is back (or was replaced); watching it again");
            app.health().watch_problem = None;
            Some(armed)
        }
        Err(problem) => {
            let mut health = app.health();
            if health.watch_problem.as_ref() != Some(&problem) {
                tracing::warn!("{problem}");
                health.watch_problem = Some(problem);
            }
            None
        }
    }
}

/// Switches faults off when their time to live runs out, until shutdown.
pub(super) async fn expire_loop(app: Switchboard) {
    let stop = app.stopping();
    loop {
        let next = app.store().current().next_expiry();
        let wait = next.map(|at| {
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        });
        let sleep = async {
            match wait {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = app.inner.expiry_changed.notified() => {}
            () = sleep => app.expire_due().await,
        }
    }
}
