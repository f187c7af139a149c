//! The JSON shape of a fault and of a change to one, as `/v1/faults` takes them: `POST` a
//! fault (with an optional `ttl`), `PATCH` some of its fields. The control endpoint reads them
//! here, and `ctl` and drills write them here, so the three cannot drift apart; a drill that
//! runs inside the server reads its own changes with the same code the endpoint uses.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::faults::FaultKind;
use crate::rules::{Direction, Fault};

/// The fields a `PATCH /v1/faults/{name}` takes.
pub const PATCH_FIELDS: [&str; 6] = [
    "enabled",
    "probability",
    "direction",
    "kind",
    "max_active",
    "ttl",
];

/// The longest time to live a fault may be given: a year. Longer ones are refused before
/// any arithmetic is done on them.
pub const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// A body that does not describe a fault or a change to one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct FaultJsonError {
    /// What is wrong, for a person.
    pub message: String,
    /// The field to blame (`kind.Latency.ms`), when there is one.
    pub field: Option<String>,
}

impl FaultJsonError {
    fn new(message: impl Into<String>) -> Self {
        FaultJsonError {
            message: message.into(),
            field: None,
        }
    }

    fn at(field: impl Into<String>, message: impl Into<String>) -> Self {
        FaultJsonError {
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// Names the field from the path serde reports, or the one named in the message when
    /// the problem is at the top level.
    pub(crate) fn from_serde(e: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        let field = if path == "." {
            message.split('`').nth(1).map(str::to_string)
        } else {
            Some(path)
        };
        FaultJsonError { message, field }
    }
}

/// A partial change to a fault; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct FaultUpdate {
    /// Switch on or off.
    pub enabled: Option<bool>,
    /// New probability.
    pub probability: Option<f64>,
    /// New direction.
    pub direction: Option<Direction>,
    /// New kind and parameters.
    pub kind: Option<FaultKind>,
    /// `Some(Some(n))` caps how many are under the fault at once, `Some(None)` lifts the cap.
    pub max_active: Option<Option<u32>>,
    /// `Some(Some(d))` sets a time to live from now, `Some(None)` clears it.
    pub ttl: Option<Option<Duration>>,
}

/// The `POST /v1/faults` body for `fault`, with a time to live (`"30s"`, or seconds).
pub fn new_fault_body(fault: &Fault, ttl: Option<Value>) -> Value {
    let mut body = serde_json::to_value(fault).unwrap_or_else(|_| json!({}));
    if let (Value::Object(map), Some(ttl)) = (&mut body, ttl) {
        map.insert("ttl".into(), ttl);
    }
    body
}

/// The `PATCH` body that switches a fault on or off, with a time to live when given.
pub fn switch_body(enabled: bool, ttl: Option<Value>) -> Value {
    let mut body = json!({ "enabled": enabled });
    if let Some(ttl) = ttl {
        body["ttl"] = ttl;
    }
    body
}

/// The `PATCH` body that gives a fault back a definition it showed earlier (as
/// `GET /v1/faults/{name}` answered), with no time to live.
pub fn restore_body(shown: &Value) -> Value {
    let mut body = Map::new();
    for field in PATCH_FIELDS {
        if let Some(v) = shown.get(field).filter(|_| field != "ttl") {
            body.insert(field.into(), v.clone());
        }
    }
    // A fault shown without a cap had none: one set since is lifted.
    body.entry("max_active").or_insert(Value::Null);
    body.insert("ttl".into(), Value::Null);
    Value::Object(body)
}

/// Reads a `POST /v1/faults` body: the fault, and its time to live if one is given.
pub fn read_new_fault(body: Value) -> Result<(Fault, Option<Duration>), FaultJsonError> {
    let mut body = object(body)?;
    let ttl = body
        .remove("ttl")
        .map(|v| read_ttl(&v))
        .transpose()?
        .flatten();
    let fault: Fault = serde_path_to_error::deserialize(Value::Object(body))
        .map_err(FaultJsonError::from_serde)?;
    Ok((fault, ttl))
}

/// Reads a `PATCH /v1/faults/{name}` body against the fault as it is now.
pub fn read_update(current: &Fault, body: Value) -> Result<FaultUpdate, FaultJsonError> {
    let body = object(body)?;
    let mut update = FaultUpdate::default();
    for (key, value) in body {
        match key.as_str() {
            "enabled" => update.enabled = Some(field(&key, value)?),
            "probability" => update.probability = Some(field(&key, value)?),
            "direction" => update.direction = Some(field(&key, value)?),
            "kind" => update.kind = Some(merge_kind(&current.kind, value)?),
            "max_active" => update.max_active = Some(field(&key, value)?),
            "ttl" => update.ttl = Some(read_ttl(&value)?),
            _ => {
                return Err(FaultJsonError::at(
                    key.clone(),
                    format!(
                        "unknown field `{key}`; PATCH takes {}",
                        PATCH_FIELDS.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(update)
}

fn object(value: Value) -> Result<Map<String, Value>, FaultJsonError> {
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Err(FaultJsonError::new("a JSON object body is required")),
        _ => Err(FaultJsonError::new("the body must be a JSON object")),
    }
}

fn field<T: serde::de::DeserializeOwned>(name: &str, value: Value) -> Result<T, FaultJsonError> {
    serde_json::from_value(value).map_err(|e| FaultJsonError::at(name, format!("{name}: {e}")))
}

/// `"30s"`, `"1m 30s"` or a number of seconds; `null` clears it.
fn read_ttl(value: &Value) -> Result<Option<Duration>, FaultJsonError> {
    let bad = |why: String| FaultJsonError::at("ttl", why);
    match value {
        Value::Null => Ok(None),
        Value::String(s) => {
            let ttl = humantime::parse_duration(s).map_err(|e| {
                bad(format!(
                    "ttl {s:?} is not a duration like \"30s\" or \"5m\": {e}"
                ))
            })?;
            if ttl > MAX_TTL {
                return Err(bad(format!(
                    "ttl {s:?} is longer than the longest allowed, {}",
                    humantime::format_duration(MAX_TTL)
                )));
            }
            Ok(Some(ttl))
        }
        Value::Number(n) => match n.as_f64() {
            Some(secs) if (0.0..=MAX_TTL.as_secs_f64()).contains(&secs) => {
                Ok(Some(Duration::from_secs_f64(secs)))
            }
            _ => Err(bad(format!(
                "ttl {n} is not a number of seconds between 0 and {}",
                MAX_TTL.as_secs()
            ))),
        },
        other => Err(bad(format!(
            "ttl must be a duration string or seconds, not {other}"
        ))),
    }
}

/// A new kind, given whole (`{"Latency": {"ms": 10}}`) or, for the same kind, only the
/// parameters that change: the rest are kept.
fn merge_kind(current: &FaultKind, value: Value) -> Result<FaultKind, FaultJsonError> {
    let mut value = value;
    if let (Value::Object(given), Ok(Value::Object(existing))) =
        (&mut value, serde_json::to_value(current))
    {
        for (variant, params) in given.iter_mut() {
            if let (Some(Value::Object(old)), Value::Object(new)) =
                (existing.get(variant), &mut *params)
            {
                for (k, v) in old {
                    new.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut error = FaultJsonError::from_serde(e);
        error.field = Some(match error.field.take() {
            Some(f) if f != "." => format!("kind.{f}"),
            _ => "kind".into(),
        });
        error
    })
}
