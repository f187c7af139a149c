//! Changes made at run time through the control endpoint, kept apart from the files so a
//! reload can re-apply them.
//!
//! Rules of precedence: an API change to a file-defined fault remembers the file's definition
//! it was made against (its base). A reload keeps the change while the file still defines that
//! fault the same way, and drops it when the file's definition changed: the later edit wins.
//! API-created faults and routes survive reloads unless a file defines the same name.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use serde::Serialize;

use super::RuleSet;
use crate::rules::{Fault, Route};

/// Where a route or fault came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A rules file.
    File,
    /// The control API.
    Api,
}

/// What the rule set knows of a fault beyond its definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultMeta {
    /// Where it came from.
    pub source: Source,
    /// When it switches itself off, if it has a time to live.
    pub expires_at: Option<SystemTime>,
}

/// The routes and faults of the last rules directory that loaded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileRules {
    /// In load order.
    pub routes: Vec<Route>,
    /// In load order.
    pub faults: Vec<Fault>,
}

#[derive(Debug, Clone)]
struct Entry {
    fault: Fault,
    expires_at: Option<SystemTime>,
}

#[derive(Debug, Clone)]
struct Patched {
    base: Fault,
    entry: Entry,
}

/// A fault name that is neither in the files nor created at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown;

/// What [`Overrides::remove`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// An API-created fault was deleted.
    Deleted,
    /// A file-defined fault cannot be deleted from outside its file; it was switched off.
    Disabled,
}

/// Every run-time change.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    created: Vec<Entry>,
    patched: BTreeMap<String, Patched>,
    routes: Vec<Route>,
    /// API changes to file-defined routes: the file's definition when changed, and the result.
    patched_routes: BTreeMap<String, (Route, Route)>,
}

/// What the kill switch turned back to normal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ResetReport {
    /// Faults that were on.
    pub turned_off: Vec<String>,
    /// Routes that were disabled.
    pub routes_enabled: Vec<String>,
}

impl Overrides {
    /// The file rules with every change applied, as a rule set; drops changes that a file
    /// edit superseded and API items whose name a file now uses.
    pub fn merge(&mut self, files: &FileRules) -> RuleSet {
        // Indexed once, so a merge costs time in proportion to the number of rules.
        let file_faults: HashMap<&str, &Fault> =
            files.faults.iter().map(|f| (f.name.as_str(), f)).collect();
        let file_routes: HashMap<&str, &Route> =
            files.routes.iter().map(|r| (r.name.as_str(), r)).collect();
        self.patched
            .retain(|name, patched| file_faults.get(name.as_str()) == Some(&&patched.base));
        self.patched_routes
            .retain(|name, (base, _)| file_routes.get(name.as_str()) == Some(&&*base));
        self.routes
            .retain(|r| !file_routes.contains_key(r.name.as_str()));
        self.created
            .retain(|e| !file_faults.contains_key(e.fault.name.as_str()));

        let routes = files
            .routes
            .iter()
            .map(|r| match self.patched_routes.get(&r.name) {
                Some((_, current)) => (current.clone(), Source::File),
                None => (r.clone(), Source::File),
            })
            .chain(self.routes.iter().map(|r| (r.clone(), Source::Api)))
            .collect();
        let file_faults = files
            .faults
            .iter()
            .map(|f| match self.patched.get(&f.name) {
                Some(p) => (
                    p.entry.fault.clone(),
                    meta(Source::File, p.entry.expires_at),
                ),
                None => (f.clone(), meta(Source::File, None)),
            });
        let api_faults = self
            .created
            .iter()
            .map(|e| (e.fault.clone(), meta(Source::Api, e.expires_at)));
        RuleSet::with_sources(routes, file_faults.chain(api_faults).collect())
    }

    /// Whether any fault was created at run time.
    pub fn has_created(&self) -> bool {
        !self.created.is_empty()
    }

