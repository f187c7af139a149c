//! The set of bound routes, kept in step with the rule set: only routes whose listen address
//! changed are rebound.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ProxyError;
use super::tcp::{self, RouteHandle};
use crate::store::{RuleSet, Store};
use crate::telemetry::Metrics;

/// What every connection task needs, handed down explicitly.
#[derive(Debug, Clone)]
pub struct ProxyContext {
    /// The rules in force.
    pub store: Store,
    /// The seed every random choice derives from.
    pub seed: u64,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Connections register here so shutdown can drain them.
    pub tracker: TaskTracker,
    /// Fires when the process stops.
    pub shutdown: CancellationToken,
}

/// The bound routes by name.
#[derive(Debug, Default)]
pub struct RouteTable {
    bound: HashMap<String, RouteHandle>,
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds new routes, rebinds those whose listen address changed and unbinds removed ones.
    /// Every route that could be bound is; the failures are returned.
    pub async fn sync(&mut self, rules: &RuleSet, ctx: &ProxyContext) -> Vec<ProxyError> {
        self.bound.retain(|name, handle| {
            rules
                .route(name)
                .is_some_and(|r| r.listen == handle.listen())
        });
        let mut errors = Vec::new();
        for route in rules.routes() {
            if self.bound.contains_key(&route.name) {
                continue;
            }
            match tcp::bind(route, ctx.clone()).await {
                Ok(handle) => {
                    self.bound.insert(route.name.clone(), handle);
                }
                Err(e) => errors.push(e),
            }
        }
        errors
    }

    /// The address `route` listens on.
    pub fn local_addr(&self, route: &str) -> Option<SocketAddr> {
        self.bound.get(route).map(RouteHandle::local_addr)
    }
}
