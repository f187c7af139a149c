//! SqlError (PostgreSQL): a statement fails with an SQLSTATE, exactly as the server fails one,
//! as a read-only standby fails a write (`25006`) or a busy primary a serializable
//! transaction (`40001`).

use serde::{Deserialize, Serialize};

use super::{FaultSpec, ParamError, Scope};

/// `SqlError(code: "25006", message: "cannot execute INSERT in a read-only transaction")`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlError {
    /// The five-character SQLSTATE clients branch on.
    pub code: String,
    /// The error's text; `{statement}` stands for the statement's first keyword, upper-cased,
    /// as PostgreSQL names the command it refused.
    pub message: String,
}

impl FaultSpec for SqlError {
    fn scope(&self) -> Scope {
        Scope::Command
    }

    fn validate(&self) -> Result<(), ParamError> {
        check_sqlstate("code", &self.code)?;
        check_message("message", &self.message)
    }
}

/// An SQLSTATE is five digits or upper-case letters; its first two name the class.
pub(crate) fn check_sqlstate(field: &'static str, code: &str) -> Result<(), ParamError> {
    let valid = code.len() == 5
        && code
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
    if valid {
        return Ok(());
    }
    Err(ParamError::new(
        field,
        format!(
            "{code:?} is not an SQLSTATE: five digits or upper-case letters, such as \"25006\""
        ),
    ))
}

/// A message travels as a C string in the error response: it cannot hold a NUL byte.
pub(crate) fn check_message(field: &'static str, message: &str) -> Result<(), ParamError> {
    if message.is_empty() {
        return Err(ParamError::new(field, "is empty"));
    }
    if message.contains('\0') {
        return Err(ParamError::new(field, "contains a NUL character"));
    }
    Ok(())
}
