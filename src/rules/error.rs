//! Errors from loading rules. Every problem is tied to a place in a file.

use std::fmt;
use std::path::PathBuf;

/// One thing wrong with the rules, at `file:line:col`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The file, as it was named when loaded.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// Why a set of rules could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// A file or directory could not be read.
    #[error("{}: {reason}", path.display())]
    Io {
        /// What was being read.
        path: PathBuf,
        /// The operating system's reason; part of this error's message, so not also its
        /// source (an error chain would print it twice).
        reason: std::io::Error,
    },
    /// The rules were read but are not valid; every problem found is listed.
    #[error("{}", display_problems(problems))]
    Invalid {
        /// In file order.
        problems: Vec<Problem>,
    },
}

fn display_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl RulesError {
    /// The problems, if the rules were read but invalid.
    pub fn problems(&self) -> &[Problem] {
        match self {
            RulesError::Invalid { problems } => problems,
            RulesError::Io { .. } => &[],
        }
    }
}
