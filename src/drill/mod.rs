//! Game-day drills: a scenario of faults over time, a steady-state hypothesis sampled by
//! probes, automatic rollback, and a report of how long the system took to degrade and to
//! recover.
//!
//! - [`scenario`]: the drill file format; [`load`] reads it with `file:line:col` errors;
//!   [`check`] checks it against the rules next to it, and prints a dry run.
//! - [`timeline`]: steps expanded into timed changes (ramps, flaps).
//! - [`probe`]: sampling HTTP and TCP probes.
//! - [`control`]: where changes go (a remote control endpoint, or this process).
//! - [`runner`]: the phases; [`measure`]: the measures and verdicts.
//! - [`report`], [`markdown`], [`chart`]: `report.json`, `report.md`, `report.svg`.
//! - [`compare`]: a run against an earlier one, for CI.
//! - [`cli`]: `switchboard drill`, with its progress bar.
//! - [`registry`]: drills the server runs (`POST /v1/drills`), each held by a lease.

pub mod chart;
pub mod check;
pub mod cli;
pub mod compare;
pub mod control;
pub mod durability;
mod error;
pub mod load;
pub mod markdown;
pub mod measure;
pub mod probe;
#[cfg(test)]
mod proptests;
pub mod registry;
pub mod report;
mod route_probe;
pub mod runner;
pub mod scenario;
pub mod timeline;

pub use control::{Control, Controls};
pub use error::DrillError;
pub use report::Report;
pub use runner::{Phase, Progress, run};
pub use scenario::Scenario;
