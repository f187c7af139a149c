//! Switchboard: a chaos-injection proxy. It passes TCP traffic through untouched until its
//! rules say otherwise, then injects latency, throttling, resets, partitions and more.
//!
//! # Layout
//!
//! - [`rules`]: the RON rule format, loading with `file:line:col` errors, validation.
//! - [`store`]: the immutable [`store::RuleSet`], the [`store::Store`] that swaps it, run-time
//!   overrides, the directory watcher.
//! - [`faults`]: the closed set of fault kinds, one file each, and seeded randomness.
//! - [`proxy`]: route listeners and the per-connection loop that applies faults in line.
//! - [`control`]: the HTTP control endpoint (`/v1`, `/metrics`, `/healthz`).
//! - [`ctl`]: the `switchboard ctl` client of that endpoint.
//! - [`fault_json`]: the `/v1/faults` JSON of a fault and of a change to one, which the
//!   endpoint reads and `ctl` and drills write.
//! - [`drill`]: game-day drills: scenarios over time, probes, rollback, recovery reports.
//! - [`telemetry`]: metrics, events, log setup.
//! - [`app`]: assembles the above into a running [`Switchboard`]; every change goes through it.
//! - [`tls`]: rustls configurations for routes and upstreams.
//! - [`shutdown`]: the drain signal.
//!
//! Data flows one way: a file or an API call → validation → a new rule set → swap → the next
//! step of every connection sees it.

pub mod app;
pub mod control;
pub mod ctl;
pub mod drill;
pub mod fault_json;
pub mod faults;
pub mod proxy;
pub mod report;
pub mod rules;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod tls;

pub use app::{ChangeError, Config, StartError, Switchboard};
