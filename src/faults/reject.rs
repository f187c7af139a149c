//! Reject (PostgreSQL): a new connection gets a FATAL error at startup and is closed, as a
//! server that has no free connection slot or is still starting answers one.

use serde::{Deserialize, Serialize};

use super::sql_error::{check_message, check_sqlstate};
use super::{FaultSpec, ParamError, Scope};

/// `Reject(code: "53300", message: "sorry, too many clients already")`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reject {
    /// The SQLSTATE: 53300 (too many connections), 57P03 (the database system is starting
    /// up), 28000 (no pg_hba.conf entry), ...
    #[serde(default = "default_code")]
    pub code: String,
    /// The error's text.
    #[serde(default = "default_message")]
    pub message: String,
}

fn default_code() -> String {
    "53300".into()
}

fn default_message() -> String {
    "sorry, too many clients already".into()
}

impl FaultSpec for Reject {
    fn scope(&self) -> Scope {
        Scope::Command
    }

    fn validate(&self) -> Result<(), ParamError> {
        check_sqlstate("code", &self.code)?;
        check_message("message", &self.message)
    }
}
