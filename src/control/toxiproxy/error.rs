//! Errors as Toxiproxy sends them: `{"error": "...", "status": N}`, but with
//! `Content-Type: application/json` (Toxiproxy says `text/plain`).

use hyper::{Response, StatusCode};
use serde::Serialize;

use crate::app::ChangeError;
use crate::control::ApiError;
use crate::control::http::{self, Body};

/// An error answer of the Toxiproxy API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToxiError {
    /// Toxiproxy's wording.
    pub error: String,
    /// The HTTP status, repeated in the body as Toxiproxy does.
    pub status: u16,
}

impl ToxiError {
    /// An error with `status`.
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        ToxiError {
            error: error.into(),
            status: status.as_u16(),
        }
    }

    /// A 400.
    pub fn bad_request(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error)
    }

    /// Toxiproxy's 404 for a proxy.
    pub fn proxy_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "proxy not found")
    }

    /// Toxiproxy's 404 for a toxic.
    pub fn toxic_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "toxic not found")
    }

    /// The answer.
    pub fn response(&self) -> Response<Body> {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        http::json(status, self)
    }
}

impl From<ApiError> for ToxiError {
    fn from(e: ApiError) -> Self {
        let error = match e.status {
            StatusCode::BAD_REQUEST => format!("bad request body: {}", e.error),
            _ => e.error,
        };
        ToxiError {
            error,
            status: e.status.as_u16(),
        }
    }
}

impl From<ChangeError> for ToxiError {
    fn from(e: ChangeError) -> Self {
        match e {
            ChangeError::UnknownRoute(_) => Self::proxy_not_found(),
            ChangeError::RouteExists(_) => Self::new(StatusCode::CONFLICT, "proxy already exists"),
            ChangeError::UnknownFault(_) => Self::toxic_not_found(),
            ChangeError::FaultExists(_) => Self::new(StatusCode::CONFLICT, "toxic already exists"),
            ChangeError::Invalid { message, .. } => {
                Self::bad_request(format!("bad request body: {message}"))
            }
            ChangeError::FileRoute(_) => Self::new(StatusCode::CONFLICT, e.to_string()),
            // Toxiproxy reports a listener that cannot start as a server error.
            other => Self::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}
