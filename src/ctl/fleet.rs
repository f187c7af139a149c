//! `ctl --targets …`: one command on many Switchboards at once (a sidecar per service), each
//! target's result in a table, and a non-zero exit naming every target that did not answer.
//! Discovery is the platform's: `dns:NAME:PORT` takes every address of a name, which is what
//! a Kubernetes headless Service or a scaled compose service gives.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::{Client, CtlCommand, CtlError, answer, human, render};

/// One Switchboard of a fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Its control endpoint, `http://10.0.0.7:8474`.
    pub url: String,
    /// Its token, when it has one of its own.
    pub token: Option<String>,
}

/// A target as written: a URL, or `dns:NAME:PORT` for every address of NAME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// One endpoint.
    Url(String),
    /// Every address the name resolves to, at this port.
    Dns {
        /// The name to resolve.
        name: String,
        /// The control port.
        port: u16,
    },
}

impl TargetSpec {
    /// Reads `http://host:port`, `https://…` or `dns:NAME:PORT`.
    pub fn parse(text: &str) -> Result<Self, CtlError> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("dns:") {
            let (name, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| CtlError::Usage(format!("target {text:?}: write dns:NAME:PORT")))?;
            let port = port
                .parse()
                .map_err(|_| CtlError::Usage(format!("target {text:?}: {port:?} is not a port")))?;
            if name.is_empty() {
                return Err(CtlError::Usage(format!(
                    "target {text:?}: the name is empty"
                )));
            }
            return Ok(TargetSpec::Dns {
                name: name.to_string(),
                port,
            });
        }
        if text.starts_with("http://") || text.starts_with("https://") {
            return Ok(TargetSpec::Url(text.trim_end_matches('/').to_string()));
        }
        Err(CtlError::Usage(format!(
            "target {text:?}: use http://HOST:PORT, https://HOST:PORT or dns:NAME:PORT"
        )))
    }
}

/// Reads a targets file: one target per line, optionally followed by its token; blank lines
/// and lines starting with `#` are skipped.
pub fn read_targets_file(text: &str) -> Result<Vec<(TargetSpec, Option<String>)>, CtlError> {
    let mut targets = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let spec = words.next().unwrap_or_default();
        let token = words.next().map(str::to_string);
        if words.next().is_some() {
            return Err(CtlError::Usage(format!(
                "targets file line {}: expected a target and at most a token",
                number + 1
            )));
        }
        let spec = TargetSpec::parse(spec)
            .map_err(|e| CtlError::Usage(format!("targets file line {}: {e}", number + 1)))?;
        targets.push((spec, token));
    }
    Ok(targets)
}

/// The targets `specs` name, `dns:` names resolved; the same endpoint twice is kept once.
pub async fn resolve(specs: Vec<(TargetSpec, Option<String>)>) -> Result<Vec<Target>, CtlError> {
    let mut targets: Vec<Target> = Vec::new();
    for (spec, token) in specs {
        let urls = match spec {
            TargetSpec::Url(url) => vec![url],
            TargetSpec::Dns { name, port } => {
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
                    .await
                    .map_err(|e| CtlError::Usage(format!("dns:{name}:{port}: {e}")))?
                    .collect();
                let urls = urls_of(&addrs);
                if urls.is_empty() {
                    return Err(CtlError::Usage(format!(
                        "dns:{name}:{port}: the name has no addresses"
                    )));
                }
                urls
            }
        };
        for url in urls {
            if !targets.iter().any(|t| t.url == url) {
                targets.push(Target {
                    url,
                    token: token.clone(),
                });
            }
        }
    }
    if targets.is_empty() {
        return Err(CtlError::Usage("no targets given".into()));
    }
    Ok(targets)
}

/// One `http://` URL per distinct address, in the resolver's order.
fn urls_of(addrs: &[SocketAddr]) -> Vec<String> {
    let mut urls: Vec<String> = Vec::new();
    for addr in addrs {
        // SocketAddr writes an IPv6 address in brackets, as a URL needs.
        let url = format!("http://{addr}");
        if !urls.contains(&url) {
            urls.push(url);
        }
    }
    urls
}

/// What one target answered.
#[derive(Debug)]
struct Outcome {
    target: String,
    result: Result<Value, String>,
}

/// Runs `command` on every target at once, each given `deadline` to answer, and prints a
/// table (or `--json`, an object per target). Fails naming every target that did not answer.
pub async fn run(
    clients: Vec<Client>,
    command: CtlCommand,
    as_json: bool,
    deadline: Duration,
) -> Result<(), CtlError> {
    if let CtlCommand::Watch = command {
        return watch(clients, as_json).await;
    }
    let mut calls = JoinSet::new();
    for (index, client) in clients.iter().cloned().enumerate() {
        let command = command.clone();
        calls.spawn(async move {
            let target = client.base().to_string();
            let result = match tokio::time::timeout(deadline, answer(&client, &command)).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!(
                    "no answer within {}",
                    humantime::format_duration(deadline)
                )),
            };
            (index, Outcome { target, result })
        });
    }
    let mut outcomes: Vec<(usize, Outcome)> = Vec::new();
    while let Some(done) = calls.join_next().await {
        match done {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => {
                return Err(CtlError::Usage(format!("a target's call failed: {e}")));
            }
        }
    }
    // The table lists targets in the order they were given, whatever order they answered in.
    outcomes.sort_by_key(|(index, _)| *index);
    let outcomes: Vec<Outcome> = outcomes.into_iter().map(|(_, o)| o).collect();
    if as_json {
        let objects: Vec<Value> = outcomes.iter().map(outcome_json).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&objects).unwrap_or_default()
        );
    } else {
        print!("{}", table(&command, &outcomes));
    }
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|o| {
            o.result
                .as_ref()
                .err()
                .map(|e| format!("{}: {e}", o.target))
        })
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(CtlError::Fleet {
        failed: failed.len(),
        of: outcomes.len(),
        what: if matches!(command, CtlCommand::Reset) {
            "confirmed the reset"
        } else {
            "answered"
        },
        targets: failed.join("; "),
    })
}