    /// Adds an API-created fault. The caller checks the name is free.
    pub fn create(&mut self, fault: Fault, expires_at: Option<SystemTime>) {
        self.created.push(Entry { fault, expires_at });
    }

    /// Changes the fault `name`, wherever it was defined. `expires_at` replaces the time to
    /// live when given (`Some(None)` clears it). Returns the fault as it now is and when it
    /// expires.
    pub fn update(
        &mut self,
        name: &str,
        files: &FileRules,
        change: impl FnOnce(&mut Fault),
        expires_at: Option<Option<SystemTime>>,
    ) -> Result<(Fault, Option<SystemTime>), Unknown> {
        let base = || files.faults.iter().find(|f| f.name == name);
        let entry = self.entry_mut(name, base).ok_or(Unknown)?;
        change(&mut entry.fault);
        if let Some(expires_at) = expires_at {
            entry.expires_at = expires_at;
        }
        Ok((entry.fault.clone(), entry.expires_at))
    }

    /// The run-time entry of `name`, made from its file definition (`base`) on first change.
    fn entry_mut<'f>(
        &mut self,
        name: &str,
        base: impl FnOnce() -> Option<&'f Fault>,
    ) -> Option<&mut Entry> {
        if let Some(i) = self.created.iter().position(|e| e.fault.name == name) {
            return Some(&mut self.created[i]);
        }
        let base = base()?;
        let patched = self
            .patched
            .entry(name.to_string())
            .or_insert_with(|| Patched {
                base: base.clone(),
                entry: Entry {
                    fault: base.clone(),
                    expires_at: None,
                },
            });
        Some(&mut patched.entry)
    }

    /// Deletes an API-created fault, or switches off a file-defined one.
    pub fn remove(&mut self, name: &str, files: &FileRules) -> Result<Removal, Unknown> {
        if let Some(i) = self.created.iter().position(|e| e.fault.name == name) {
            self.created.remove(i);
            return Ok(Removal::Deleted);
        }
        self.update(name, files, |f| f.enabled = false, Some(None))?;
        Ok(Removal::Disabled)
    }

    /// The kill switch: removes every API-created fault, switches off every file-defined one
    /// and enables every route. Says what was turned back, judged against `current`.
    pub fn reset(&mut self, files: &FileRules, current: &RuleSet) -> ResetReport {
        let report = ResetReport {
            turned_off: current
                .faults()
                .iter()
                .filter(|f| f.enabled)
                .map(|f| f.name.clone())
                .collect(),
            routes_enabled: current
                .routes()
                .iter()
                .filter(|r| !r.enabled)
                .map(|r| r.name.clone())
                .collect(),
        };
        self.created.clear();
        // Only faults that are on need an entry: one that is off in force stays off.
        for fault in &files.faults {
            if !current.fault(&fault.name).is_some_and(|f| f.enabled) {
                continue;
            }
            if let Some(entry) = self.entry_mut(&fault.name, || Some(fault)) {
                entry.fault.enabled = false;
                entry.expires_at = None;
            }
        }
        for route in &report.routes_enabled {
            let _ = self.update_route(route, files, |r| r.enabled = true);
        }
        report
    }

    /// Changes the route `name`, wherever it was defined.
    pub fn update_route(
        &mut self,
        name: &str,
        files: &FileRules,
        change: impl FnOnce(&mut Route),
    ) -> Result<(), Unknown> {
        if let Some(route) = self.routes.iter_mut().find(|r| r.name == name) {
            change(route);
            return Ok(());
        }
        let base = files
            .routes
            .iter()
            .find(|r| r.name == name)
            .ok_or(Unknown)?;
        let (_, current) = self
            .patched_routes
            .entry(name.to_string())
            .or_insert_with(|| (base.clone(), base.clone()));
        change(current);
        Ok(())
    }

    /// Adds an API-created route. The caller checks the name is free.
    pub fn create_route(&mut self, route: Route) {
        self.routes.push(route);
    }

    /// Removes an API-created route and the API-created faults on it; false if there is none.
    pub fn remove_route(&mut self, name: &str) -> bool {
        let before = self.routes.len();
        self.routes.retain(|r| r.name != name);
        self.created.retain(|e| e.fault.route != name);
        self.routes.len() != before
    }

    /// Removes the API-created faults on `route`; returns their names.
    pub fn remove_faults_of(&mut self, route: &str) -> Vec<String> {
        let (gone, kept) = std::mem::take(&mut self.created)
            .into_iter()
            .partition(|e| e.fault.route == route);
        self.created = kept;
        gone.into_iter().map(|e: Entry| e.fault.name).collect()
    }
}

