//! Taking samples: one HTTP request or TCP connect per probe per interval, each on its own
//! task so that a slow sample does not delay the next.

use std::sync::{Arc, Mutex, PoisonError};
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
use super::control::{Control, Controls};
use super::durability::{Ack, Ledger, extract_id};
use super::route_probe::{Counts, counts, interval};
use super::scenario::{Check, Degraded, DurableWrite, IdFrom, Probe};
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
    /// A route probe saw nothing go through the route since its previous reading, so it
    /// could not tell health; such a sample counts as failed, and the report says why.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_traffic: bool,
}

/// The error of a route probe's sample with no traffic to judge.
pub const NO_TRAFFIC: &str = "no traffic through the route since the previous reading";

/// A probe ready to sample: addresses expanded, client built.
pub struct Sampler {
    index: usize,
    probe: Probe,
    target: Target,
}

/// An HTTP client of drills' probes, verifying certificates against the built-in roots.
pub type ProbeClient<B = Empty<Bytes>> = Client<HttpsConnector<HttpConnector>, B>;

/// The client of a probe's HTTP requests.
pub fn http_client<B>() -> Result<ProbeClient<B>, String>
where
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tls = crate::tls::client_config(None, false).map_err(|e| format!("TLS set-up: {e}"))?;
    let connector = crate::tls::http_connector(tls);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector))
}

/// Expands the environment in `text`, leaving `${id}` for the read-back to fill in.
pub(super) fn expand_keeping_id(text: &str) -> Result<String, String> {
    const HOLD: &str = "\u{0}switchboard-id\u{0}";
    expand_env(&text.replace("${id}", HOLD)).map(|t| t.replace(HOLD, "${id}"))
}

enum Target {
    Http {
        client: Box<Client<HttpsConnector<HttpConnector>, Empty<Bytes>>>,
        url: hyper::Uri,
        method: Method,
    },
    Tcp {
        addr: String,
        send: Option<Vec<u8>>,
        expect: Option<String>,
    },
    Route {
        control: Control,
        route: String,
        max_error_rate: f64,
        previous: Mutex<Option<Counts>>,
    },
    Durability {
        client: Box<ProbeClient<http_body_util::Full<Bytes>>>,
        url: hyper::Uri,
        method: Method,
        body: Option<String>,
        content_type: String,
        id: IdFrom,
        ledger: Ledger,
        written: std::sync::atomic::AtomicU64,
    },
}

