//! Assembles a running Switchboard: the store, the bound routes, the counters, and the drain.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::proxy::{ProxyContext, ProxyError, RouteTable};
use crate::shutdown::Shutdown;
use crate::store::{RuleSet, Store};
use crate::telemetry::Metrics;

/// How to start.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Makes every random choice reproducible; drawn at random when absent.
    pub seed: Option<u64>,
}

/// A running Switchboard.
#[derive(Debug)]
pub struct Switchboard {
    ctx: ProxyContext,
    routes: Mutex<RouteTable>,
    shutdown: Shutdown,
}

/// Why a Switchboard could not start.
#[derive(Debug, thiserror::Error)]
#[error("{} route(s) could not be bound: {}", errors.len(), errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct StartError {
    /// One per route that failed.
    pub errors: Vec<ProxyError>,
}

impl Switchboard {
    /// Binds every route of `rules` and starts serving.
    pub async fn start(rules: RuleSet, config: Config) -> Result<Self, StartError> {
        let shutdown = Shutdown::new();
        let seed = config.seed.unwrap_or_else(rand::random);
        let ctx = ProxyContext {
            store: Store::new(rules),
            seed,
            metrics: Arc::new(Metrics::default()),
            tracker: shutdown.tracker().clone(),
            shutdown: shutdown.child(),
        };
        let mut routes = RouteTable::new();
        let errors = routes.sync(&ctx.store.current(), &ctx).await;
        if !errors.is_empty() {
            shutdown.trigger();
            return Err(StartError { errors });
        }
        Ok(Switchboard {
            ctx,
            routes: Mutex::new(routes),
            shutdown,
        })
    }

    /// The rule store: replacing its rule set changes faults on open connections.
    pub fn store(&self) -> &Store {
        &self.ctx.store
    }

    /// The counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.ctx.metrics
    }

    /// The seed in use.
    pub fn seed(&self) -> u64 {
        self.ctx.seed
    }

    /// Puts `rules` in force and rebinds the routes whose listen address changed. Routes
    /// that cannot be bound are returned; the rest of the change holds.
    pub async fn apply(&self, rules: RuleSet) -> Vec<ProxyError> {
        let mut routes = self.routes.lock().await;
        let rules = self.ctx.store.replace(rules);
        routes.sync(&rules, &self.ctx).await
    }

    /// The address `route` listens on.
    pub async fn route_addr(&self, route: &str) -> Option<SocketAddr> {
        self.routes.lock().await.local_addr(route)
    }

    /// Stops accepting, then waits up to `grace` for open connections. Returns whether all of
    /// them finished in time.
    pub async fn shutdown(self, grace: Duration) -> bool {
        drop(self.routes);
        self.shutdown.drain(grace).await
    }
}
