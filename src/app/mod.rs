//! Assembles a running Switchboard (store, bound routes, metrics, events, background tasks)
//! and is the one place where the rule set changes: every change, from a file or an API call,
//! goes through [`Switchboard`] under one lock, is validated whole, and is swapped in atomically.

mod edits;
mod error;
mod guard;
mod reach;
mod reload;
mod routes;
mod status;

pub use crate::fault_json::FaultUpdate;
pub use edits::FaultInfo;
pub use error::ChangeError;
pub use guard::{GuardInfo, Tally, Trip};
pub use reach::{AddrRule, AddrRuleError, RouteReach};
pub use routes::RouteUpdate;
pub use status::{RouteInfo, Status};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{Mutex, Notify};

use crate::proxy::{ProxyContext, ProxyError, RouteTable};
use crate::rules::{LoadOptions, Problem};
use crate::shutdown::Shutdown;
use crate::store::{FileRules, Overrides, Store};
use crate::telemetry::{EventBus, EventKind, EventSource, Metrics};

/// How to start.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Makes every random choice reproducible; drawn at random when absent.
    pub seed: Option<u64>,
    /// The directory the rules came from; watched and reloaded when given.
    pub rules_dir: Option<PathBuf>,
    /// Where events go.
    pub events: EventBus,
    /// How reloads read the directory. Files users write keep the default; tests that must
    /// not pick fixed ports allow port 0.
    pub load: LoadOptions,
    /// What routes created through the API may bind and dial.
    pub reach: RouteReach,
}

/// A running Switchboard. Cloning gives another handle on the same one.
#[derive(Debug, Clone)]
pub struct Switchboard {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ctx: ProxyContext,
    events: EventBus,
    state: Mutex<State>,
    health: std::sync::Mutex<RulesHealth>,
    shutdown: Shutdown,
    started: SystemTime,
    rules_dir: Option<PathBuf>,
    load: LoadOptions,
    expiry_changed: Notify,
    reach: RouteReach,
    drills: crate::drill::registry::Registry,
    /// Where routes listen, read without taking `state` (which a change holds while it binds).
    addrs: crate::proxy::BoundAddrs,
    /// Each guard's rate and last trip, as the guard task last saw them.
    guards: std::sync::Mutex<Vec<GuardInfo>>,
}

#[derive(Debug)]
struct State {
    files: FileRules,
    overrides: Overrides,
    routes: RouteTable,
}

/// How the rules directory is doing: read by `/v1/status` without waiting for a change in
/// progress, so it lives outside [`State`]'s lock.
#[derive(Debug, Default)]
struct RulesHealth {
    last_reload: Option<SystemTime>,
    last_rejected: Option<Vec<Problem>>,
    /// Why hot reload is not watching right now (the directory is gone, say); None while it is.
    watch_problem: Option<String>,
}

/// Why a Switchboard could not start.
#[derive(Debug, thiserror::Error)]
#[error("{} route(s) could not be bound: {}", errors.len(), errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct StartError {
    /// One per route that failed.
    pub errors: Vec<ProxyError>,
}

impl Switchboard {
    /// Binds every route of `files` and starts serving; watches `config.rules_dir` if given.
    pub async fn start(files: FileRules, config: Config) -> Result<Self, StartError> {
        let shutdown = Shutdown::new();
        let seed = config.seed.unwrap_or_else(rand::random);
        let mut overrides = Overrides::default();
        let rules = overrides.merge(&files);
        let ctx = ProxyContext {
            store: Store::new(rules),
            seed,
            metrics: Arc::new(Metrics::new()),
            tracker: shutdown.tracker().clone(),
            shutdown: shutdown.child(),
            abort: shutdown.abort_token(),
            caps: Default::default(),
        };
        let mut routes = RouteTable::new();
        let current = ctx.store.current();
        let prepared = routes
            .prepare(&current, Vec::new())
            .await
            .map_err(|errors| StartError { errors })?;
        routes.commit(prepared, &current, &ctx).await;
        config.events.emit(
            EventSource::File,
            EventKind::Reloaded {
                routes: current.routes().len(),
                faults: current.faults().len(),
            },
        );
        let addrs = routes.addrs();
        let app = Switchboard {
            inner: Arc::new(Inner {
                addrs,
                ctx,
                events: config.events,
                state: Mutex::new(State {
                    files,
                    overrides,
                    routes,
                }),
                health: std::sync::Mutex::new(RulesHealth {
                    last_reload: Some(SystemTime::now()),
                    ..RulesHealth::default()
                }),
                shutdown,
                started: SystemTime::now(),
                rules_dir: config.rules_dir,
                load: config.load,
                expiry_changed: Notify::new(),
                reach: config.reach,
                drills: Default::default(),
                guards: Default::default(),
            }),
        };
        tokio::spawn(reload::expire_loop(app.clone()));
        tokio::spawn(guard::guard_loop(app.clone()));
        if let Some(dir) = &app.inner.rules_dir {
            reload::watch(&app, dir);
        }
        Ok(app)
    }

    /// The rule store: every connection reads the rules in force from it.
    pub fn store(&self) -> &Store {
        &self.inner.ctx.store
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.ctx.metrics
    }

    /// Where events go.
    pub fn events(&self) -> &EventBus {
        &self.inner.events
    }

    /// The watched rules directory, if any (its `drills/` holds the drills the page lists).
    pub fn rules_dir(&self) -> Option<&std::path::Path> {
        self.inner.rules_dir.as_deref()
    }

    /// Drills this process runs for `POST /v1/drills`.
    pub fn drills(&self) -> &crate::drill::registry::Registry {
        &self.inner.drills
    }

    /// The seed in use.
    pub fn seed(&self) -> u64 {
        self.inner.ctx.seed
    }

    /// The address `route` listens on.
    pub async fn route_addr(&self, route: &str) -> Option<SocketAddr> {
        self.inner.addrs.get(route)
    }

    /// Fires when the process is stopping, for tasks that serve beside the routes.
    pub fn stopping(&self) -> tokio_util::sync::CancellationToken {
        self.inner.shutdown.child()
    }

    /// Replaces the file rules with `files`, as a reload would (tests and embedders use this
    /// to change rules without a directory). Run-time changes are re-applied on top.
    pub async fn apply_files(&self, files: FileRules) -> Result<(), ChangeError> {
        let mut state = self.inner.state.lock().await;
        self.replace_files(&mut state, files).await
    }

    fn health(&self) -> std::sync::MutexGuard<'_, RulesHealth> {
        self.inner
            .health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Rolls running drills back, stops accepting, then waits up to `grace` for open
    /// connections; those still open then are reset. Returns how many were. Every event
    /// published until then is in the event log when this returns.
    pub async fn shutdown(&self, grace: Duration) -> usize {
        // Drills first, while the routes they act on are still here to be put back.
        if !self
            .drills()
            .stop_all("Switchboard is stopping", grace)
            .await
        {
            tracing::warn!(
                ?grace,
                "a drill was still rolling back when the grace period ran out"
            );
        }
        self.inner.state.lock().await.routes.clear().await;
        let reset = self.inner.shutdown.drain(grace).await;
        self.events().flush().await;
        reset
    }
}
