//! Turns a drill's steps into the flat list of changes to make, each at its offset from the
//! start of injection. Ramps and flaps become many small changes; nothing here does I/O.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::scenario::{Action, Step};
use crate::rules::Fault;

/// One change to the faults.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Add a fault.
    Create(Fault),
    /// A `PATCH /v1/faults/{name}` body.
    Patch {
        /// The fault.
        fault: String,
        /// The fields to change.
        body: Map<String, Value>,
    },
    /// Set one numeric parameter of the fault's kind, whatever the kind is.
    SetParam {
        /// The fault.
        fault: String,
        /// The parameter.
        param: String,
        /// Its value.
        value: f64,
    },
}

impl Change {
    /// The fault it touches.
    pub fn fault(&self) -> &str {
        match self {
            Change::Create(f) => &f.name,
            Change::Patch { fault, .. } | Change::SetParam { fault, .. } => fault,
        }
    }

    /// Whether it switches the fault on (and so must carry a time to live).
    pub fn enables(&self) -> bool {
        match self {
            Change::Create(f) => f.enabled,
            Change::Patch { body, .. } => body.get("enabled") == Some(&Value::Bool(true)),
            Change::SetParam { .. } => false,
        }
    }

    /// A short description for the progress display and the report.
    pub fn describe(&self) -> String {
        match self {
            Change::Create(f) => format!("add {}", f.name),
            Change::Patch { fault, body } => match (body.len(), body.get("enabled")) {
                (1, Some(Value::Bool(true))) => format!("enable {fault}"),
                (1, Some(Value::Bool(false))) => format!("disable {fault}"),
                _ => format!("patch {fault} {}", Value::Object(body.clone())),
            },
            Change::SetParam {
                fault,
                param,
                value,
            } => format!("set {fault}.{param} = {}", number(*value)),
        }
    }
}

/// A change and when to make it.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// From the start of injection.
    pub at: Duration,
    /// The drill target it goes to; the drill's own Switchboard when `None`.
    pub target: Option<String>,
    /// What.
    pub change: Change,
}

/// The plan of a whole timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// In time order; changes at the same offset keep the order of their steps.
    pub changes: Vec<Planned>,
    /// How long the fault phase lasts: until the last step has finished.
    pub length: Duration,
}

/// Expands the steps.
pub fn plan(steps: &[Step]) -> Plan {
    let mut changes = Vec::new();
    let mut length = Duration::ZERO;
    for step in steps {
        let at = step.at;
        let mut push = |offset: Duration, change: Change| {
            changes.push(Planned {
                at: at + offset,
                target: step.target.clone(),
                change,
            })
        };
        let span = match &step.action {
            Action::Enable(name) => {
                push(Duration::ZERO, switch(name, true));
                Duration::ZERO
            }
            Action::Disable(name) => {
                push(Duration::ZERO, switch(name, false));
                Duration::ZERO
            }
            Action::Add(fault) => {
                push(Duration::ZERO, Change::Create(fault.clone()));
                Duration::ZERO
            }
            Action::Patch {
                fault,
                enabled,
                probability,
                kind,
            } => {
                let mut body = Map::new();
                if let Some(v) = enabled {
                    body.insert("enabled".into(), json!(v));
                }
                if let Some(v) = probability {
                    body.insert("probability".into(), json!(v));
                }
                if let Some(kind) = kind {
                    body.insert(
                        "kind".into(),
                        serde_json::to_value(kind).unwrap_or(Value::Null),
                    );
                }
                push(
                    Duration::ZERO,
                    Change::Patch {
                        fault: fault.clone(),
                        body,
                    },
                );
                Duration::ZERO
            }
            Action::Ramp {
                fault,
                param,
                from,
                to,
                over,
                every,
            } => {
                let set = |value| Change::SetParam {
                    fault: fault.clone(),
                    param: param.clone(),
                    value,
                };
                push(Duration::ZERO, set(*from));
                push(Duration::ZERO, switch(fault, true));
                let steps = (over.as_secs_f64() / every.as_secs_f64()).ceil().max(1.0) as u32;
                for i in 1..=steps {
                    let offset = (*every * i).min(*over);
                    let share = offset.as_secs_f64() / over.as_secs_f64();
                    push(offset, set(from + (to - from) * share));
                }
                *over
            }
            Action::Flap {
                fault,
                on,
                off,
                lasting,
            } => {
                let mut t = Duration::ZERO;
                while t < *lasting {
                    push(t, switch(fault, true));
                    push((t + *on).min(*lasting), switch(fault, false));
                    t += *on + *off;
                }
                *lasting
            }
            Action::Hold(d) => *d,
        };
        length = length.max(at + span);
    }
    // A stable sort keeps same-offset changes in the order the steps gave them.
    changes.sort_by_key(|p| p.at);
    Plan { changes, length }
}

