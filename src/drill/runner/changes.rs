//! The drill's changes to the faults: applying each step of the timeline, remembering what
//! each fault was before the drill touched it, and putting all of it back.

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::{Drill, FaultKey, LEASE, WATCH_WITHIN};
use crate::drill::DrillError;
use crate::drill::control::label;
use crate::drill::report::FaultWindow;
use crate::drill::timeline::{self, Change, Planned};
use crate::fault_json;

impl Drill<'_> {
    /// How long a fault the drill switches on may live without a renewal: its lease, and
    /// never past the drill's deadline.
    pub(super) fn ttl(&self) -> Value {
        let left = self
            .deadline
            .saturating_duration_since(Instant::now())
            .min(LEASE);
        json!(left.as_secs_f64().max(1.0).ceil())
    }

    /// Renews the lease of every fault the drill has switched on, on every Switchboard: a
    /// drill whose controller vanishes (killed, its machine gone) leaves them on for at most
    /// one lease. A target that does not answer is the watch's to report.
    pub(super) async fn renew(&mut self) {
        self.renewed = Instant::now();
        let on: Vec<FaultKey> = self.on_since.keys().cloned().collect();
        for (target, fault) in on {
            if self.lost.contains_key(&target) {
                continue;
            }
            let Ok(control) = self.controls.get(target.as_deref()) else {
                continue;
            };
            let body = json!({ "ttl": self.ttl() });
            if let Err(e) = control.patch(&fault, body).await {
                tracing::warn!(drill = %self.scenario.name, fault = %fault, error = %e, "renewing a fault's lease failed");
            }
        }
    }

    pub(super) async fn apply(&mut self, planned: &Planned) -> Result<(), DrillError> {
        let change = &planned.change;
        let control = self.controls.get(planned.target.as_deref())?;
        let key: FaultKey = (planned.target.clone(), change.fault().to_string());
        let name = &key.1;
        let described = match &planned.target {
            None => change.describe(),
            Some(target) => format!("{} on {target}", change.describe()),
        };
        if !self.created.contains(&key) && !self.originals.contains_key(&key) {
            match control.fault(name).await? {
                Some(existing) => {
                    self.originals.insert(key.clone(), existing);
                }
                None if matches!(change, Change::Create(_)) => {}
                None => {
                    return Err(DrillError::Control {
                        action: described,
                        message: format!("no fault named {name:?}"),
                    });
                }
            }
        }
        match change {
            Change::Create(fault) => {
                let body = fault_json::new_fault_body(fault, Some(self.ttl()));
                control.create(body).await?;
                self.created.insert(key.clone());
            }
            Change::Patch { fault, body } => {
                let mut body = body.clone();
                if change.enables() {
                    body.insert("ttl".into(), self.ttl());
                }
                control.patch(fault, Value::Object(body)).await?;
            }
            Change::SetParam {
                fault,
                param,
                value,
            } => {
                let current = control.fault(fault).await?.unwrap_or(Value::Null);
                let kind = with_param(current.get("kind"), param, *value).ok_or_else(|| {
                    DrillError::Control {
                        action: described.clone(),
                        message: format!("fault {fault:?} has no numeric parameter {param:?}"),
                    }
                })?;
                let mut body = Map::new();
                body.insert("kind".into(), kind);
                control.patch(fault, Value::Object(body)).await?;
            }
        }
        self.track(&key, change);
        self.note(described);
        Ok(())
    }

    pub(super) fn track(&mut self, key: &FaultKey, change: &Change) {
        let now = self.now_ms();
        let switched = match change {
            Change::Create(f) => Some(f.enabled),
            Change::Patch { body, .. } => body.get("enabled").and_then(Value::as_bool),
            Change::SetParam { .. } => None,
        };
        match switched {
            Some(true) => {
                self.on_since.entry(key.clone()).or_insert(now);
            }
            Some(false) => self.close_window(key, now),
            None => {}
        }
    }

    pub(super) fn close_window(&mut self, key: &FaultKey, now: f64) {
        if let Some(from) = self.on_since.remove(key) {
            self.windows.push(FaultWindow {
                fault: label(key.0.as_deref(), &key.1),
                target: key.0.clone(),
                from_ms: from,
                to_ms: now,
            });
        }
    }

    /// Puts every fault the drill touched back as it was, on every Switchboard it touched.
    /// Keeps going past errors, and past a lost target: a half-done restore is worse than a
    /// noisy one, and a lost target's faults run out with their TTL.
    pub(super) async fn restore(&mut self) {
        for (target, name) in std::mem::take(&mut self.created) {
            let result = match self.controls.get(target.as_deref()) {
                Ok(control) => control.delete(&name).await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                self.restore_failed(target, e).await;
            }
        }
        for ((target, name), original) in std::mem::take(&mut self.originals) {
            let body = fault_json::restore_body(&original);
            let result = match self.controls.get(target.as_deref()) {
                Ok(control) => control.patch(&name, body).await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                self.restore_failed(target, e).await;
            }
        }
        let now = self.now_ms();
        let open: Vec<FaultKey> = self.on_since.keys().cloned().collect();
        for key in open {
            self.close_window(&key, now);
        }
    }

    /// Notes a change the restore could not make; a target that no longer answers is lost.
    async fn restore_failed(&mut self, target: Option<String>, error: DrillError) {
        let on = match &target {
            Some(t) => format!(" on {t}"),
            None => String::new(),
        };
        self.note(format!("restore{on}: {error}"));
        if self.lost.contains_key(&target) {
            return;
        }
        if let Ok(control) = self.controls.get(target.as_deref())
            && let Err(why) = control.alive(WATCH_WITHIN).await
        {
            self.lost.insert(target, why);
        }
    }
}

/// The kind JSON (`{"Latency": {"ms": 10, …}}`) with one numeric parameter set.
fn with_param(kind: Option<&Value>, param: &str, value: f64) -> Option<Value> {
    let mut kind = kind?.clone();
    let params = kind.as_object_mut()?.values_mut().next()?.as_object_mut()?;
    let slot = params.get_mut(param)?;
    if !slot.is_number() {
        return None;
    }
    *slot = timeline::number(value);
    Some(kind)
}
