//! The integration-test harness: a Switchboard on ephemeral ports, upstreams to put behind
//! it, and waiting on conditions with a deadline instead of sleeping.
#![allow(dead_code)] // each test file uses part of the harness

pub mod upstream;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use switchboard::rules::{LoadOptions, load_texts};
use switchboard::store::RuleSet;
use switchboard::{Config, Switchboard};

/// A running Switchboard and its route addresses.
pub struct Harness {
    pub app: Switchboard,
}

/// Parses RON rules the way a file would be, except that port 0 is allowed.
pub fn rules(ron: &str) -> RuleSet {
    load_texts(
        &[(PathBuf::from("test.ron"), ron.to_string())],
        LoadOptions {
            allow_ephemeral_listen: true,
        },
    )
    .unwrap_or_else(|e| panic!("test rules are invalid:\n{e}"))
}

/// Starts a Switchboard on `ron` with a fixed seed.
pub async fn spawn_switchboard(ron: &str) -> Harness {
    spawn_seeded(ron, 7).await
}

/// Starts a Switchboard on `ron` with `seed`.
pub async fn spawn_seeded(ron: &str, seed: u64) -> Harness {
    let app = Switchboard::start(rules(ron), Config { seed: Some(seed) })
        .await
        .expect("switchboard starts");
    Harness { app }
}

impl Harness {
    /// Where `route` listens.
    pub async fn addr(&self, route: &str) -> SocketAddr {
        self.app
            .route_addr(route)
            .await
            .unwrap_or_else(|| panic!("route {route} is not bound"))
    }

    /// Replaces the rules, as a reload would. Listen addresses must stay the same (port 0
    /// routes keep their port only if their `listen` text is unchanged).
    pub async fn set_rules(&self, ron: &str) {
        let errors = self.app.apply(rules(ron)).await;
        assert!(errors.is_empty(), "rebinding failed: {errors:?}");
    }
}

/// One TCP route named `name` in front of `upstream`, plus `faults` (RON list items).
pub fn route_with(name: &str, upstream: SocketAddr, faults: &str) -> String {
    format!(
        r#"(
  routes: [(name: "{name}", protocol: Tcp, listen: "127.0.0.1:0", upstream: "{upstream}")],
  faults: [{faults}],
)"#
    )
}

/// Polls `condition` until it holds or `deadline` passes; panics with `what` then.
pub async fn eventually<F, Fut>(deadline: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if condition().await {
            return;
        }
        if tokio::time::Instant::now() >= end {
            panic!("timed out after {deadline:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
