//! The faults of one HTTP request: chosen once per request from a snapshot of the rules
//! (enabled, `when` matches, the seeded draw for this request's index says yes), then applied
//! in their listed order: those that act on the request before it is forwarded, those that act
//! on the response after.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use http_body_util::BodyExt;
use hyper::body::Body as _;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Request, Response, StatusCode};

use super::asked;
use super::body::{HoldingBody, ProxyBody, SlowBody, TruncatedBody, full};
use super::forward::{TunnelSite, UpstreamClient, bad_gateway, forward};
use super::matcher::matches;
use super::state::RouteState;
use crate::faults::{FaultKind, PartitionMode, rng};
use crate::proxy::ProxyContext;
use crate::proxy::caps::Permit;
use crate::proxy::timer;
use crate::rules::Fault;
use crate::store::RuleSet;

/// Why a request gets no response at all: hyper then closes the connection (HTTP/1) or
/// resets the stream (HTTP/2).
#[derive(Debug, thiserror::Error)]
pub enum NoResponse {
    /// A `Drop` fault.
    #[error("dropped by fault {0:?}")]
    Dropped(String),
    /// A partition (refuse or reset) on the route.
    #[error("route partitioned by fault {0:?}")]
    Partitioned(String),
    /// The route is gone or disabled.
    #[error("route {0:?} is not in force")]
    RouteGone(String),
}

/// One HTTP route's request handling.
pub struct HttpRoute {
    pub name: Arc<str>,
    pub ctx: ProxyContext,
    pub client: UpstreamClient,
    pub state: RouteState,
    /// Whether the listener terminates TLS (for `X-Forwarded-Proto`).
    pub tls: bool,
    /// Request counters and latency, per route.
    pub stats: crate::telemetry::HttpStats,
}

