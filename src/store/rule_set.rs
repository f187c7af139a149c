//! An immutable, validated set of routes and faults, indexed by name so that every lookup and
//! every change costs time in proportion to what it touches, not to how many faults exist.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use super::chunked::Chunked;
use super::overrides::{FaultMeta, Source};
use super::request_index::{self, RequestFault};
use crate::rules::{Fault, Route};

/// Every route and fault in force at one moment. Built only from validated rules; never
/// changed in place: [`RuleSet::with_fault`] makes a new one that shares what did not change.
#[derive(Debug, Default, Clone)]
pub struct RuleSet {
    routes: Vec<Arc<Route>>,
    route_index: HashMap<Arc<str>, (usize, Source)>,
    faults: Chunked<Arc<Fault>>,
    meta: Chunked<FaultMeta>,
    /// Names and positions never change when a fault is replaced: shared between sets.
    fault_index: Arc<HashMap<Arc<str>, usize>>,
    by_route: HashMap<Arc<str>, Chunked<Arc<Fault>>>,
    /// Each fault's position in its route's list, by the fault's position.
    route_pos: Arc<Vec<usize>>,
    /// How many enabled faults carry an expiry: with none (the usual case) the expiry task
    /// learns so without a scan.
    expiring: usize,
    /// Each route's faults as HTTP requests meet them, built on the route's first request.
    /// A change starts afresh only the lists of the routes it touched, so the work after a
    /// change is the size of that route, not of the whole set.
    request_faults: HashMap<Arc<str>, Arc<OnceLock<Vec<RequestFault>>>>,
}

fn expires(fault: &Fault, meta: &FaultMeta) -> bool {
    fault.enabled && meta.expires_at.is_some()
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
        let mut route_pos = Vec::with_capacity(faults.len());
        for (i, (fault, meta)) in faults.into_iter().enumerate() {
            let fault = Arc::new(fault);
            fault_index.insert(Arc::from(fault.name.as_str()), i);
            set.expiring += usize::from(expires(&fault, &meta));
            let list = match set.by_route.get_mut(fault.route.as_str()) {
                Some(list) => list,
                None => set
                    .by_route
                    .entry(Arc::from(fault.route.as_str()))
                    .or_default(),
            };
            route_pos.push(list.len());
            list.push(Arc::clone(&fault));
            set.meta.push(meta);
            set.faults.push(fault);
        }
        set.fault_index = Arc::new(fault_index);
        set.route_pos = Arc::new(route_pos);
        set.request_faults = set
            .by_route
            .keys()
            .map(|route| (Arc::clone(route), Arc::default()))
            .collect();
        set
    }

    /// This set with the fault of the same name replaced by `fault` (same route), carrying
    /// `meta`. Only that fault's route list is copied; the rest is shared.
    pub(crate) fn with_fault(&self, fault: Fault, meta: FaultMeta) -> Option<RuleSet> {
        self.with_faults(vec![(fault, meta)])
    }

    /// This set with each fault replaced by the one of the same name given (on the same
    /// route), copying only the chunks they are in. None if a name is unknown or a fault
    /// would move to another route.
    pub(crate) fn with_faults(&self, changes: Vec<(Fault, FaultMeta)>) -> Option<RuleSet> {
        let mut next = self.clone();
        for (fault, meta) in changes {
            let &i = self.fault_index.get(fault.name.as_str())?;
            let old = next.faults.get(i)?;
            if old.route != fault.route {
                return None;
            }
            let old_meta = next.meta.get(i)?;
            next.expiring -= usize::from(expires(old, old_meta));
            next.expiring += usize::from(expires(&fault, &meta));
            let fault = Arc::new(fault);
            let pos = *self.route_pos.get(i)?;
            next.by_route
                .get_mut(fault.route.as_str())?
                .set(pos, Arc::clone(&fault));
            next.request_faults
                .insert(Arc::from(fault.route.as_str()), Arc::default());
            next.faults.set(i, fault);
            next.meta.set(i, meta);
        }
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
    pub fn faults(&self) -> &Chunked<Arc<Fault>> {
        &self.faults
    }

    /// A fault by name.
    pub fn fault(&self, name: &str) -> Option<&Arc<Fault>> {
        self.fault_index.get(name).and_then(|&i| self.faults.get(i))
    }

    /// Where a fault came from and when it expires.
    pub fn meta(&self, name: &str) -> Option<FaultMeta> {
        self.fault_index
            .get(name)
            .and_then(|&i| self.meta.get(i))
            .copied()
    }

    /// The earliest time an enabled fault expires.
    pub fn next_expiry(&self) -> Option<SystemTime> {
        if self.expiring == 0 {
            return None;
        }
        self.faults
            .iter()
            .zip(self.meta.iter())
            .filter(|(f, _)| f.enabled)
            .filter_map(|(_, m)| m.expires_at)
            .min()
    }

    /// The faults of `route` that are on and act on requests, in order, each with its
    /// method condition at hand.
    pub fn request_faults(&self, route: &str) -> &[RequestFault] {
        match (self.request_faults.get(route), self.by_route.get(route)) {
            (Some(list), Some(faults)) => list.get_or_init(|| request_index::build(faults)),
            _ => &[],
        }
    }

    /// The faults attached to `route`, enabled or not, in order.
    pub fn faults_for(&self, route: &str) -> impl DoubleEndedIterator<Item = &Arc<Fault>> + Clone {
        self.by_route.get(route).into_iter().flat_map(Chunked::iter)
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
            max_active: None,
        }
    }

    #[test]
    fn request_faults_follow_each_change_and_keep_order() {
        let abort = |name: &str, enabled: bool| Fault {
            enabled,
            kind: FaultKind::Abort(crate::faults::Abort {
                status: 503,
                body: String::new(),
                headers: Default::default(),
            }),
            ..latency(name, "web", 0)
        };
        let set = RuleSet::new(
            vec![Route::tcp("web", "127.0.0.1:1", "h:1")],
            vec![
                abort("first", true),
                latency("not-per-request", "web", 5),
                abort("off", false),
                abort("last", true),
            ],
        );
        let names = |s: &RuleSet| -> Vec<String> {
            s.request_faults("web")
                .iter()
                .map(|r| r.fault.name.clone())
                .collect()
        };
        assert_eq!(names(&set), ["first", "last"]);
        let meta = FaultMeta {
            source: Source::Api,
            expires_at: None,
        };
        // The set the change was made from keeps its own view; the new one sees the change.
        let next = set.with_fault(abort("off", true), meta).expect("known");
        assert_eq!(names(&next), ["first", "off", "last"]);
        assert_eq!(names(&set), ["first", "last"]);
        assert!(set.request_faults("nowhere").is_empty());
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
        let names: Vec<_> = next.faults_for("a").map(|f| f.kind.clone()).collect();
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
        let first = |s: &RuleSet| s.faults_for("b").next().cloned().expect("one");
        assert!(Arc::ptr_eq(&first(&set), &first(&next)));
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