impl Sampler {
    /// Prepares probe number `index`; route probes read their counters through the
    /// Switchboard of their target.
    pub fn new(index: usize, probe: &Probe, controls: &Controls) -> Result<Self, DrillError> {
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
                Target::Http {
                    client: Box::new(http_client().map_err(bad)?),
                    url,
                    method,
                }
            }
            Check::Durability {
                write:
                    DurableWrite::Http {
                        url,
                        method,
                        body,
                        content_type,
                        id,
                    },
                ..
            } => {
                let expanded = expand_env(url).map_err(bad)?;
                let url: hyper::Uri = expanded
                    .parse()
                    .map_err(|e| bad(format!("{expanded:?} is not a URL: {e}")))?;
                let method = Method::from_bytes(method.as_bytes())
                    .map_err(|e| bad(format!("{method:?}: {e}")))?;
                Target::Durability {
                    client: Box::new(http_client().map_err(bad)?),
                    url,
                    method,
                    body: body.clone(),
                    content_type: content_type.clone(),
                    id: id.clone(),
                    ledger: Ledger::default(),
                    written: std::sync::atomic::AtomicU64::new(0),
                }
            }
            Check::Tcp { addr, send, expect } => Target::Tcp {
                addr: expand_env(addr).map_err(bad)?,
                send: send.as_ref().map(|s| s.clone().into_bytes()),
                expect: expect.clone(),
            },
            Check::Route {
                route,
                max_error_rate,
                target,
            } => Target::Route {
                control: controls.get(target.as_deref())?.clone(),
                route: route.clone(),
                max_error_rate: *max_error_rate,
                previous: Mutex::new(None),
            },
        };
        Ok(Sampler {
            index,
            probe: probe.clone(),
            target,
        })
    }

    /// The ledger of a `Durability` probe's acknowledged writes.
    pub fn ledger(&self) -> Option<Ledger> {
        match &self.target {
            Target::Durability { ledger, .. } => Some(ledger.clone()),
            _ => None,
        }
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
                if let Some(sample) = this.sample(origin).await {
                    let _ = samples.send((this.index, sample));
                }
            });
        }
    }

    /// One sample; `None` for a route probe's first reading, which only sets the base.
    async fn sample(&self, origin: Instant) -> Option<Sample> {
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
            Ok(Ok(Answer::First)) => return None,
            Ok(Ok(Answer::NoTraffic)) => {
                return Some(Sample {
                    t_ms,
                    ok: false,
                    latency_ms: 0.0,
                    status: None,
                    degraded: false,
                    error: Some(NO_TRAFFIC.into()),
                    no_traffic: true,
                });
            }
            Ok(Ok(Answer::Interval {
                ok,
                p99_ms,
                summary,
            })) => {
                return Some(Sample {
                    t_ms,
                    ok,
                    latency_ms: p99_ms,
                    status: None,
                    degraded: false,
                    error: (!ok).then_some(summary),
                    no_traffic: false,
                });
            }
            Ok(Ok(Answer::Written { status, id })) => {
                let acknowledged = (200..300).contains(&status) && id.is_some();
                if let (true, Some(id), Target::Durability { ledger, .. }) =
                    (acknowledged, id, &self.target)
                {
                    ledger.record(Ack { t_ms, id });
                }
                let error = match (acknowledged, (200..300).contains(&status)) {
                    (true, _) => None,
                    (false, true) => Some("acknowledged without an id".to_string()),
                    (false, false) => None,
                };
                (acknowledged, Some(status), false, error)
            }
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
        Some(Sample {
            t_ms,
            ok,
            latency_ms,
            status,
            degraded,
            error,
            no_traffic: false,
        })
    }

    async fn attempt(&self) -> Result<Answer, String> {
        match &self.target {
            Target::Tcp { addr, send, expect } => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| format!("connect {addr}: {e}"))?;
                match send {
                    None => Ok(Answer::Connected),
                    Some(bytes) => round_trip(stream, bytes, expect.as_deref()).await,
                }
            }
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
            Target::Durability {
                client,
                url,
                method,
                body,
                content_type,
                id,
                written,
                ..
            } => {
                let n = written.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let body = body
                    .as_deref()
                    .map(|b| b.replace("${n}", &n.to_string()))
                    .unwrap_or_default();
                let request = Request::builder()
                    .method(method.clone())
                    .uri(url.clone())
                    .header(hyper::header::USER_AGENT, "switchboard-drill")
                    .header(hyper::header::CONTENT_TYPE, content_type.as_str())
                    .body(http_body_util::Full::new(Bytes::from(body)))
                    .map_err(|e| e.to_string())?;
                let response = client.request(request).await.map_err(|e| error_chain(&e))?;
                let status = response.status().as_u16();
                let answer = Limited::new(response.into_body(), BODY_LIMIT)
                    .collect()
                    .await
                    .map_err(|e| format!("reading the body: {e}"))?
                    .to_bytes();
                let id = extract_id(&String::from_utf8_lossy(&answer), id);
                Ok(Answer::Written { status, id })
            }
            Target::Route {
                control,
                route,
                max_error_rate,
                previous,
            } => {
                let info = control.route(route).await.map_err(|e| e.to_string())?;
                let now =
                    counts(&info).ok_or_else(|| format!("route {route:?} has no counters"))?;
                let mut previous = previous.lock().unwrap_or_else(PoisonError::into_inner);
                let Some(before) = previous.replace(now.clone()) else {
                    return Ok(Answer::First);
                };
                Ok(interval(&before, &now, *max_error_rate))
            }
        }
    }
}

/// Sends `bytes` and reads until the answer holds `expect` (or, without it, until the first
/// bytes arrive). A close or reset before that is a failure, as the client would see it.
async fn round_trip(
    mut stream: tokio::net::TcpStream,
    bytes: &[u8],
    expect: Option<&str>,
) -> Result<Answer, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream.set_nodelay(true);
    stream
        .write_all(bytes)
        .await
        .map_err(|e| format!("sending: {e}"))?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("reading the answer: {e}"))?;
        if n == 0 {
            return Err(format!(
                "closed after {} bytes of answer{}",
                answer.len(),
                expect.map_or(String::new(), |e| format!(", without {e:?}"))
            ));
        }
        answer.extend_from_slice(&buf[..n]);
        let done = match expect {
            None => true,
            Some(text) => String::from_utf8_lossy(&answer).contains(text),
        };
        if done {
            return Ok(Answer::Connected);
        }
        if answer.len() > BODY_LIMIT {
            return Err(format!("{BODY_LIMIT} bytes of answer without {expect:?}"));
        }
    }
}

pub(super) enum Answer {
    Connected,
    /// A durability probe's write was answered; `id` when the answer gave one.
    Written {
        status: u16,
        id: Option<String>,
    },
    Http {
        status: u16,
        body: String,
    },
    /// A route probe's first reading.
    First,
    /// A route probe's reading with nothing through the route since the previous one: no
    /// measure of health either way.
    NoTraffic,
    /// A route probe's reading against the previous one.
    Interval {
        ok: bool,
        p99_ms: f64,
        summary: String,
    },
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
