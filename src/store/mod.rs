//! The rule set in force, and how it is replaced.
//!
//! A [`RuleSet`] is immutable; the [`Store`] swaps whole rule sets atomically and tells every
//! subscriber (each open connection) that a new one is current.

mod rule_set;
#[allow(clippy::module_inception)]
mod store;

pub use rule_set::RuleSet;
pub use store::Store;