fn meta(source: Source, expires_at: Option<SystemTime>) -> FaultMeta {
    FaultMeta { source, expires_at }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::{FaultKind, Latency};
    use crate::rules::Direction;

    fn latency(name: &str, ms: u64) -> Fault {
        Fault {
            name: name.into(),
            route: "r".into(),
            enabled: true,
            probability: 1.0,
            direction: Direction::Downstream,
            kind: FaultKind::Latency(Latency { ms, jitter_ms: 0 }),
            when: None,
            max_active: None,
        }
    }

    fn files(faults: Vec<Fault>) -> FileRules {
        FileRules {
            routes: vec![Route::tcp("r", "127.0.0.1:1", "h:1")],
            faults,
        }
    }

    #[test]
    fn an_api_change_survives_unrelated_reloads_and_yields_to_a_file_edit() {
        let v1 = files(vec![latency("a", 10), latency("b", 10)]);
        let mut o = Overrides::default();
        o.update("a", &v1, |f| f.enabled = false, None)
            .expect("known");
        assert!(!o.merge(&v1).fault("a").expect("a").enabled);

        // b changes in the file: a's API change holds.
        let v2 = files(vec![latency("a", 10), latency("b", 20)]);
        assert!(!o.merge(&v2).fault("a").expect("a").enabled);

        // a itself changes in the file: the file wins.
        let v3 = files(vec![latency("a", 30), latency("b", 20)]);
        let merged = o.merge(&v3);
        let a = merged.fault("a").expect("a");
        assert!(a.enabled);
        assert_eq!(
            a.kind,
            FaultKind::Latency(Latency {
                ms: 30,
                jitter_ms: 0
            })
        );
    }

    #[test]
    fn remove_deletes_api_faults_and_disables_file_faults() {
        let f = files(vec![latency("file", 10)]);
        let mut o = Overrides::default();
        o.create(latency("api", 5), None);
        assert_eq!(o.remove("api", &f), Ok(Removal::Deleted));
        assert_eq!(o.remove("file", &f), Ok(Removal::Disabled));
        assert_eq!(o.remove("nope", &f), Err(Unknown));
        let merged = o.merge(&f);
        assert!(merged.fault("api").is_none());
        assert!(!merged.fault("file").expect("file").enabled);
    }

    #[test]
    fn reset_turns_everything_off() {
        let f = files(vec![latency("on", 10), {
            let mut off = latency("off", 10);
            off.enabled = false;
            off
        }]);
        let mut o = Overrides::default();
        o.create(latency("api", 5), None);
        let current = o.merge(&f);
        let mut turned_off = o.reset(&f, &current).turned_off;
        turned_off.sort();
        assert_eq!(turned_off, vec!["api", "on"]);
        let after = o.merge(&f);
        assert!(after.faults().iter().all(|f| !f.enabled));
        assert_eq!(after.faults().len(), 2);
    }

    #[test]
    fn a_file_name_takes_precedence_over_an_api_fault() {
        let mut o = Overrides::default();
        o.create(latency("x", 5), None);
        let merged = o.merge(&files(vec![latency("x", 50)]));
        assert_eq!(merged.faults().len(), 1);
        assert_eq!(merged.meta("x").map(|m| m.source), Some(Source::File));
    }
}
