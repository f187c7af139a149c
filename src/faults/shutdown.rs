//! Shutdown (PostgreSQL): a matching statement gets a FATAL error and the connection closes,
//! as every client of a primary sees when a failover or `pg_terminate_backend` ends it.

use serde::{Deserialize, Serialize};

use super::sql_error::{check_message, check_sqlstate};
use super::{FaultSpec, ParamError, Scope};

/// `Shutdown(code: "57P01", message: "terminating connection due to administrator command")`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shutdown {
    /// The SQLSTATE; PostgreSQL's own are 57P01 (administrator), 57P02 (crash of another
    /// backend) and 57P03 (cannot connect now).
    #[serde(default = "default_code")]
    pub code: String,
    /// The error's text.
    #[serde(default = "default_message")]
    pub message: String,
}

fn default_code() -> String {
    "57P01".into()
}

fn default_message() -> String {
    "terminating connection due to administrator command".into()
}

impl FaultSpec for Shutdown {
    fn scope(&self) -> Scope {
        Scope::Command
    }

    fn validate(&self) -> Result<(), ParamError> {
        check_sqlstate("code", &self.code)?;
        check_message("message", &self.message)
    }
}
