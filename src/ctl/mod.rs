//! `switchboard ctl`: a thin client of the control endpoint. Tables for people, `--json` for
//! scripts; the server's errors are shown as the server worded them.

mod client;
mod render;

pub use client::{Client, CtlError};

use std::time::Duration;

use serde_json::{Value, json};

use crate::fault_json;
use crate::faults::FaultKind;
use crate::rules::{ClientNet, Direction, Fault, Match};

/// What to ask the control endpoint.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum CtlCommand {
    /// Routes with their counters, and faults.
    List,
    /// Version, uptime, last reload and the last rejected one.
    Status,
    /// Exit 0 when the endpoint answers `/healthz` (for container health checks: no token).
    Health,
    /// Switch a fault on.
    Enable {
        /// The fault.
        name: String,
        /// Switch it off again after this long (e.g. 30s, 5m).
        #[arg(long)]
        ttl: Option<String>,
    },
    /// Switch a fault off.
    Disable {
        /// The fault.
        name: String,
    },
    /// Add a fault, e.g. `add slow --route redis 'Latency(ms: 100)'`.
    Add {
        /// Its name.
        name: String,
        /// The route it acts on.
        #[arg(long)]
        route: String,
        /// The kind, as in a rules file: `Latency(ms: 100, jitter_ms: 10)`.
        kind: String,
        /// The share of connections it applies to.
        #[arg(long, default_value_t = 1.0)]
        probability: f64,
        /// upstream, downstream or both.
        #[arg(long, default_value = "downstream", value_parser = parse_direction)]
        direction: Direction,
        /// Switch it off after this long (e.g. 30s, 5m).
        #[arg(long)]
        ttl: Option<String>,
        /// Add it switched off.
        #[arg(long)]
        disabled: bool,
        /// Only for clients from this address or network (`127.0.0.2`, `10.1.0.0/16`);
        /// repeat or separate with commas for several.
        #[arg(long, value_delimiter = ',', value_parser = ClientNet::parse)]
        client: Vec<ClientNet>,
        /// At most this many connections, requests or commands under it at once.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        max_active: Option<u32>,
    },
    /// Remove an API-created fault (a file-defined one is switched off).
    Remove {
        /// The fault.
        name: String,
    },
    /// Switch every fault off at once and remove API-created ones.
    Reset,
    /// Follow events as they happen.
    Watch,
}

fn parse_direction(s: &str) -> Result<Direction, String> {
    match s.to_ascii_lowercase().as_str() {
        "upstream" => Ok(Direction::Upstream),
        "downstream" => Ok(Direction::Downstream),
        "both" => Ok(Direction::Both),
        _ => Err(format!("{s:?}: expected upstream, downstream or both")),
    }
}

/// Parses a fault kind written as in a rules file.
pub fn parse_kind(text: &str) -> Result<FaultKind, CtlError> {
    crate::rules::ron_options()
        .from_str(text)
        .map_err(|e| CtlError::Usage(format!("kind {text:?}: {e}")))
}

/// Runs one command and prints its answer to stdout.
pub async fn run(client: &Client, command: CtlCommand, as_json: bool) -> Result<(), CtlError> {
    let print = |value: &Value, human: &dyn Fn(&Value) -> String| {
        if as_json {
            println!(
                "{}",
                serde_json::to_string_pretty(value).unwrap_or_default()
            );
        } else {
            print!("{}", human(value));
        }
    };
    match command {
        CtlCommand::List => {
            let routes = client.get("/v1/routes").await?;
            let faults = client.get("/v1/faults").await?;
            let both = json!({ "routes": routes, "faults": faults });
            print(&both, &|v| render::list(&v["routes"], &v["faults"]));
        }
        CtlCommand::Health => {
            let health = client.get("/healthz").await?;
            print(&health, &|_| "ok\n".to_string());
        }
        CtlCommand::Status => {
            let status = client.get("/v1/status").await?;
            print(&status, &render::status);
        }
        command @ (CtlCommand::Enable { .. }
        | CtlCommand::Disable { .. }
        | CtlCommand::Add { .. }
        | CtlCommand::Remove { .. }) => {
            let (answer, human) = edit_fault(client, command).await?;
            print(&answer, &*human);
        }
        CtlCommand::Reset => {
            let answer = client.send("POST", "/v1/reset", None).await?;
            print(&answer, &render::reset);
        }
        CtlCommand::Watch => {
            client
                .follow("/v1/events", |event| {
                    if as_json {
                        println!("{event}");
                    } else {
                        println!("{}", render::event(&event));
                    }
                })
                .await?;
        }
    }
    Ok(())
}

/// How a command's answer reads to a person.
type Human = Box<dyn Fn(&Value) -> String>;

/// Runs a command that changes one fault: its answer, and how to show it.
async fn edit_fault(client: &Client, command: CtlCommand) -> Result<(Value, Human), CtlError> {
    match command {
        CtlCommand::Enable { name, ttl } => {
            let body = fault_json::switch_body(true, ttl.map(Value::String));
            let fault = client
                .send("PATCH", &format!("/v1/faults/{name}"), Some(body))
                .await?;
            Ok((fault, Box::new(render::fault_line)))
        }
        CtlCommand::Disable { name } => {
            let body = fault_json::switch_body(false, None);
            let fault = client
                .send("PATCH", &format!("/v1/faults/{name}"), Some(body))
                .await?;
            Ok((fault, Box::new(render::fault_line)))
        }
        CtlCommand::Add {
            name,
            route,
            kind,
            probability,
            direction,
            ttl,
            disabled,
            client: clients,
            max_active,
        } => {
            let fault = Fault {
                name,
                route,
                enabled: !disabled,
                probability,
                direction,
                kind: parse_kind(&kind)?,
                when: (!clients.is_empty()).then(|| {
                    Box::new(Match {
                        client: clients,
                        ..Match::default()
                    })
                }),
                max_active,
            };
            let body = fault_json::new_fault_body(&fault, ttl.map(Value::String));
            let fault = client.send("POST", "/v1/faults", Some(body)).await?;
            Ok((fault, Box::new(render::fault_line)))
        }
        CtlCommand::Remove { name } => {
            let answer = client
                .send("DELETE", &format!("/v1/faults/{name}"), None)
                .await?;
            if answer.is_null() {
                let removed = format!("removed {name}\n");
                Ok((
                    json!({ "removed": name }),
                    Box::new(move |_| removed.clone()),
                ))
            } else {
                Ok((
                    answer,
                    Box::new(move |v| {
                        format!(
                            "{} is defined in a file; switched off instead\n{}",
                            name,
                            render::fault_line(v)
                        )
                    }),
                ))
            }
        }
        other => Err(CtlError::Usage(format!(
            "{other:?} does not change a fault"
        ))),
    }
}

/// How long a ctl call may take before it gives up.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
