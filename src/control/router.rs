//! Dispatch by method and path, and the cross-cutting rules: authentication, 404 and 405.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{ALLOW, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::http::{self, Body};
use super::{ApiError, Auth, drill_files, drills, page, sse, toxiproxy, v1};
use crate::Switchboard;

/// Answers one request. Never fails: every error becomes a JSON answer.
pub async fn handle(
    request: Request<Incoming>,
    app: Switchboard,
    auth: Arc<Auth>,
) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path().to_string();
    if request.method() == Method::GET
        && let Some(file) = page::file(&path)
    {
        return Ok(file);
    }
    if path != "/healthz"
        && let Err(e) = auth.check(request.headers())
    {
        return Ok(http::error(&e));
    }
    let method = request.method().clone();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let answer = match (segments.as_slice(), &method) {
        (["healthz"], &Method::GET) => Ok(http::json(
            StatusCode::OK,
            &serde_json::json!({"status": "ok"}),
        )),
        (["metrics"], &Method::GET) => Ok(http::with_type(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            app.metrics().encode().into_bytes(),
        )),
        (["v1", "status"], &Method::GET) => Ok(http::json(StatusCode::OK, &app.status().await)),
        (["v1", "routes"], &Method::GET) => Ok(http::json(StatusCode::OK, &app.routes().await)),
        (["v1", "routes", name], &Method::GET) => v1::route(&app, name).await,
        (["v1", "faults"], &Method::GET) => Ok(http::json(StatusCode::OK, &app.faults())),
        (["v1", "faults"], &Method::POST) => v1::create_fault(&app, request).await,
        (["v1", "faults", name], &Method::GET) => v1::get_fault(&app, name),
        (["v1", "faults", name], &Method::PATCH) => {
            let name = name.to_string();
            v1::update_fault(&app, &name, request).await
        }
        (["v1", "faults", name], &Method::DELETE) => v1::delete_fault(&app, name).await,
        (["v1", "kinds"], &Method::GET) => Ok(http::json(
            StatusCode::OK,
            &crate::faults::catalogue::catalogue(),
        )),
        (["v1", "reset"], &Method::POST) => Ok(http::json(StatusCode::OK, &app.reset().await)),
        (["v1", "events"], &Method::GET) => Ok(sse::events(&app)),
        (["v1", "drills"], &Method::GET) => drills::list(&app),
        (["v1", "drill-files"], &Method::GET) => drill_files::list(&app).await,
        (["v1", "drills"], &Method::POST) => drills::start(&app, request).await,
        (["v1", "drills", id], &Method::GET) => drills::get(&app, id),
        (["v1", "drills", id], &Method::DELETE) => drills::stop(&app, id),
        (["v1", "drills", id, "lease"], &Method::POST) => drills::renew(&app, id),
        (["v1", "drills", id, "chart.svg"], &Method::GET) => drills::chart(&app, id),
        (segments, _) if toxiproxy::owns(segments) => {
            Ok(toxiproxy::handle(&app, segments, request).await)
        }
        (segments, _) => Err(match allowed(segments) {
            Some(allow) => return Ok(method_not_allowed(&method, allow)),
            None => ApiError::not_found(&path),
        }),
    };
    Ok(answer.unwrap_or_else(|e| http::error(&e)))
}

/// The methods a known path takes, for 405 answers.
fn allowed(segments: &[&str]) -> Option<&'static str> {
    match segments {
        [""]
        | ["healthz"]
        | ["metrics"]
        | ["v1", "status"]
        | ["v1", "routes"]
        | ["v1", "routes", _]
        | ["v1", "events"]
        | ["v1", "drill-files"]
        | ["v1", "kinds"] => Some("GET"),
        ["v1", "faults"] => Some("GET, POST"),
        ["v1", "faults", _] => Some("GET, PATCH, DELETE"),
        ["v1", "reset"] | ["v1", "drills", _, "lease"] => Some("POST"),
        ["v1", "drills"] => Some("GET, POST"),
        ["v1", "drills", _] => Some("GET, DELETE"),
        ["v1", "drills", _, "chart.svg"] => Some("GET"),
        _ => None,
    }
}

fn method_not_allowed(method: &Method, allow: &'static str) -> Response<Body> {
    let error = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed here; use {allow}"),
    );
    let mut response = http::error(&error);
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}
