//! Background work of a running Switchboard: reloading the rules directory when it changes,
//! and switching faults off when their time to live runs out.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::{ChangeError, Switchboard};
use crate::rules::{LoadOptions, Problem, RulesError, load_dir};
use tokio::sync::mpsc::UnboundedReceiver;

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
        let result = match loaded {
            Ok(files) if files == state.files && state.last_rejected.is_none() => {
                tracing::debug!("rules directory changed on disk but not in content");
                return Ok(());
            }
            Ok(files) => self.replace_files(&mut state, files).await,
            Err(e) => Err(ChangeError::Rules(e)),
        };
        match &result {
            Ok(()) => {
                state.last_reload = Some(SystemTime::now());
                state.last_rejected = None;
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
                state.last_rejected = Some(problems.clone());
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
            source: std::io::Error::other(join.to_string()),
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

/// Starts watching `dir` now, so that a change made as soon as start-up returns is seen, and
/// reloads after every burst of changes until shutdown.
pub(super) fn watch(app: &Switchboard, dir: &Path) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    match watch_dir(dir, tx) {
        Ok(watcher) => {
            tokio::spawn(watch_loop(app.clone(), watcher, rx));
        }
        Err(e) => {
            tracing::error!(dir = %dir.display(), error = %e, "cannot watch the rules directory; hot reload is off");
        }
    }
}

async fn watch_loop(app: Switchboard, _watcher: DirWatcher, mut rx: UnboundedReceiver<()>) {
    let stop = app.stopping();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            event = rx.recv() => if event.is_none() { return },
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
