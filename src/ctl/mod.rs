//! `switchboard ctl`: a thin client of the control endpoint. Tables for people, `--json` for
//! scripts; the server's errors are shown as the server worded them.

mod client;
pub mod fleet;
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
    if let CtlCommand::Watch = command {
        return client
            .follow("/v1/events", |event| {
                if as_json {
                    println!("{event}");
                } else {
                    println!("{}", render::event(&event));
                }
            })
            .await;
    }
    let value = answer(client, &command).await?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        print!("{}", human(&command, &value));
    }
    Ok(())
}

/// The server's answer to `command` (every command but `watch`), as `--json` prints it.
pub async fn answer(client: &Client, command: &CtlCommand) -> Result<Value, CtlError> {
    match command {
        CtlCommand::List => {
            let routes = client.get("/v1/routes").await?;
            let faults = client.get("/v1/faults").await?;
            Ok(json!({ "routes": routes, "faults": faults }))
        }
        CtlCommand::Health => client.get("/healthz").await,
        CtlCommand::Status => client.get("/v1/status").await,
        CtlCommand::Enable { name, ttl } => {
            let body = fault_json::switch_body(true, ttl.clone().map(Value::String));
            client
                .send("PATCH", &format!("/v1/faults/{name}"), Some(body))
                .await
        }
        CtlCommand::Disable { name } => {
            let body = fault_json::switch_body(false, None);
            client
                .send("PATCH", &format!("/v1/faults/{name}"), Some(body))
                .await
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
                name: name.clone(),
                route: route.clone(),
                enabled: !disabled,
                probability: *probability,
                direction: *direction,
                kind: parse_kind(kind)?,
                when: (!clients.is_empty()).then(|| {
                    Box::new(Match {
                        client: clients.clone(),
                        ..Match::default()
                    })
                }),
                max_active: *max_active,
            };
            let body = fault_json::new_fault_body(&fault, ttl.clone().map(Value::String));
            client.send("POST", "/v1/faults", Some(body)).await
        }
        CtlCommand::Remove { name } => {
            let answer = client
                .send("DELETE", &format!("/v1/faults/{name}"), None)
                .await?;
            // 204: it is gone. A file-defined fault stays, switched off, and is shown.
            Ok(if answer.is_null() {
                json!({ "removed": name })
            } else {
                answer
            })
        }
        CtlCommand::Reset => client.send("POST", "/v1/reset", None).await,
        CtlCommand::Watch => Err(CtlError::Usage(
            "watch follows events; it has no single answer".into(),
        )),
    }
}

/// How the answer to `command` reads to a person.
fn human(command: &CtlCommand, value: &Value) -> String {
    match command {
        CtlCommand::List => render::list(&value["routes"], &value["faults"]),
        CtlCommand::Health => "ok\n".to_string(),
        CtlCommand::Status => render::status(value),
        CtlCommand::Reset => render::reset(value),
        CtlCommand::Remove { name } if value.get("removed").is_some() => {
            format!("removed {name}\n")
        }
        CtlCommand::Remove { name } => format!(
            "{name} is defined in a file; switched off instead\n{}",
            render::fault_line(value)
        ),
        _ => render::fault_line(value),
    }
}

/// How long a ctl call may take before it gives up.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
