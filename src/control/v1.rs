//! Handlers of the native `/v1` API that take or shape request bodies.

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use super::ApiError;
use super::http::{self, Body, read_json};
use crate::Switchboard;
use crate::fault_json;
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
    let (fault, ttl) = fault_json::read_new_fault(read_json(request).await?)?;
    let created = app.create_fault(fault, ttl).await?;
    Ok(http::json(StatusCode::CREATED, &created))
}

pub async fn update_fault(app: &Switchboard, name: &str, request: Request<Incoming>) -> Answer {
    let body = read_json(request).await?;
    let current = app.fault(name)?.fault;
    let update = fault_json::read_update(&current, body)?;
    Ok(http::json(
        StatusCode::OK,
        &app.update_fault(name, update).await?,
    ))
}

pub async fn delete_fault(app: &Switchboard, name: &str) -> Answer {
    match app.remove_fault(name).await? {
        Removal::Deleted => Ok(http::empty(StatusCode::NO_CONTENT)),
        // A file-defined fault stays, switched off: show it.
        Removal::Disabled => Ok(http::json(StatusCode::OK, &app.fault(name)?)),
    }
}
