//! Switchboard: a chaos-injection proxy. It passes TCP traffic through untouched until its
//! rules say otherwise, then injects latency, throttling, resets, partitions and more.
//!
//! # Layout
//!
//! - [`rules`]: the RON rule format, loading with `file:line:col` errors, validation.
//! - [`store`]: the immutable [`store::RuleSet`] and the [`store::Store`] that swaps it.
//! - [`faults`]: the closed set of fault kinds, one file each, and seeded randomness.
//! - [`proxy`]: route listeners and the per-connection pump that applies faults in line.
//! - [`telemetry`]: counters and log setup.
//! - [`app`]: assembles the above into a running [`Switchboard`].
//! - [`shutdown`]: the drain signal.
//!
//! Data flows one way: rules → validation → a new rule set → swap → the next step of every
//! connection sees it.

pub mod app;
pub mod faults;
pub mod proxy;
pub mod rules;
pub mod shutdown;
pub mod store;
pub mod telemetry;

pub use app::{Config, StartError, Switchboard};
