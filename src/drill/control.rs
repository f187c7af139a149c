//! How a drill changes faults: through a remote control endpoint (the CLI) or directly on
//! the Switchboard it runs in (`POST /v1/drills`). Both speak the `/v1/faults` JSON, so a
//! step means the same thing either way.

use std::collections::BTreeMap;

use serde_json::Value;

use super::DrillError;
use crate::Switchboard;
use crate::ctl::{Client, CtlError};
use crate::fault_json;

/// Where a drill's changes go.
#[derive(Clone)]
pub enum Control {
    /// A control endpoint over HTTP.
    Remote(Box<Client>),
    /// The Switchboard this process runs.
    Local(Switchboard),
}

fn failed(action: impl Into<String>) -> impl FnOnce(String) -> DrillError {
    let action = action.into();
    move |message| DrillError::Control { action, message }
}

impl Control {
    /// Where the changes go, for the report.
    pub fn describe(&self) -> String {
        match self {
            Control::Remote(client) => client.base().to_string(),
            Control::Local(_) => "in-process".into(),
        }
    }

    /// The fault as `GET /v1/faults/{name}` shows it, or `None` when there is none.
    pub async fn fault(&self, name: &str) -> Result<Option<Value>, DrillError> {
        let action = format!("reading fault {name:?}");
        match self {
            Control::Remote(client) => match client.get(&fault_path(name)).await {
                Ok(v) => Ok(Some(v)),
                Err(CtlError::Server { status, .. }) if status.as_u16() == 404 => Ok(None),
                Err(e) => Err(failed(action)(e.to_string())),
            },
            Control::Local(app) => match app.fault(name) {
                Ok(info) => serde_json::to_value(info)
                    .map(Some)
                    .map_err(|e| failed(action)(e.to_string())),
                Err(crate::ChangeError::UnknownFault(_)) => Ok(None),
                Err(e) => Err(failed(action)(e.to_string())),
            },
        }
    }

    /// `POST /v1/faults`.
    pub async fn create(&self, body: Value) -> Result<(), DrillError> {
        let name = body.get("name").and_then(Value::as_str).unwrap_or("?");
        let action = format!("adding fault {name:?}");
        match self {
            Control::Remote(client) => client
                .send("POST", "/v1/faults", Some(body.clone()))
                .await
                .map(drop)
                .map_err(|e| failed(action)(e.to_string())),
            Control::Local(app) => {
                let (fault, ttl) = fault_json::read_new_fault(body.clone())
                    .map_err(|e| failed(&action)(e.message))?;
                app.create_fault(fault, ttl)
                    .await
                    .map(drop)
                    .map_err(|e| failed(action)(e.to_string()))
            }
        }
    }

    /// `PATCH /v1/faults/{name}`.
    pub async fn patch(&self, name: &str, body: Value) -> Result<(), DrillError> {
        let action = format!("changing fault {name:?}");
        match self {
            Control::Remote(client) => client
                .send("PATCH", &fault_path(name), Some(body))
                .await
                .map(drop)
                .map_err(|e| failed(action)(e.to_string())),
            Control::Local(app) => {
                let current = app
                    .fault(name)
                    .map_err(|e| failed(&action)(e.to_string()))?;
                let update = fault_json::read_update(&current.fault, body)
                    .map_err(|e| failed(&action)(e.message))?;
                app.update_fault(name, update)
                    .await
                    .map(drop)
                    .map_err(|e| failed(action)(e.to_string()))
            }
        }
    }

    /// `DELETE /v1/faults/{name}`.
    pub async fn delete(&self, name: &str) -> Result<(), DrillError> {
        let action = format!("removing fault {name:?}");
        match self {
            Control::Remote(client) => client
                .send("DELETE", &fault_path(name), None)
                .await
                .map(drop)
                .map_err(|e| failed(action)(e.to_string())),
            Control::Local(app) => app
                .remove_fault(name)
                .await
                .map(drop)
                .map_err(|e| failed(action)(e.to_string())),
        }
    }

    /// The route as `GET /v1/routes/{name}` shows it, counters included.
    pub async fn route(&self, name: &str) -> Result<Value, DrillError> {
        let action = format!("reading route {name:?}");
        match self {
            Control::Remote(client) => client
                .get(&format!("/v1/routes/{name}"))
                .await
                .map_err(|e| failed(action)(e.to_string())),
            Control::Local(app) => match app.route(name).await {
                Some(info) => serde_json::to_value(info).map_err(|e| failed(action)(e.to_string())),
                None => Err(failed(action)(format!("no route named {name:?}"))),
            },
        }
    }

    /// Whether the Switchboard still answers, within `within`: the drill's watch on each
    /// of its targets.
    pub async fn alive(&self, within: std::time::Duration) -> Result<(), String> {
        match self {
            Control::Remote(client) => {
                match tokio::time::timeout(within, client.get("/healthz")).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!(
                        "{} did not answer /healthz within {}",
                        client.base(),
                        humantime::format_duration(within)
                    )),
                }
            }
            Control::Local(_) => Ok(()),
        }
    }

    /// The seed of the Switchboard the drill runs against, for the report.
    pub async fn seed(&self) -> Option<u64> {
        match self {
            Control::Remote(client) => client
                .get("/v1/status")
                .await
                .ok()
                .and_then(|s| s.get("seed").and_then(Value::as_u64)),
            Control::Local(app) => Some(app.seed()),
        }
    }
}

/// Every Switchboard a drill acts on: its own, and the targets its file names.
#[derive(Clone)]
pub struct Controls {
    own: Control,
    targets: BTreeMap<String, Control>,
}

impl Controls {
    /// A drill on one Switchboard.
    pub fn single(own: Control) -> Self {
        Controls {
            own,
            targets: BTreeMap::new(),
        }
    }

    /// A drill on `own` and the named `targets`.
    pub fn with_targets(own: Control, targets: BTreeMap<String, Control>) -> Self {
        Controls { own, targets }
    }

    /// The drill's own Switchboard.
    pub fn own(&self) -> &Control {
        &self.own
    }

    /// Where a change or probe for `target` goes.
    pub fn get(&self, target: Option<&str>) -> Result<&Control, DrillError> {
        match target {
            None => Ok(&self.own),
            Some(name) => self.targets.get(name).ok_or_else(|| DrillError::Control {
                action: format!("finding target {name:?}"),
                message: "the drill names no such target".into(),
            }),
        }
    }

    /// The named targets.
    pub fn targets(&self) -> impl Iterator<Item = (&str, &Control)> {
        self.targets.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// A fault on one of a drill's Switchboards: how the report and the progress display name
/// it. `db-down` on the drill's own Switchboard, `db-down@orders` on the target `orders`.
pub fn label(target: Option<&str>, fault: &str) -> String {
    match target {
        None => fault.to_string(),
        Some(target) => format!("{fault}@{target}"),
    }
}

fn fault_path(name: &str) -> String {
    // Fault names are checked to be path-safe, except Toxiproxy's `proxy:toxic`, whose ':'
    // is allowed in a path segment.
    format!("/v1/faults/{name}")
}
