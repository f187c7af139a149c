//! Every integration test but the soak and timer_entries (which counts a process-wide timer,
//! so it must have the process to itself), as one test binary: the modules below are the test
//! files, and `support`, `pg` and `rd` what they share. One binary links once and compiles the
//! shared code once, where a binary per file did both three dozen times.
//!
//!   cargo test --test integration caps::        # one file's tests
//!   cargo test --test integration               # all of them

mod pg;
mod rd;
mod support;

mod caps;
mod cli;
mod control_api;
mod ctl;
mod dns;
mod drill_terminal;
mod drills;
mod faults;
mod fleet;
mod fleet_drill;
mod guards;
mod hardening;
mod http;
mod http_streaming;
mod http_tls;
mod kubernetes;
mod live_changes;
mod locks;
mod page;
mod passthrough;
mod per_client;
mod postgres;
mod postgres_faults;
mod postgres_protocol;
mod postgres_tls;
mod probability;
mod process_limits;
mod python_clients;
mod redis;
mod redis_sessions;
mod reload;
mod request_faults;
mod rto;
mod shutdown;
mod sse_memory;
mod toxiproxy_api;
mod udp;
mod websocket;
