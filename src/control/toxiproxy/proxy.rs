//! Toxiproxy's proxies and toxics over Switchboard's routes and faults.

use std::collections::BTreeMap;

use hyper::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::ToxiError;
use super::toxic::{
    self, Toxic, check_toxicity, describe, fault_name, kind_of, parse_stream, toxic_of,
};
use crate::Switchboard;
use crate::app::{FaultUpdate, RouteInfo, RouteUpdate};
use crate::rules::{Direction, Fault, Route};
use crate::store::RuleSet;

/// A proxy as Toxiproxy shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Proxy {
    /// Its name.
    pub name: String,
    /// Where it listens (the real port once bound).
    pub listen: String,
    /// What it forwards to.
    pub upstream: String,
    /// Whether it listens.
    pub enabled: bool,
    /// Its enabled faults, upstream ones first as Toxiproxy lists them.
    pub toxics: Vec<Toxic>,
}

/// The toxics of `route`: its enabled faults.
pub fn toxics_of(rules: &RuleSet, route: &str) -> Vec<Toxic> {
    let order = |d: Direction| match d {
        Direction::Upstream => 0,
        Direction::Downstream => 1,
        Direction::Both => 2,
    };
    let mut faults: Vec<_> = rules.faults_for(route).filter(|f| f.enabled).collect();
    faults.sort_by_key(|f| order(f.direction));
    faults
        .into_iter()
        .filter_map(|f| toxic_of(route, f))
        .collect()
}

/// A route as a proxy.
pub fn proxy_of(info: &RouteInfo, rules: &RuleSet) -> Proxy {
    Proxy {
        name: info.name.clone(),
        listen: info
            .bound
            .map_or_else(|| info.listen.clone(), |a| a.to_string()),
        upstream: info.upstream.clone(),
        enabled: info.enabled,
        toxics: toxics_of(rules, &info.name),
    }
}

/// Every proxy, by name.
pub async fn all(app: &Switchboard) -> BTreeMap<String, Proxy> {
    let rules = app.store().current();
    app.routes()
        .await
        .iter()
        .map(|r| (r.name.clone(), proxy_of(r, &rules)))
        .collect()
}

/// One proxy.
pub async fn one(app: &Switchboard, name: &str) -> Result<Proxy, ToxiError> {
    let info = app
        .route(name)
        .await
        .ok_or_else(ToxiError::proxy_not_found)?;
    Ok(proxy_of(&info, &app.store().current()))
}

fn object(value: Value) -> Result<Map<String, Value>, ToxiError> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ToxiError::bad_request(
            "bad request body: expected a JSON object",
        )),
    }
}

fn string_field(body: &Map<String, Value>, name: &str) -> Result<Option<String>, ToxiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ToxiError::bad_request(format!(
            "bad request body: {name} must be a string, not {other}"
        ))),
    }
}

fn bool_field(body: &Map<String, Value>, name: &str) -> Result<Option<bool>, ToxiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(ToxiError::bad_request(format!(
            "bad request body: {name} must be true or false, not {other}"
        ))),
    }
}

fn required(body: &Map<String, Value>, name: &str) -> Result<String, ToxiError> {
    match string_field(body, name)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(ToxiError::bad_request(format!(
            "missing required field: {name}"
        ))),
    }
}

/// Toxiproxy accepts host names in `listen` ("localhost:0"); routes take addresses.
async fn resolve_listen(listen: &str) -> Result<String, ToxiError> {
    if listen.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(listen.to_string());
    }
    let bad =
        |why: String| ToxiError::bad_request(format!("bad request body: listen {listen:?}: {why}"));
    let mut addrs = tokio::net::lookup_host(listen)
        .await
        .map_err(|e| bad(e.to_string()))?;
    addrs
        .next()
        .map(|a| a.to_string())
        .ok_or_else(|| bad("resolves to no address".into()))
}

