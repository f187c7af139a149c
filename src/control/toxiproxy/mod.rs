//! Toxiproxy's HTTP API (v2), served beside `/v1` so that its clients drive Switchboard
//! unchanged: proxies are routes, toxics are faults (source `api`), and everything else
//! (`/v1`, ctl, metrics, events, the kill switch) sees them.
//!
//! Where Toxiproxy is wrong we are right: errors are JSON, values are validated, `/populate`
//! is all or nothing and takes toxics.

mod error;
mod proxy;
mod toxic;

pub use error::ToxiError;
pub use proxy::{Proxy, parse_populate};
pub use toxic::Toxic;
#[cfg(test)]
pub(crate) use {proxy::fault_of, toxic::kind_of};

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::http::{self, Body, read_json};
use crate::Switchboard;

/// The Toxiproxy version whose API is matched.
pub const TOXIPROXY_VERSION: &str = "2.12.0";

/// Whether a path belongs to the Toxiproxy API.
pub fn owns(segments: &[&str]) -> bool {
    matches!(
        segments.first(),
        Some(&"proxies") | Some(&"populate") | Some(&"reset") | Some(&"version")
    )
}

/// Answers a Toxiproxy API call.
pub async fn handle(
    app: &Switchboard,
    segments: &[&str],
    request: Request<Incoming>,
) -> Response<Body> {
    match dispatch(app, segments, request).await {
        Ok(response) => response,
        Err(e) => e.response(),
    }
}

async fn body(request: Request<Incoming>) -> Result<serde_json::Value, ToxiError> {
    read_json(request).await.map_err(ToxiError::from)
}

async fn dispatch(
    app: &Switchboard,
    segments: &[&str],
    request: Request<Incoming>,
) -> Result<Response<Body>, ToxiError> {
    let method = request.method().clone();
    let ok = |value: serde_json::Value| http::json(StatusCode::OK, &value);
    Ok(match (segments, &method) {
        (["version"], &Method::GET) => {
            ok(json!({"version": TOXIPROXY_VERSION, "switchboard": env!("CARGO_PKG_VERSION")}))
        }
        (["reset"], &Method::POST) => {
            app.reset().await;
            http::empty(StatusCode::NO_CONTENT)
        }
        (["populate"], &Method::POST) => match proxy::populate(app, body(request).await?).await {
            Ok(proxies) => http::json(StatusCode::CREATED, &json!({ "proxies": proxies })),
            // Toxiproxy's populate errors carry the proxies it made; ours made none.
            Err(e) => {
                let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
                http::json(
                    status,
                    &json!({"error": e.error, "status": e.status, "proxies": null}),
                )
            }
        },
        (["proxies"], &Method::GET) => ok(json!(proxy::all(app).await)),
        (["proxies"], &Method::POST) => {
            let (status, proxy) = proxy::create(app, body(request).await?).await?;
            http::json(status, &proxy)
        }
        (["proxies", name], &Method::GET) => ok(json!(proxy::one(app, name).await?)),
        (["proxies", name], &Method::POST | &Method::PATCH) => {
            let name = name.to_string();
            ok(json!(
                proxy::update(app, &name, body(request).await?).await?
            ))
        }
        (["proxies", name], &Method::DELETE) => {
            app.remove_route(name).await?;
            http::empty(StatusCode::NO_CONTENT)
        }
        (["proxies", name, "toxics"], &Method::GET) => {
            let rules = app.store().current();
            if rules.route(name).is_none() {
                return Err(ToxiError::proxy_not_found());
            }
            ok(json!(proxy::toxics_of(&rules, name)))
        }
        (["proxies", name, "toxics"], &Method::POST) => {
            let name = name.to_string();
            ok(json!(
                proxy::create_toxic(app, &name, body(request).await?).await?
            ))
        }
        (["proxies", name, "toxics", toxic], &Method::GET) => {
            ok(json!(proxy::get_toxic(app, name, toxic)?))
        }
        (["proxies", name, "toxics", toxic], &Method::POST | &Method::PATCH) => {
            let (name, toxic) = (name.to_string(), toxic.to_string());
            ok(json!(
                proxy::update_toxic(app, &name, &toxic, body(request).await?).await?
            ))
        }
        (["proxies", name, "toxics", toxic], &Method::DELETE) => {
            proxy::delete_toxic(app, name, toxic).await?;
            http::empty(StatusCode::NO_CONTENT)
        }
        _ => {
            return Err(ToxiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed on /{}", segments.join("/")),
            ));
        }
    })
}

/// Loads a Toxiproxy JSON config file (an array of proxies, toxics allowed) at start-up.
pub async fn load_config(app: &Switchboard, text: &str) -> Result<usize, ToxiError> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ToxiError::bad_request(format!("bad config: {e}")))?;
    let items = parse_populate(value).await?;
    let count = items.len();
    app.populate(items).await?;
    Ok(count)
}
