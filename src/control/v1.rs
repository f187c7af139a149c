//! Handlers of the native `/v1` API that take or shape request bodies.

use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Map, Value};

use super::ApiError;
use super::http::{self, Body, read_json};
use crate::Switchboard;
use crate::app::FaultUpdate;
use crate::faults::FaultKind;
use crate::rules::Fault;
use crate::store::Removal;

type Answer = Result<Response<Body>, ApiError>;

pub async fn route(app: &Switchboard, name: &str) -> Answer {
    let route = app.routes().await.into_iter().find(|r| r.name == name);
    match route {
        Some(r) => Ok(http::json(StatusCode::OK, &r)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no route named {name:?}"),
        )),
    }
}

pub fn get_fault(app: &Switchboard, name: &str) -> Answer {
    Ok(http::json(StatusCode::OK, &app.fault(name)?))
}

pub async fn create_fault(app: &Switchboard, request: Request<Incoming>) -> Answer {
    let (fault, ttl) = new_fault(read_json(request).await?)?;
    let created = app.create_fault(fault, ttl).await?;
    Ok(http::json(StatusCode::CREATED, &created))
}

/// A `POST /v1/faults` body: the fault, and its time to live if one is given.
pub(crate) fn new_fault(body: Value) -> Result<(Fault, Option<Duration>), ApiError> {
    let mut body = object(body)?;
    let ttl = body
        .remove("ttl")
        .map(|v| parse_ttl(&v))
        .transpose()?
        .flatten();
    let fault: Fault =
        serde_path_to_error::deserialize(Value::Object(body)).map_err(ApiError::from_serde)?;
    Ok((fault, ttl))
}

pub async fn update_fault(app: &Switchboard, name: &str, request: Request<Incoming>) -> Answer {
    let body = read_json(request).await?;
    let current = app.fault(name)?.fault;
    let update = fault_update(&current, body)?;
    Ok(http::json(
        StatusCode::OK,
        &app.update_fault(name, update).await?,
    ))
}

/// A `PATCH /v1/faults/{name}` body, read against the fault as it is now.
pub(crate) fn fault_update(current: &Fault, body: Value) -> Result<FaultUpdate, ApiError> {
    let body = object(body)?;
    let mut update = FaultUpdate::default();
    for (key, value) in body {
        match key.as_str() {
            "enabled" => update.enabled = Some(field(&key, value)?),
            "probability" => update.probability = Some(field(&key, value)?),
            "direction" => update.direction = Some(field(&key, value)?),
            "kind" => update.kind = Some(merge_kind(&current.kind, value)?),
            "ttl" => update.ttl = Some(parse_ttl(&value)?),
            _ => {
                return Err(ApiError::bad_field(
                    key.clone(),
                    format!(
                        "unknown field `{key}`; PATCH takes enabled, probability, direction, kind and ttl"
                    ),
                ));
            }
        }
    }
    Ok(update)
}

pub async fn delete_fault(app: &Switchboard, name: &str) -> Answer {
    match app.remove_fault(name).await? {
        Removal::Deleted => Ok(http::empty(StatusCode::NO_CONTENT)),
        // A file-defined fault stays, switched off: show it.
        Removal::Disabled => Ok(http::json(StatusCode::OK, &app.fault(name)?)),
    }
}

fn object(value: Value) -> Result<Map<String, Value>, ApiError> {
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "a JSON object body is required",
        )),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the body must be a JSON object",
        )),
    }
}

fn field<T: serde::de::DeserializeOwned>(name: &str, value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::bad_field(name, format!("{name}: {e}")))
}

/// `"30s"`, `"1m 30s"` or a number of seconds; `null` clears it.
/// The longest time to live a fault may be given: a year. Longer ones are refused before
/// any arithmetic is done on them.
pub const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

fn parse_ttl(value: &Value) -> Result<Option<Duration>, ApiError> {
    let bad = |why: String| ApiError::bad_field("ttl", why);
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
fn merge_kind(current: &FaultKind, value: Value) -> Result<FaultKind, ApiError> {
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
        let mut error = ApiError::from_serde(e);
        error.field = Some(match error.field.take() {
            Some(f) if f != "." => format!("kind.{f}"),
            _ => "kind".into(),
        });
        error
    })
}
