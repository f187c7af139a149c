//! `/v1/drills`: drills the server runs, held by a lease that their controller renews.

use std::path::Path;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::Value;

use super::ApiError;
use super::http::{self, Body, read_json};
use crate::Switchboard;
use crate::drill::registry::RegistryError;
use crate::drill::{Scenario, load};

type Answer = Result<Response<Body>, ApiError>;

/// A drill's lease when the request names none.
const DEFAULT_LEASE: Duration = Duration::from_secs(15);

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        let status = match e {
            RegistryError::Unknown(_) => StatusCode::NOT_FOUND,
            RegistryError::Busy { .. } => StatusCode::CONFLICT,
        };
        ApiError::new(status, e.to_string())
    }
}

/// `POST /v1/drills`: `{"drill": {…}}` (the drill file's shape as JSON), `{"ron": "…"}`
/// (the file's text) or `{"file": "…"}` (a file in the rules directory's `drills/`), with an
/// optional `"lease": "15s"`.
pub async fn start(app: &Switchboard, request: Request<Incoming>) -> Answer {
    let Value::Object(mut body) = read_json(request).await? else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the body must be a JSON object with `drill` or `ron`",
        ));
    };
    let lease = match body.remove("lease") {
        None | Some(Value::Null) => DEFAULT_LEASE,
        Some(Value::String(s)) => humantime::parse_duration(&s)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                ApiError::bad_field(
                    "lease",
                    format!("lease {s:?} is not a duration like \"15s\""),
                )
            })?,
        Some(other) => {
            return Err(ApiError::bad_field(
                "lease",
                format!("lease must be a duration string like \"15s\", not {other}"),
            ));
        }
    };
    let file = body.remove("file");
    let scenario = match (body.remove("drill"), body.remove("ron")) {
        (None, None) if file.is_some() => match file {
            Some(Value::String(name)) => super::drill_files::scenario(app, &name).await?,
            _ => {
                return Err(ApiError::bad_field(
                    "file",
                    "file must be the name of a drill file in drills/",
                ));
            }
        },
        _ if file.is_some() => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "give the drill as one of `drill`, `ron` or `file`",
            ));
        }
        (Some(drill), None) => {
            let scenario: Scenario = serde_path_to_error::deserialize(drill).map_err(|e| {
                let mut error = ApiError::from_serde(e);
                error.field = Some(match error.field.take() {
                    Some(f) if f != "." => format!("drill.{f}"),
                    _ => "drill".into(),
                });
                error
            })?;
            if let Some((_, message)) = load::check(&scenario).into_iter().next() {
                return Err(ApiError::bad_field("drill", message));
            }
            scenario
        }
        (None, Some(Value::String(text))) => load::parse(Path::new("ron"), &text)
            .map_err(|e| ApiError::bad_field("ron", e.to_string()))?,
        (None, Some(_)) => {
            return Err(ApiError::bad_field(
                "ron",
                "ron must be the drill file's text",
            ));
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "give the drill as `drill` (JSON), `ron` (the file's text) or `file` (a name in drills/), one of them",
            ));
        }
    };
    if let Some(key) = body.keys().next() {
        return Err(ApiError::bad_field(
            key.clone(),
            format!("unknown field `{key}`; POST /v1/drills takes drill, ron or file, and lease"),
        ));
    }
    if !scenario.targets.is_empty() {
        // A server-run drill is held by one lease on one Switchboard; one that spans others
        // is run by `switchboard drill`, which watches every target and rolls them all back.
        return Err(ApiError::bad_field(
            "targets",
            format!(
                "drill {:?} names targets ({}); run it with `switchboard drill`, which holds every target",
                scenario.name,
                scenario
                    .targets
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let status = app.drills().start(app, scenario, lease)?;
    Ok(http::json(StatusCode::CREATED, &status))
}

/// `GET /v1/drills`.
pub fn list(app: &Switchboard) -> Answer {
    Ok(http::json(StatusCode::OK, &app.drills().list()))
}

/// `GET /v1/drills/{id}`.
pub fn get(app: &Switchboard, id: &str) -> Answer {
    Ok(http::json(StatusCode::OK, &app.drills().status(id)?))
}

/// `POST /v1/drills/{id}/lease`.
pub fn renew(app: &Switchboard, id: &str) -> Answer {
    Ok(http::json(StatusCode::OK, &app.drills().renew(id)?))
}

/// `DELETE /v1/drills/{id}`: roll it back now.
pub fn stop(app: &Switchboard, id: &str) -> Answer {
    Ok(http::json(
        StatusCode::OK,
        &app.drills().stop(id, "stopped through the control API")?,
    ))
}

/// `GET /v1/drills/{id}/chart.svg`: the finished drill's chart, as `report.svg` draws it.
pub fn chart(app: &Switchboard, id: &str) -> Answer {
    let status = app.drills().status(id)?;
    let Some(report) = status.report else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("drill {id} has no report yet: it is {}", status.state),
        ));
    };
    Ok(http::with_type(
        StatusCode::OK,
        "image/svg+xml",
        crate::drill::chart::render(&report).into_bytes(),
    ))
}
