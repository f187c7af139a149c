//! Why a change to the rules was refused.

use crate::proxy::ProxyError;
use crate::rules::RulesError;

/// A refused change. The rules in force are untouched.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// No fault has that name.
    #[error("no fault named {0:?}")]
    UnknownFault(String),
    /// No route has that name.
    #[error("no route named {0:?}")]
    UnknownRoute(String),
    /// The name is taken.
    #[error("a fault named {0:?} already exists")]
    FaultExists(String),
    /// The name is taken.
    #[error("a route named {0:?} already exists")]
    RouteExists(String),
    /// The result would not be valid.
    #[error("{message}")]
    Invalid {
        /// The field to blame, when one is.
        field: Option<String>,
        /// Why.
        message: String,
    },
    /// A route file-defined cannot be changed from the API.
    #[error("route {0:?} is defined in a rules file; change it there")]
    FileRoute(String),
    /// A listener could not be bound.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Bind(Vec<ProxyError>),
    /// The rules directory did not load.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// There is no rules directory to reload.
    #[error("switchboard was started without a rules directory")]
    NoRulesDir,
}
