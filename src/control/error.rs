//! API errors: a status code and a JSON body that names the problem and, where one is to
//! blame, the field.

use hyper::StatusCode;
use serde::Serialize;

use crate::app::ChangeError;
use crate::fault_json::FaultJsonError;

/// A body that is not a fault or a change to one: a 400 naming the field.
impl From<FaultJsonError> for ApiError {
    fn from(e: FaultJsonError) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            error: e.message,
            field: e.field,
        }
    }
}

/// An error answer of the native API: `{"error": "...", "field": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{status}: {error}")]
pub struct ApiError {
    /// The HTTP status.
    #[serde(skip)]
    pub status: StatusCode,
    /// What is wrong.
    pub error: String,
    /// The request field to blame, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// An error with no field to blame.
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            field: None,
        }
    }

    /// A 400 naming `field`.
    pub fn bad_field(field: impl Into<String>, error: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            error: error.into(),
            field: Some(field.into()),
        }
    }

    pub(crate) fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong token: send Authorization: Bearer <token>",
        )
    }

    pub(crate) fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("no such endpoint: {what}"))
    }

    /// A body that did not deserialize: names the field from the path serde reports, or the
    /// field named in the message when the problem is at the top level.
    pub fn from_serde(e: serde_path_to_error::Error<serde_json::Error>) -> Self {
        FaultJsonError::from_serde(e).into()
    }
}

impl From<ChangeError> for ApiError {
    fn from(e: ChangeError) -> Self {
        let status = match &e {
            ChangeError::UnknownFault(_) | ChangeError::UnknownRoute(_) => StatusCode::NOT_FOUND,
            ChangeError::FaultExists(_)
            | ChangeError::RouteExists(_)
            | ChangeError::FileRoute(_) => StatusCode::CONFLICT,
            ChangeError::Invalid { field, message } => {
                return ApiError {
                    status: StatusCode::BAD_REQUEST,
                    error: message.clone(),
                    field: field.clone(),
                };
            }
            ChangeError::Bind(_) => StatusCode::CONFLICT,
            ChangeError::Rules(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ChangeError::NoRulesDir => StatusCode::CONFLICT,
        };
        // A taken name is the name's fault: a form can mark the input that holds it.
        let field = matches!(e, ChangeError::FaultExists(_)).then(|| "name".to_string());
        ApiError {
            field,
            ..ApiError::new(status, e.to_string())
        }
    }
}
