//! Taking samples: one HTTP request or TCP connect per probe per interval, each on its own
//! task so that a slow sample does not delay the next.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::{Method, Request};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use super::DrillError;
use super::scenario::{Check, Degraded, Probe};
use crate::report::error_chain;

/// Bodies are read this far, for `body_contains`.
const BODY_LIMIT: usize = 1 << 20;

/// One observation of a probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When it was started, in milliseconds from the start of the drill.
    pub t_ms: f64,
    /// Whether it met the probe's success condition.
    pub ok: bool,
    /// How long it took (the timeout, for one that timed out).
    pub latency_ms: f64,
    /// The HTTP status, when there was an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Whether it showed the probe's planned degraded mode.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub degraded: bool,
    /// Why it failed, when it did not get an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A probe ready to sample: addresses expanded, client built.
pub struct Sampler {
    index: usize,
    probe: Probe,
    target: Target,
}

enum Target {
    Http {
        client: Box<Client<HttpsConnector<HttpConnector>, Empty<Bytes>>>,
        url: hyper::Uri,
        method: Method,
    },
    Tcp(String),
}

impl Sampler {
    /// Prepares probe number `index`.
    pub fn new(index: usize, probe: &Probe) -> Result<Self, DrillError> {
        let bad = |why: String| DrillError::Probe {
            probe: probe.name.clone(),
            message: why,
        };
        let target = match &probe.check {
            Check::Http { url, method, .. } => {
                let expanded = expand_env(url).map_err(bad)?;
                let url: hyper::Uri = expanded
                    .parse()
                    .map_err(|e| bad(format!("{expanded:?} is not a URL: {e}")))?;
                let method = Method::from_bytes(method.as_bytes())
                    .map_err(|e| bad(format!("{method:?}: {e}")))?;
                let tls = crate::tls::client_config(None, false)
                    .map_err(|e| bad(format!("TLS set-up: {e}")))?;
                let mut http = HttpConnector::new();
                http.enforce_http(false);
                http.set_nodelay(true);
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(Arc::unwrap_or_clone(tls))
                    .https_or_http()
                    .enable_http1()
                    .wrap_connector(http);
                Target::Http {
                    client: Box::new(
                        Client::builder(TokioExecutor::new())
                            .pool_idle_timeout(Duration::from_secs(30))
                            .build(connector),
                    ),
                    url,
                    method,
                }
            }
            Check::Tcp { addr } => Target::Tcp(expand_env(addr).map_err(bad)?),
        };
        Ok(Sampler {
            index,
            probe: probe.clone(),
            target,
        })
    }

    /// Samples every interval until the task is aborted, sending `(probe index, sample)`.
    pub async fn run(self, origin: Instant, samples: mpsc::UnboundedSender<(usize, Sample)>) {
        let this = Arc::new(self);
        let mut ticks = tokio::time::interval(this.probe.interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let this = this.clone();
            let samples = samples.clone();
            tokio::spawn(async move {
                let sample = this.sample(origin).await;
                let _ = samples.send((this.index, sample));
            });
        }
    }

    async fn sample(&self, origin: Instant) -> Sample {
        let started = Instant::now();
        let t_ms = ms(started - origin);
        let outcome = tokio::time::timeout(self.probe.timeout, self.attempt()).await;
        let latency_ms = ms(started.elapsed());
        let (ok, status, degraded, error) = match outcome {
            Err(_) => (
                false,
                None,
                false,
                Some(format!(
                    "no answer within {}",
                    humantime::format_duration(self.probe.timeout)
                )),
            ),
            Ok(Err(e)) => (false, None, false, Some(e)),
            Ok(Ok(Answer::Connected)) => (true, None, false, None),
            Ok(Ok(Answer::Http { status, body })) => {
                let ok = http_ok(&self.probe.check, status, &body);
                let degraded = self
                    .probe
                    .degraded
                    .as_ref()
                    .is_some_and(|d| shows(d, status, &body));
                (ok, Some(status), degraded, None)
            }
        };
        Sample {
            t_ms,
            ok,
            latency_ms,
            status,
            degraded,
            error,
        }
    }

    async fn attempt(&self) -> Result<Answer, String> {
        match &self.target {
            Target::Tcp(addr) => tokio::net::TcpStream::connect(addr)
                .await
                .map(|_| Answer::Connected)
                .map_err(|e| format!("connect {addr}: {e}")),
            Target::Http {
                client,
                url,
                method,
            } => {
                let request = Request::builder()
                    .method(method.clone())
                    .uri(url.clone())
                    .header(hyper::header::USER_AGENT, "switchboard-drill")
                    .body(Empty::new())
                    .map_err(|e| e.to_string())?;
                let response = client.request(request).await.map_err(|e| error_chain(&e))?;
                let status = response.status().as_u16();
                let body = Limited::new(response.into_body(), BODY_LIMIT)
                    .collect()
                    .await
                    .map_err(|e| format!("reading the body: {e}"))?
                    .to_bytes();
                Ok(Answer::Http {
                    status,
                    body: String::from_utf8_lossy(&body).into_owned(),
                })
            }
        }
    }
}

enum Answer {
    Connected,
    Http { status: u16, body: String },
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn http_ok(check: &Check, status: u16, body: &str) -> bool {
    let Check::Http {
        expect_status,
        body_contains,
        ..
    } = check
    else {
        return false;
    };
    let status_ok = if expect_status.is_empty() {
        (200..300).contains(&status)
    } else {
        expect_status.contains(&status)
    };
    status_ok
        && body_contains
            .as_ref()
            .is_none_or(|text| body.contains(text))
}

fn shows(degraded: &Degraded, status: u16, body: &str) -> bool {
    degraded.status.contains(&status)
        && degraded
            .body_contains
            .as_ref()
            .is_none_or(|text| body.contains(text))
}

/// Replaces `${NAME}` and `${NAME:-default}` with the environment's values.
pub fn expand_env(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("{text:?}: `${{` without a closing `}}`"))?;
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        match (std::env::var(name).ok().filter(|v| !v.is_empty()), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                return Err(format!(
                    "{text:?} names the environment variable {name}, which is not set"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_variables_expand_with_defaults() {
        assert_eq!(
            expand_env("http://${SWITCHBOARD_TEST_UNSET_VAR:-127.0.0.1:8080}/x").as_deref(),
            Ok("http://127.0.0.1:8080/x")
        );
        let home = std::env::var("PATH").unwrap_or_default();
        assert_eq!(expand_env("${PATH}"), Ok(home));
        assert!(
            expand_env("${SWITCHBOARD_TEST_UNSET_VAR}")
                .unwrap_err()
                .contains("SWITCHBOARD_TEST_UNSET_VAR")
        );
        assert!(expand_env("${OPEN").is_err());
    }
}