/// A route from a Toxiproxy proxy body.
async fn route_of(body: &Map<String, Value>) -> Result<Route, ToxiError> {
    let name = required(body, "name")?;
    let upstream = required(body, "upstream")?;
    // Toxiproxy binds every interface when `listen` is left out; loopback is the safer default.
    let listen = string_field(body, "listen")?.unwrap_or_else(|| "127.0.0.1:0".into());
    let mut route = Route::tcp(name, resolve_listen(&listen).await?, upstream);
    route.enabled = bool_field(body, "enabled")?.unwrap_or(true);
    Ok(route)
}

/// A fault from a Toxiproxy toxic body, for `proxy`.
pub fn fault_of(proxy: &str, body: &Map<String, Value>) -> Result<Fault, ToxiError> {
    let stream = string_field(body, "stream")?.unwrap_or_else(|| "downstream".into());
    let direction = parse_stream(&stream)?;
    let kind_name =
        string_field(body, "type")?.ok_or_else(|| ToxiError::bad_request("invalid toxic type"))?;
    let name = match string_field(body, "name")? {
        Some(n) if !n.is_empty() => n,
        _ => format!("{kind_name}_{stream}"),
    };
    let toxicity = match body.get("toxicity") {
        None | Some(Value::Null) => 1.0,
        Some(v) => v.as_f64().ok_or_else(|| {
            ToxiError::bad_request(format!(
                "bad request body: toxicity must be a number, not {v}"
            ))
        })?,
    };
    let attributes = match body.get("attributes") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(a)) => a.clone(),
        Some(other) => {
            return Err(ToxiError::bad_request(format!(
                "bad request body: attributes must be an object, not {other}"
            )));
        }
    };
    Ok(Fault {
        when: None,
        max_active: None,
        name: fault_name(proxy, &name),
        route: proxy.to_string(),
        enabled: true,
        probability: check_toxicity(toxicity)?,
        direction,
        kind: kind_of(&kind_name, &attributes)?,
    })
}

/// `POST /proxies`.
pub async fn create(app: &Switchboard, body: Value) -> Result<(StatusCode, Value), ToxiError> {
    let route = route_of(&object(body)?).await?;
    let info = app.create_route(route).await?;
    let proxy = proxy_of(&info, &app.store().current());
    Ok((StatusCode::CREATED, json!(proxy)))
}

/// `POST /proxies/{name}` and `PATCH`: a partial update.
pub async fn update(app: &Switchboard, name: &str, body: Value) -> Result<Proxy, ToxiError> {
    let body = object(body)?;
    let listen = match string_field(&body, "listen")? {
        Some(l) => Some(resolve_listen(&l).await?),
        None => None,
    };
    let update = RouteUpdate {
        listen,
        upstream: string_field(&body, "upstream")?,
        enabled: bool_field(&body, "enabled")?,
    };
    let info = app.update_route(name, update).await?;
    Ok(proxy_of(&info, &app.store().current()))
}

/// The enabled fault showing as toxic `toxic` of `proxy`.
fn find_toxic(rules: &RuleSet, proxy: &str, toxic: &str) -> Option<Fault> {
    rules
        .faults_for(proxy)
        .filter(|f| f.enabled)
        .filter(|f| toxic::describe(&f.kind).is_some())
        .find(|f| toxic::toxic_name(proxy, &f.name) == toxic)
        .map(|f| Fault::clone(f))
}

/// `POST /proxies/{name}/toxics`: answers 200, as Toxiproxy does.
pub async fn create_toxic(app: &Switchboard, proxy: &str, body: Value) -> Result<Toxic, ToxiError> {
    let rules = app.store().current();
    if rules.route(proxy).is_none() {
        return Err(ToxiError::proxy_not_found());
    }
    let fault = fault_of(proxy, &object(body)?)?;
    if find_toxic(&rules, proxy, toxic::toxic_name(proxy, &fault.name)).is_some() {
        return Err(ToxiError::new(StatusCode::CONFLICT, "toxic already exists"));
    }
    let created = app.create_fault(fault, None).await?;
    toxic_of(proxy, &created.fault).ok_or_else(ToxiError::toxic_not_found)
}