fn switch(fault: &str, on: bool) -> Change {
    let mut body = Map::new();
    body.insert("enabled".into(), Value::Bool(on));
    Change::Patch {
        fault: fault.to_string(),
        body,
    }
}

/// A parameter value as JSON: whole numbers stay integers (most parameters are `u64`).
pub fn number(value: f64) -> Value {
    if value.fract() == 0.0 && value >= 0.0 && value < u64::MAX as f64 {
        json!(value as u64)
    } else {
        json!(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(at_ms: u64, action: Action) -> Step {
        Step {
            target: None,
            at: Duration::from_millis(at_ms),
            action,
        }
    }

    /// Each change as (milliseconds, description).
    fn described(plan: &Plan) -> Vec<(u128, String)> {
        plan.changes
            .iter()
            .map(|p| (p.at.as_millis(), p.change.describe()))
            .collect()
    }

    #[test]
    fn a_ramp_moves_the_parameter_in_even_steps_and_switches_the_fault_on_first() {
        let plan = plan(&[step(
            1000,
            Action::Ramp {
                fault: "slow".into(),
                param: "ms".into(),
                from: 0.0,
                to: 500.0,
                over: Duration::from_secs(5),
                every: Duration::from_secs(1),
            },
        )]);
        assert_eq!(plan.length, Duration::from_secs(6));
        let described = described(&plan);
        assert_eq!(
            described,
            vec![
                (1000, "set slow.ms = 0".to_string()),
                (1000, "enable slow".to_string()),
                (2000, "set slow.ms = 100".to_string()),
                (3000, "set slow.ms = 200".to_string()),
                (4000, "set slow.ms = 300".to_string()),
                (5000, "set slow.ms = 400".to_string()),
                (6000, "set slow.ms = 500".to_string()),
            ]
        );
    }

    #[test]
    fn a_flap_alternates_and_ends_switched_off() {
        let plan = plan(&[step(
            0,
            Action::Flap {
                fault: "p".into(),
                on: Duration::from_secs(10),
                off: Duration::from_secs(20),
                lasting: Duration::from_secs(70),
            },
        )]);
        let described = described(&plan);
        assert_eq!(
            described,
            vec![
                (0, "enable p".to_string()),
                (10_000, "disable p".to_string()),
                (30_000, "enable p".to_string()),
                (40_000, "disable p".to_string()),
                (60_000, "enable p".to_string()),
                (70_000, "disable p".to_string()),
            ]
        );
        assert_eq!(plan.length, Duration::from_secs(70));
    }

    #[test]
    fn steps_are_ordered_by_offset_and_hold_extends_the_phase() {
        let plan = plan(&[
            step(5000, Action::Disable("a".into())),
            step(0, Action::Enable("a".into())),
            step(0, Action::Hold(Duration::from_secs(8))),
        ]);
        let described: Vec<String> = plan.changes.iter().map(|p| p.change.describe()).collect();
        assert_eq!(described, vec!["enable a", "disable a"]);
        assert_eq!(plan.length, Duration::from_secs(8));
        assert!(plan.changes[0].change.enables());
        assert!(!plan.changes[1].change.enables());
    }
}