fn status_response(
    status: u16,
    body: String,
    headers: &[(HeaderName, HeaderValue)],
) -> Response<ProxyBody> {
    let mut response = Response::new(full(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    for (name, value) in headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

fn set_headers(headers: &mut HeaderMap, wanted: &std::collections::BTreeMap<String, String>) {
    for (name, value) in wanted {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        if value.is_empty() {
            headers.remove(name);
        } else if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
}

fn is_grpc(parts: &Parts) -> bool {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// A 400 naming what the request asked for wrongly.
fn bad_request(message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({ "error": message });
    status_response(
        400,
        body.to_string(),
        &[(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
    )
}

/// A 504: the upstream did not send its response head within the route's response timeout.
fn gateway_timeout(upstream: &hyper::Uri, limit: std::time::Duration) -> Response<ProxyBody> {
    let body = serde_json::json!({
        "error": format!(
            "upstream {upstream} sent no response within {} (the route's response timeout)",
            humantime::format_duration(limit)
        )
    });
    status_response(
        504,
        body.to_string(),
        &[(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
    )
}

/// The most of an unread request body an injected answer reads and discards, so that the
/// client's keep-alive connection survives as it would with a real upstream's answer.
pub const DRAIN_LIMIT: usize = 1024 * 1024;

/// How long an injected answer waits for the rest of a request body.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Sends an answer made up in place of the upstream's. HTTP/1.1 has one stream per connection:
/// a request body left unread would make the connection unusable, and hyper would close it
/// after the answer without saying so, failing the client's next request on it. A real
/// upstream reads the body, so this does too, up to [`DRAIN_LIMIT`] and [`DRAIN_TIME`]; a
/// larger or slower body gets `Connection: close`, so the client knows not to reuse it.
async fn answer_early(
    body: Incoming,
    version: hyper::Version,
    mut answer: Response<ProxyBody>,
) -> Response<ProxyBody> {
    if version >= hyper::Version::HTTP_2 || body.is_end_stream() {
        return answer;
    }
    let drained = http_body_util::Limited::new(body, DRAIN_LIMIT).collect();
    let complete = matches!(tokio::time::timeout(DRAIN_TIME, drained).await, Ok(Ok(_)));
    if !complete {
        answer
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    answer
}

impl HttpRoute {
    /// The faults that apply to this request from `client`, in order, with their places
    /// under capped faults.
    fn select(
        &self,
        rules: &RuleSet,
        parts: &Parts,
        index: u64,
        client: IpAddr,
    ) -> (Vec<Arc<Fault>>, Vec<Permit>) {
        let mut permits = Vec::new();
        let faults = select_faults(rules, &self.name, self.ctx.seed, parts, index, client)
            .into_iter()
            .filter(|fault| match fault.max_active {
                None => true,
                Some(max) => match self.ctx.caps.try_acquire(&fault.name, max) {
                    Some(permit) => {
                        permits.push(permit);
                        true
                    }
                    None => false,
                },
            })
            .collect();
        (faults, permits)
    }

    /// Waits while a blackhole partition holds the route, as a network partition would.
    async fn wait_out_blackhole(&self, fault: &str) {
        let mut rules = self.ctx.store.subscribe();
        loop {
            let held = rules
                .borrow_and_update()
                .fault(fault)
                .is_some_and(|f| f.enabled && matches!(f.kind, FaultKind::Partition(p) if p.mode == PartitionMode::Blackhole));
            if !held || rules.changed().await.is_err() {
                return;
            }
        }
    }

    /// Answers one request.
    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: std::net::SocketAddr,
    ) -> Result<Response<ProxyBody>, NoResponse> {
        let started = Instant::now();
        let mut injected = false;
        let result = self.respond(request, peer, &mut injected).await;
        let class = match &result {
            Ok(r) => r.status().as_u16() / 100,
            Err(_) => 0,
        };
        self.stats.request(class, injected, started.elapsed());
        result
    }

    /// The answer; `injected` is set when a fault made it (or made it none).
    async fn respond(
        &self,
        request: Request<Incoming>,
        peer: std::net::SocketAddr,
        injected: &mut bool,
    ) -> Result<Response<ProxyBody>, NoResponse> {
        let rules = self.ctx.store.current();
        let Some(route) = rules.route(&self.name).filter(|r| r.enabled) else {
            return Err(NoResponse::RouteGone(self.name.to_string()));
        };
        let (upstream, response_timeout) = (route.upstream.clone(), route.timeouts.response);
        let index = self.state.next_request();
        let (mut parts, body) = request.into_parts();
        // Taken off whether or not the route honours it: it is never forwarded.
        let asked = asked::take(&mut parts.headers);
        let (mut faults, permits) = self.select(&rules, &parts, index, peer.ip());
        if route.request_faults
            && let Some(asked) = asked
        {
            match asked.and_then(|text| asked::parse(&text, &self.name)) {
                Ok(extra) => faults.extend(extra),
                Err(e) => {
                    let answer = bad_request(&e.to_string());
                    return Ok(answer_early(body, parts.version, answer).await);
                }
            }
        }
        let parts = match self.before_forwarding(&faults, parts, index).await {
            Before::Forward(parts) => parts,
            Before::Answer(answer) => {
                *injected = true;
                return Ok(answer_early(body, answer.version, answer.response).await);
            }
            Before::NoResponse(why) => {
                *injected = true;
                return Err(why);
            }
        };

        let upstream: hyper::Uri = match upstream.parse() {
            Ok(uri) => uri,
            Err(e) => return Ok(bad_gateway(&format!("upstream {upstream:?}: {e}"))),
        };
        let sent = Instant::now();
        let site = TunnelSite {
            ctx: &self.ctx,
            route: &self.name,
            connection: index,
        };
        let forwarded = forward(&self.client, &upstream, parts, body, peer, self.tls, site);
        let response = match response_timeout {
            None => forwarded.await,
            Some(limit) => match tokio::time::timeout(limit, forwarded).await {
                Ok(response) => response,
                Err(_) => gateway_timeout(&upstream, limit),
            },
        };
        self.stats.upstream(sent.elapsed());
        let response = self.after_forwarding(&faults, response).await;
        if permits.is_empty() {
            return Ok(response);
        }
        // A capped fault holds its place until the body, which it may be shaping, is done.
        Ok(response.map(|b| HoldingBody::new(b, permits).boxed_unsync()))
    }

    /// Counts a fault that changed this request or its response.
    fn fired(&self, fault: &Fault) {
        self.ctx.metrics.fault_fired(&fault.name, fault.kind.name());
    }

    /// The request phase: faults that answer in the upstream's place, hold or slow the request,
    /// or change it, in their listed order. Only those that act are counted as fired.
    async fn before_forwarding(
        &self,
        faults: &[Arc<Fault>],
        mut parts: Parts,
        index: u64,
    ) -> Before {
        // Seeded only when a fault draws from it.
        let mut draws = None;
        let mut held_until = Instant::now();
        let answer = |response| {
            Before::Answer(EarlyAnswer {
                response,
                version: parts.version,
            })
        };
        for fault in faults {
            let early = match &fault.kind {
                FaultKind::Partition(p) => match p.mode {
                    PartitionMode::Blackhole => {
                        self.fired(fault);
                        self.wait_out_blackhole(&fault.name).await;
                        continue;
                    }
                    PartitionMode::Refuse | PartitionMode::Reset => {
                        self.fired(fault);
                        return Before::NoResponse(NoResponse::Partitioned(fault.name.clone()));
                    }
                },
                FaultKind::Drop(_) => {
                    self.fired(fault);
                    return Before::NoResponse(NoResponse::Dropped(fault.name.clone()));
                }
                FaultKind::Abort(a) => {
                    let headers: Vec<_> = a
                        .headers
                        .iter()
                        .filter_map(|(k, v)| {
                            Some((
                                HeaderName::from_bytes(k.as_bytes()).ok()?,
                                HeaderValue::from_str(v).ok()?,
                            ))
                        })
                        .collect();
                    Some(status_response(a.status, a.body.clone(), &headers))
                }
                FaultKind::GrpcAbort(g) if is_grpc(&parts) => Some(grpc_abort(g)),
                FaultKind::FailNth(f) if self.state.nth(&fault.name, f.n) => {
                    let error = serde_json::json!({ "error": format!("failed by fault {:?} (every {} requests)", fault.name, f.n) });
                    Some(status_response(f.status, error.to_string(), &[]))
                }
                FaultKind::RateLimit(r) => self
                    .state
                    .take(&fault.name, r.per_sec, Instant::now())
                    .err()
                    .map(|wait| {
                        let retry = HeaderValue::from(wait.as_secs_f64().ceil().max(1.0) as u64);
                        let error = serde_json::json!({ "error": format!("rate limited by fault {:?} ({} per second)", fault.name, r.per_sec) });
                        status_response(r.status, error.to_string(), &[(header::RETRY_AFTER, retry)])
                    }),
                FaultKind::Delay(d) => {
                    self.fired(fault);
                    let draws = draws.get_or_insert_with(|| {
                        rng::connection_rng(self.ctx.seed, &self.name, index)
                    });
                    // Delays add up from the request's arrival, on the sub-millisecond timer.
                    held_until += d.sample(draws);
                    timer::sleep_until(held_until).await;
                    None
                }
                FaultKind::SetHeaders(h) => {
                    self.fired(fault);
                    set_headers(&mut parts.headers, &h.request);
                    None
                }
                _ => None,
            };
            if let Some(response) = early {
                self.fired(fault);
                return answer(response);
            }
        }
        Before::Forward(parts)
    }

    /// The response phase: faults that act on the upstream's answer. `SetHeaders` was counted
    /// in the request phase; `Truncate` counts only when it cuts a body.
    async fn after_forwarding(
        &self,
        faults: &[Arc<Fault>],
        mut response: Response<ProxyBody>,
    ) -> Response<ProxyBody> {
        // Response delays add up from the moment the upstream's head arrived.
        let mut held_until = Instant::now();
        for fault in faults {
            match &fault.kind {
                FaultKind::ResponseDelay(d) => {
                    self.fired(fault);
                    held_until += std::time::Duration::from_millis(d.ms);
                    timer::sleep_until(held_until).await
                }
                FaultKind::SetHeaders(h) => set_headers(response.headers_mut(), &h.response),
                FaultKind::ReplaceBody(r) => {
                    self.fired(fault);
                    let (mut parts, _) = response.into_parts();
                    parts.headers.remove(header::CONTENT_LENGTH);
                    parts.headers.remove(header::CONTENT_ENCODING);
                    if let Some(t) = &r.content_type
                        && let Ok(value) = HeaderValue::from_str(t)
                    {
                        parts.headers.insert(header::CONTENT_TYPE, value);
                    }
                    response = Response::from_parts(parts, full(r.body.clone()));
                }
                FaultKind::SlowBody(s) => {
                    self.fired(fault);
                    response = response.map(|b| SlowBody::new(b, s.bytes_per_sec).boxed_unsync());
                }
                FaultKind::Truncate(t) => {
                    let metrics = Arc::clone(&self.ctx.metrics);
                    let (name, kind) = (fault.name.clone(), fault.kind.name());
                    let on_cut = Box::new(move || metrics.fault_fired(&name, kind));
                    response = response.map(|b| {
                        TruncatedBody::new(b, t.after_bytes.unwrap_or(0), on_cut).boxed_unsync()
                    });
                }
                _ => {}
            }
        }
        response
    }
}

/// What the request phase decided.
enum Before {
    /// Send the (possibly changed) request on.
    Forward(Parts),
    /// Answer in the upstream's place.
    Answer(EarlyAnswer),
    /// Send nothing back.
    NoResponse(NoResponse),
}

struct EarlyAnswer {
    response: Response<ProxyBody>,
    version: hyper::Version,
}

/// A gRPC error answer: HTTP 200 with the status in the trailers-only form's headers.
fn grpc_abort(g: &crate::faults::GrpcAbort) -> Response<ProxyBody> {
    let mut headers = vec![
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        ),
        (
            HeaderName::from_static("grpc-status"),
            HeaderValue::from(u16::from(g.code)),
        ),
    ];
    if let Ok(message) = HeaderValue::from_str(&g.message) {
        headers.push((HeaderName::from_static("grpc-message"), message));
    }
    status_response(200, String::new(), &headers)
}

/// The faults of `route` that apply to request number `index` with these `parts` from
/// `client`, in order: enabled, acting per request, matching its `when`, and drawn by its
/// probability. Caps (`max_active`) are not counted here.
pub fn select_faults(
    rules: &RuleSet,
    route: &str,
    seed: u64,
    parts: &Parts,
    index: u64,
    client: IpAddr,
) -> Vec<Arc<Fault>> {
    let method = crate::store::method_code(parts.method.as_str());
    rules
        .request_faults(route)
        .iter()
        .filter(|r| r.may_match(method))
        .map(|r| &r.fault)
        .filter(|f| {
            f.when
                .as_ref()
                .is_none_or(|w| w.client_matches(client) && matches(w, parts))
        })
        .filter(|f| rng::decide(seed, route, &f.name, index, f.probability))
        .cloned()
        .collect()
}