/// `GET /proxies/{name}/toxics/{toxic}`.
pub fn get_toxic(app: &Switchboard, proxy: &str, toxic: &str) -> Result<Toxic, ToxiError> {
    let rules = app.store().current();
    if rules.route(proxy).is_none() {
        return Err(ToxiError::proxy_not_found());
    }
    let fault = find_toxic(&rules, proxy, toxic).ok_or_else(ToxiError::toxic_not_found)?;
    toxic_of(proxy, &fault).ok_or_else(ToxiError::toxic_not_found)
}

/// `POST /proxies/{name}/toxics/{toxic}` and `PATCH`: attributes given replace theirs, the
/// rest are kept; `toxicity` may change.
pub async fn update_toxic(
    app: &Switchboard,
    proxy: &str,
    toxic: &str,
    body: Value,
) -> Result<Toxic, ToxiError> {
    let rules = app.store().current();
    if rules.route(proxy).is_none() {
        return Err(ToxiError::proxy_not_found());
    }
    let fault = find_toxic(&rules, proxy, toxic).ok_or_else(ToxiError::toxic_not_found)?;
    let body = object(body)?;
    let (kind_name, mut attributes) =
        describe(&fault.kind).ok_or_else(ToxiError::toxic_not_found)?;
    match body.get("attributes") {
        None | Some(Value::Null) => {}
        Some(Value::Object(given)) => attributes.extend(given.clone()),
        Some(other) => {
            return Err(ToxiError::bad_request(format!(
                "bad request body: attributes must be an object, not {other}"
            )));
        }
    }
    let probability = match body.get("toxicity") {
        None | Some(Value::Null) => None,
        Some(v) => Some(check_toxicity(v.as_f64().ok_or_else(|| {
            ToxiError::bad_request(format!(
                "bad request body: toxicity must be a number, not {v}"
            ))
        })?)?),
    };
    let update = FaultUpdate {
        kind: Some(kind_of(kind_name, &attributes)?),
        probability,
        ..FaultUpdate::default()
    };
    let updated = app.update_fault(&fault.name, update).await?;
    toxic_of(proxy, &updated.fault).ok_or_else(ToxiError::toxic_not_found)
}

/// `DELETE /proxies/{name}/toxics/{toxic}`.
pub async fn delete_toxic(app: &Switchboard, proxy: &str, toxic: &str) -> Result<(), ToxiError> {
    let rules = app.store().current();
    if rules.route(proxy).is_none() {
        return Err(ToxiError::proxy_not_found());
    }
    let fault = find_toxic(&rules, proxy, toxic).ok_or_else(ToxiError::toxic_not_found)?;
    app.remove_fault(&fault.name).await?;
    Ok(())
}

/// Reads a populate body or config file: an array of proxies, each optionally with toxics.
pub async fn parse_populate(body: Value) -> Result<Vec<(Route, Vec<Fault>)>, ToxiError> {
    let Value::Array(items) = body else {
        return Err(ToxiError::bad_request(
            "bad request body: expected a JSON array of proxies",
        ));
    };
    let mut parsed = Vec::with_capacity(items.len());
    for item in items {
        let item = object(item)?;
        let route = route_of(&item).await?;
        let faults = match item.get("toxics") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(toxics)) => toxics
                .iter()
                .map(|t| match t {
                    Value::Object(t) => fault_of(&route.name, t),
                    other => Err(ToxiError::bad_request(format!(
                        "bad request body: a toxic must be an object, not {other}"
                    ))),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(ToxiError::bad_request(format!(
                    "bad request body: toxics must be an array, not {other}"
                )));
            }
        };
        parsed.push((route, faults));
    }
    Ok(parsed)
}

/// Creates or replaces every proxy of a populate body, all or nothing; answers them in order.
pub async fn populate(app: &Switchboard, body: Value) -> Result<Vec<Proxy>, ToxiError> {
    let items = parse_populate(body).await?;
    let names: Vec<String> = items.iter().map(|(r, _)| r.name.clone()).collect();
    app.populate(items).await?;
    let mut proxies = Vec::with_capacity(names.len());
    for name in names {
        proxies.push(one(app, &name).await?);
    }
    Ok(proxies)
}
