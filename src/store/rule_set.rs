//! An immutable, validated set of routes and faults, indexed by name so that every lookup and
//! every change costs time in proportion to what it touches, not to how many faults exist.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use super::overrides::{FaultMeta, Source};
use crate::rules::{Fault, Route};

/// Every route and fault in force at one moment. Built only from validated rules; never
/// changed in place: [`RuleSet::with_fault`] makes a new one that shares what did not change.
#[derive(Debug, Default, Clone)]
pub struct RuleSet {
    routes: Vec<Arc<Route>>,
    route_index: HashMap<Arc<str>, (usize, Source)>,
    faults: Vec<Arc<Fault>>,
    meta: Vec<FaultMeta>,
    /// Names and positions never change when one fault is replaced: shared between sets.
    fault_index: Arc<HashMap<Arc<str>, usize>>,
    by_route: HashMap<Arc<str>, Arc<Vec<Arc<Fault>>>>,
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
        for (i, (route, source)) in routes.into_iter().enumerate() {
            set.route_index
                .insert(Arc::from(route.name.as_str()), (i, source));
            set.routes.push(Arc::new(route));
        }
        let mut fault_index = HashMap::with_capacity(faults.len());
        let mut by_route: HashMap<Arc<str>, Vec<Arc<Fault>>> = HashMap::new();
        for (i, (fault, meta)) in faults.into_iter().enumerate() {
            let fault = Arc::new(fault);
            fault_index.insert(Arc::from(fault.name.as_str()), i);
            match by_route.get_mut(fault.route.as_str()) {
                Some(list) => list.push(Arc::clone(&fault)),
                None => {
                    by_route.insert(Arc::from(fault.route.as_str()), vec![Arc::clone(&fault)]);
                }
            }
            set.meta.push(meta);
            set.faults.push(fault);
        }
        set.fault_index = Arc::new(fault_index);
        set.by_route = by_route
            .into_iter()
            .map(|(route, list)| (route, Arc::new(list)))
            .collect();
        set
    }

    /// This set with the fault of the same name replaced by `fault` (same route), carrying
    /// `meta`. Only that fault's route list is copied; the rest is shared.
    pub(crate) fn with_fault(&self, fault: Fault, meta: FaultMeta) -> Option<RuleSet> {
        let &i = self.fault_index.get(fault.name.as_str())?;
        let old = &self.faults[i];
        if old.route != fault.route {
            return None;
        }
        let fault = Arc::new(fault);
        let mut next = self.clone();
        if let Some(list) = next.by_route.get_mut(fault.route.as_str()) {
            let list = Arc::make_mut(list);
            if let Some(slot) = list.iter_mut().find(|f| Arc::ptr_eq(f, old)) {
                *slot = Arc::clone(&fault);
            }
        }
        next.faults[i] = fault;
        next.meta[i] = meta;
        Some(next)
    }

    /// Routes, in load order.
    pub fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }

    /// A route by name.
    pub fn route(&self, name: &str) -> Option<&Arc<Route>> {
        self.route_index.get(name).map(|&(i, _)| &self.routes[i])
    }

    /// Where a route came from.
    pub fn route_source(&self, name: &str) -> Option<Source> {
        self.route_index.get(name).map(|&(_, source)| source)
    }

    /// Faults, files' first, in load order.
    pub fn faults(&self) -> &[Arc<Fault>] {
        &self.faults
    }

    /// A fault by name.
    pub fn fault(&self, name: &str) -> Option<&Arc<Fault>> {
        self.fault_index.get(name).map(|&i| &self.faults[i])
    }

    /// Where a fault came from and when it expires.
    pub fn meta(&self, name: &str) -> Option<FaultMeta> {
        self.fault_index.get(name).map(|&i| self.meta[i])
    }

    /// The earliest time an enabled fault expires.
    pub fn next_expiry(&self) -> Option<SystemTime> {
        self.faults
            .iter()
            .zip(&self.meta)
            .filter(|(f, _)| f.enabled)
            .filter_map(|(_, m)| m.expires_at)
            .min()
    }

    /// The faults attached to `route`, enabled or not, in order.
    pub fn faults_for(&self, route: &str) -> &[Arc<Fault>] {
        self.by_route.get(route).map_or(&[], |list| list.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::{FaultKind, Latency};
    use crate::rules::Direction;

    fn latency(name: &str, route: &str, ms: u64) -> Fault {
        Fault {
            name: name.into(),
            route: route.into(),
            enabled: true,
            probability: 1.0,
            direction: Direction::Downstream,
            kind: FaultKind::Latency(Latency { ms, jitter_ms: 0 }),
            when: None,
        }
    }

    #[test]
    fn replacing_one_fault_keeps_order_and_the_other_routes() {
        let set = RuleSet::new(
            vec![
                Route::tcp("a", "127.0.0.1:1", "h:1"),
                Route::tcp("b", "127.0.0.1:2", "h:2"),
            ],
            vec![
                latency("x", "a", 1),
                latency("y", "b", 2),
                latency("z", "a", 3),
            ],
        );
        let meta = FaultMeta {
            source: Source::Api,
            expires_at: None,
        };
        let next = set.with_fault(latency("x", "a", 9), meta).expect("known");
        let names: Vec<_> = next
            .faults_for("a")
            .iter()
            .map(|f| f.kind.clone())
            .collect();
        assert_eq!(
            names,
            vec![
                FaultKind::Latency(Latency {
                    ms: 9,
                    jitter_ms: 0
                }),
                FaultKind::Latency(Latency {
                    ms: 3,
                    jitter_ms: 0
                })
            ]
        );
        assert!(Arc::ptr_eq(
            &set.faults_for("b")[0],
            &next.faults_for("b")[0]
        ));
        assert_eq!(next.meta("x"), Some(meta));
        assert_eq!(
            set.fault("x").map(|f| f.kind.clone()),
            Some(FaultKind::Latency(Latency {
                ms: 1,
                jitter_ms: 0
            }))
        );
        assert!(
            set.with_fault(latency("x", "b", 9), meta).is_none(),
            "a move to another route takes the full path"
        );
        assert!(set.with_fault(latency("nope", "a", 9), meta).is_none());
    }
}
