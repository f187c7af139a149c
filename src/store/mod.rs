//! The rule set in force, and how it changes.
//!
//! A [`RuleSet`] is immutable; the [`Store`] swaps whole rule sets atomically and tells every
//! subscriber (each open connection) that a new one is current. [`Overrides`] hold run-time
//! changes so that a reload of the files can re-apply them; [`diff`] names what changed.

mod chunked;
mod diff;
mod overrides;
mod request_index;
mod rule_set;
#[allow(clippy::module_inception)]
mod store;
mod watcher;

pub use chunked::Chunked;
pub use diff::{diff, fault_event};
pub use overrides::{FaultMeta, FileRules, Overrides, Removal, ResetReport, Source, Unknown};
pub use request_index::{RequestFault, method_code};
pub use rule_set::RuleSet;
pub use store::Store;
pub use watcher::{DirWatcher, watch_dir};
