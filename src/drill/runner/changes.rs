//! The drill's changes to the faults: applying each step of the timeline, remembering what
//! each fault was before the drill touched it, and putting all of it back.

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::Drill;
use crate::drill::DrillError;
use crate::drill::report::FaultWindow;
use crate::drill::timeline::{self, Change};
use crate::fault_json;

impl Drill<'_> {
    /// How long a fault the drill switches on may live: never past the drill's deadline.
    pub(super) fn ttl(&self) -> Value {
        let left = self.deadline.saturating_duration_since(Instant::now());
        json!(left.as_secs_f64().max(1.0).ceil())
    }

    pub(super) async fn apply(&mut self, change: &Change) -> Result<(), DrillError> {
        let name = change.fault().to_string();
        if !self.created.contains(&name) && !self.originals.contains_key(&name) {
            match self.control.fault(&name).await? {
                Some(existing) => {
                    self.originals.insert(name.clone(), existing);
                }
                None if matches!(change, Change::Create(_)) => {}
                None => {
                    return Err(DrillError::Control {
                        action: change.describe(),
                        message: format!("no fault named {name:?}"),
                    });
                }
            }
        }
        match change {
            Change::Create(fault) => {
                let body = fault_json::new_fault_body(fault, Some(self.ttl()));
                self.control.create(body).await?;
                self.created.insert(name.clone());
            }
            Change::Patch { fault, body } => {
                let mut body = body.clone();
                if change.enables() {
                    body.insert("ttl".into(), self.ttl());
                }
                self.control.patch(fault, Value::Object(body)).await?;
            }
            Change::SetParam {
                fault,
                param,
                value,
            } => {
                let current = self.control.fault(fault).await?.unwrap_or(Value::Null);
                let kind = with_param(current.get("kind"), param, *value).ok_or_else(|| {
                    DrillError::Control {
                        action: change.describe(),
                        message: format!("fault {fault:?} has no numeric parameter {param:?}"),
                    }
                })?;
                let mut body = Map::new();
                body.insert("kind".into(), kind);
                self.control.patch(fault, Value::Object(body)).await?;
            }
        }
        self.track(change);
        self.note(change.describe());
        Ok(())
    }

    pub(super) fn track(&mut self, change: &Change) {
        let name = change.fault().to_string();
        let now = self.now_ms();
        let switched = match change {
            Change::Create(f) => Some(f.enabled),
            Change::Patch { body, .. } => body.get("enabled").and_then(Value::as_bool),
            Change::SetParam { .. } => None,
        };
        match switched {
            Some(true) => {
                self.on_since.entry(name).or_insert(now);
            }
            Some(false) => self.close_window(&name, now),
            None => {}
        }
    }

    pub(super) fn close_window(&mut self, name: &str, now: f64) {
        if let Some(from) = self.on_since.remove(name) {
            self.windows.push(FaultWindow {
                fault: name.to_string(),
                from_ms: from,
                to_ms: now,
            });
        }
    }

    /// Puts every fault the drill touched back as it was. Keeps going past errors: a
    /// half-done restore is worse than a noisy one.
    pub(super) async fn restore(&mut self) {
        for name in std::mem::take(&mut self.created) {
            if let Err(e) = self.control.delete(&name).await {
                self.note(format!("restore: {e}"));
            }
        }
        for (name, original) in std::mem::take(&mut self.originals) {
            let body = fault_json::restore_body(&original);
            if let Err(e) = self.control.patch(&name, body).await {
                self.note(format!("restore: {e}"));
            }
        }
        let now = self.now_ms();
        let open: Vec<String> = self.on_since.keys().cloned().collect();
        for name in open {
            self.close_window(&name, now);
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
