//! An immutable, validated set of routes and faults.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use super::overrides::{FaultMeta, Source};
use crate::rules::{Fault, Route};

/// Every route and fault in force at one moment. Built only from validated rules; never
/// changed in place.
#[derive(Debug, Default)]
pub struct RuleSet {
    routes: Vec<Arc<Route>>,
    route_sources: HashMap<String, Source>,
    faults: Vec<Arc<Fault>>,
    meta: HashMap<String, FaultMeta>,
    by_route: HashMap<String, Vec<Arc<Fault>>>,
}

impl RuleSet {
    /// Assembles already-validated rules from files; fault order is kept per route.
    #[cfg(test)]
    pub(crate) fn new(routes: Vec<Route>, faults: Vec<Fault>) -> Self {
        let file = FaultMeta {
            source: Source::File,
            expires_at: None,
        };
        Self::with_sources(
            routes.into_iter().map(|r| (r, Source::File)).collect(),
            faults.into_iter().map(|f| (f, file)).collect(),
        )
    }

    /// Assembles already-validated rules, each with where it came from.
    pub(crate) fn with_sources(
        routes: Vec<(Route, Source)>,
        faults: Vec<(Fault, FaultMeta)>,
    ) -> Self {
        let mut set = RuleSet::default();
        for (route, source) in routes {
            set.route_sources.insert(route.name.clone(), source);
            set.routes.push(Arc::new(route));
        }
        for (fault, meta) in faults {
            let fault = Arc::new(fault);
            set.meta.insert(fault.name.clone(), meta);
            set.by_route
                .entry(fault.route.clone())
                .or_default()
                .push(Arc::clone(&fault));
            set.faults.push(fault);
        }
        set
    }

    /// Routes, in load order.
    pub fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }

    /// A route by name.
    pub fn route(&self, name: &str) -> Option<&Arc<Route>> {
        self.routes.iter().find(|r| r.name == name)
    }

    /// Where a route came from.
    pub fn route_source(&self, name: &str) -> Option<Source> {
        self.route_sources.get(name).copied()
    }

    /// Faults, files' first, in load order.
    pub fn faults(&self) -> &[Arc<Fault>] {
        &self.faults
    }

    /// A fault by name.
    pub fn fault(&self, name: &str) -> Option<&Arc<Fault>> {
        self.faults.iter().find(|f| f.name == name)
    }

    /// Where a fault came from and when it expires.
    pub fn meta(&self, name: &str) -> Option<FaultMeta> {
        self.meta.get(name).copied()
    }

    /// The earliest time an enabled fault expires.
    pub fn next_expiry(&self) -> Option<SystemTime> {
        self.faults
            .iter()
            .filter(|f| f.enabled)
            .filter_map(|f| self.meta.get(&f.name)?.expires_at)
            .min()
    }

    /// The faults attached to `route`, enabled or not, in order.
    pub fn faults_for(&self, route: &str) -> &[Arc<Fault>] {
        self.by_route.get(route).map_or(&[], Vec::as_slice)
    }
}
