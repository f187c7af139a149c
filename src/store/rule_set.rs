//! An immutable, validated set of routes and faults.

use std::collections::HashMap;
use std::sync::Arc;

use crate::rules::{Fault, Route};

/// Every route and fault in force at one moment. Built only from validated rules; never
/// changed in place.
#[derive(Debug, Default)]
pub struct RuleSet {
    routes: Vec<Arc<Route>>,
    faults: Vec<Arc<Fault>>,
    by_route: HashMap<String, Vec<Arc<Fault>>>,
}

impl RuleSet {
    /// Assembles already-validated routes and faults; fault order is kept per route.
    pub(crate) fn new(routes: Vec<Route>, faults: Vec<Fault>) -> Self {
        let faults: Vec<Arc<Fault>> = faults.into_iter().map(Arc::new).collect();
        let mut by_route: HashMap<String, Vec<Arc<Fault>>> = HashMap::new();
        for fault in &faults {
            by_route
                .entry(fault.route.clone())
                .or_default()
                .push(Arc::clone(fault));
        }
        RuleSet {
            routes: routes.into_iter().map(Arc::new).collect(),
            faults,
            by_route,
        }
    }

    /// Routes, in load order.
    pub fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }

    /// A route by name.
    pub fn route(&self, name: &str) -> Option<&Arc<Route>> {
        self.routes.iter().find(|r| r.name == name)
    }

    /// Faults, in load order.
    pub fn faults(&self) -> &[Arc<Fault>] {
        &self.faults
    }

    /// A fault by name.
    pub fn fault(&self, name: &str) -> Option<&Arc<Fault>> {
        self.faults.iter().find(|f| f.name == name)
    }

    /// The faults attached to `route`, enabled or not, in order.
    pub fn faults_for(&self, route: &str) -> &[Arc<Fault>] {
        self.by_route.get(route).map_or(&[], Vec::as_slice)
    }

    /// A copy of this set's routes and faults, for building the next one.
    pub fn to_parts(&self) -> (Vec<Route>, Vec<Fault>) {
        (
            self.routes.iter().map(|r| Route::clone(r)).collect(),
            self.faults.iter().map(|f| Fault::clone(f)).collect(),
        )
    }
}