fn outcome_json(outcome: &Outcome) -> Value {
    match &outcome.result {
        Ok(answer) => json!({ "target": outcome.target, "ok": true, "answer": answer }),
        Err(error) => json!({ "target": outcome.target, "ok": false, "error": error }),
    }
}

/// Every target's answer in one view: `list` and `status` merged into tables with a TARGET
/// column, other commands a line per target.
fn table(command: &CtlCommand, outcomes: &[Outcome]) -> String {
    let answered: Vec<(&str, &Value)> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().ok().map(|v| (o.target.as_str(), v)))
        .collect();
    let failures: Vec<Vec<String>> = outcomes
        .iter()
        .filter_map(|o| {
            o.result
                .as_ref()
                .err()
                .map(|e| vec![o.target.clone(), format!("FAILED: {e}")])
        })
        .collect();
    let mut out = match command {
        CtlCommand::List => render::fleet_list(&answered),
        CtlCommand::Status => render::fleet_status(&answered),
        _ => {
            let rows: Vec<Vec<String>> = outcomes
                .iter()
                .map(|o| match &o.result {
                    Ok(value) => vec![o.target.clone(), summary(command, value)],
                    Err(e) => vec![o.target.clone(), format!("FAILED: {e}")],
                })
                .collect();
            return render::table(&["TARGET", "RESULT"], &rows);
        }
    };
    if !failures.is_empty() {
        out.push('\n');
        out.push_str(&render::table(&["TARGET", "ERROR"], &failures));
    }
    out
}

/// A command's answer on one line.
fn summary(command: &CtlCommand, value: &Value) -> String {
    match command {
        CtlCommand::Enable { .. } | CtlCommand::Disable { .. } | CtlCommand::Add { .. } => {
            render::fault_summary(value)
        }
        _ => human(command, value).lines().collect::<Vec<_>>().join("; "),
    }
}

/// Follows every target's events, each line led by its target; ends when every stream has.
async fn watch(clients: Vec<Client>, as_json: bool) -> Result<(), CtlError> {
    let mut streams = JoinSet::new();
    for client in clients {
        streams.spawn(async move {
            let target = client.base().to_string();
            let ended = client
                .follow("/v1/events", |event| {
                    if as_json {
                        println!("{}", json!({ "target": target, "event": event }));
                    } else {
                        println!("{target}  {}", render::event(&event));
                    }
                })
                .await;
            (client.base().to_string(), ended)
        });
    }
    let mut failed = Vec::new();
    while let Some(done) = streams.join_next().await {
        if let Ok((target, Err(e))) = done {
            eprintln!("{target}: {e}");
            failed.push(format!("{target}: {e}"));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CtlError::Usage(format!(
            "event streams that failed: {}",
            failed.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_urls_or_dns_names_with_a_port() {
        assert_eq!(
            TargetSpec::parse("http://10.0.0.7:8474/").unwrap(),
            TargetSpec::Url("http://10.0.0.7:8474".into())
        );
        assert_eq!(
            TargetSpec::parse("dns:switchboard-control:8474").unwrap(),
            TargetSpec::Dns {
                name: "switchboard-control".into(),
                port: 8474
            }
        );
        for bad in [
            "10.0.0.7:8474",
            "dns:name",
            "dns::8474",
            "dns:name:port",
            "ftp://x",
        ] {
            assert!(TargetSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_targets_file_has_a_target_and_an_optional_token_per_line() {
        let text = "# the shop\nhttp://a:8474 secret-a\n\n  http://b:8474\ndns:c:8474 t\n";
        let read = read_targets_file(text).unwrap();
        assert_eq!(
            read,
            vec![
                (
                    TargetSpec::Url("http://a:8474".into()),
                    Some("secret-a".into())
                ),
                (TargetSpec::Url("http://b:8474".into()), None),
                (
                    TargetSpec::Dns {
                        name: "c".into(),
                        port: 8474
                    },
                    Some("t".into())
                ),
            ]
        );
        let error = read_targets_file("http://a:1\nhttp://b:1 t extra\n").unwrap_err();
        assert!(error.to_string().contains("line 2"), "{error}");
    }

    #[test]
    fn every_address_once_with_ipv6_in_brackets() {
        let addrs: Vec<SocketAddr> = ["10.0.0.1:8474", "[fd00::2]:8474", "10.0.0.1:8474"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(
            urls_of(&addrs),
            vec!["http://10.0.0.1:8474", "http://[fd00::2]:8474"]
        );
    }
}
