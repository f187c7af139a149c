//! The rule model: routes and faults as they are written in RON files, how those files are
//! loaded, and how a set of them is validated as a whole.
//!
//! Invariant: nothing leaves this module as a [`crate::store::RuleSet`] unless every file parsed
//! and the merged result passed validation; every problem found carries `file:line:col`.

mod client;
mod error;
mod guard;
mod load;
mod locate;
mod model;
#[cfg(test)]
pub(crate) mod proptests;
mod targeting;
mod validate;

pub use error::{Problem, RulesError};
pub use guard::{MAX_WINDOW, MIN_WINDOW};
pub(crate) use load::ron_options;
pub use load::{LoadOptions, load_dir, load_paths, load_texts, parse_source};
pub use model::{
    ClientNet, DEFAULT_MAX_FLOWS, Direction, Fault, Guard, GuardAction, Match, Pattern, Protocol,
    Route, RouteTimeouts, RulesFile, TlsFiles, client_allowed,
};
pub use validate::{Finding, MAX_NAME, Policy, Subject, check_name, validate};
