//! Every change of state is an [`Event`] with a time and a source. Events go to the log, to
//! live subscribers (the SSE stream) and, when asked, to a JSON-lines file from which a drill
//! can be reconstructed afterwards.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::{broadcast, mpsc};

use crate::rules::Problem;

/// Who caused a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    /// The rules directory (start-up or a reload).
    File,
    /// A control API call.
    Api,
    /// A fault's time to live ran out.
    Ttl,
    /// A route's guard saw more errors than it allows.
    Guard,
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A new rule set from the files is in force.
    Reloaded {
        /// How many routes and faults it holds.
        routes: usize,
        /// How many faults it holds.
        faults: usize,
    },
    /// A reload was rejected; the previous rules stay in force.
    Rejected {
        /// Every problem, with `file:line:col`.
        problems: Vec<Problem>,
    },
    /// A fault appeared.
    FaultAdded {
        /// Its name.
        fault: String,
        /// Whether it is on.
        enabled: bool,
    },
    /// A fault was switched on.
    FaultEnabled {
        /// Its name.
        fault: String,
    },
    /// A fault was switched off.
    FaultDisabled {
        /// Its name.
        fault: String,
    },
    /// A fault's parameters, probability or direction changed.
    FaultChanged {
        /// Its name.
        fault: String,
    },
    /// A fault was removed.
    FaultRemoved {
        /// Its name.
        fault: String,
    },
    /// A fault switched itself off at the end of its time to live.
    FaultExpired {
        /// Its name.
        fault: String,
    },
    /// A route appeared or its listen address or upstream changed.
    RouteBound {
        /// Its name.
        route: String,
        /// Where it listens.
        listen: String,
        /// What it forwards to.
        upstream: String,
    },
    /// A route was removed.
    RouteRemoved {
        /// Its name.
        route: String,
    },
    /// The kill switch: every fault off, API-created faults removed, every route enabled.
    Reset {
        /// The faults that were on.
        turned_off: Vec<String>,
        /// The routes that were disabled.
        routes_enabled: Vec<String>,
    },
    /// A route was enabled (it listens again).
    RouteEnabled {
        /// Its name.
        route: String,
    },
    /// A route was disabled: it stopped listening and its connections were closed.
    RouteDisabled {
        /// Its name.
        route: String,
    },
    /// A route's guard tripped: its clients saw more errors than it allows, so every fault
    /// on it was switched off.
    Guarded {
        /// The route.
        route: String,
        /// The share of the window's outcomes that failed.
        error_rate: f64,
        /// What the guard allows.
        max_error_rate: f64,
        /// How many outcomes the rate is over.
        outcomes: u64,
        /// The window, as written (`30s`).
        window: String,
        /// The faults it switched off.
        lifted: Vec<String>,
    },
}

/// One change of state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// RFC 3339, UTC, milliseconds.
    pub at: String,
    /// Who caused it.
    pub source: EventSource,
    /// What it was.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Time as RFC 3339 with milliseconds, UTC.
pub fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// Where events go.
#[derive(Debug, Clone)]
pub struct EventBus {
    live: broadcast::Sender<Event>,
    recorder: Option<mpsc::UnboundedSender<Record>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// A bus with live subscribers only.
    pub fn new() -> Self {
        let (live, _) = broadcast::channel(1024);
        EventBus {
            live,
            recorder: None,
        }
    }

    /// A bus that also appends every event to `path` as a JSON line. The file is opened now,
    /// so a path that cannot be written is reported at start-up.
    pub async fn with_log(path: &Path) -> std::io::Result<Self> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(record(file, rx, path.to_path_buf()));
        let mut bus = Self::new();
        bus.recorder = Some(tx);
        Ok(bus)
    }

    /// Waits until every event published so far is in the log file (at once without one).
    /// The writer is a task of its own; a stopping process calls this before it exits, so the
    /// last events (the stop among them) are not lost with the runtime.
    pub async fn flush(&self) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        let (done, written) = tokio::sync::oneshot::channel();
        if recorder.send(Record::Flush(done)).is_ok() {
            let _ = written.await;
        }
    }

    /// Publishes one event from `source`.
    pub fn emit(&self, source: EventSource, kind: EventKind) {
        let event = Event {
            at: timestamp(SystemTime::now()),
            source,
            kind,
        };
        match &event.kind {
            EventKind::Rejected { problems } => {
                for p in problems {
                    tracing::error!(source = ?event.source, "rules rejected: {p}");
                }
            }
            kind => tracing::info!(source = ?event.source, event = ?kind, "change"),
        }
        if let Some(recorder) = &self.recorder {
            let _ = recorder.send(Record::Event(event.clone()));
        }
        // No subscriber is not an error.
        let _ = self.live.send(event);
    }

    /// Every event from now on. A subscriber that falls more than 1024 events behind skips.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.live.subscribe()
    }
}

/// What the log writer is asked to do.
enum Record {
    Event(Event),
    /// Answer once everything sent before is written.
    Flush(tokio::sync::oneshot::Sender<()>),
}

async fn record(mut file: tokio::fs::File, mut rx: mpsc::UnboundedReceiver<Record>, path: PathBuf) {
    while let Some(record) = rx.recv().await {
        let event = match record {
            Record::Event(event) => event,
            Record::Flush(done) => {
                let _ = done.send(());
                continue;
            }
        };
        let Ok(mut line) = serde_json::to_vec(&event) else {
            continue;
        };
        line.push(b'\n');
        let written = match file.write_all(&line).await {
            Ok(()) => file.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            tracing::error!(path = %path.display(), error = %e, "cannot append to the event log");
        }
    }
}
