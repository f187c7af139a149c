//! Forwarding a request to the upstream as a well-behaved reverse proxy does: the target is
//! the route's upstream, hop-by-hop headers stay on their hop, `X-Forwarded-For`,
//! `X-Forwarded-Proto` and `Via` say who passed it on, and bodies stream both ways.

use crate::report::error_chain;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::body::{ProxyBody, full};
use super::connect::DelayedConnector;

/// A pooled HTTP/1.1 client for one route's upstream, plain or over TLS.
pub type UpstreamClient = Client<DelayedConnector<HttpsConnector<HttpConnector>>, Incoming>;

/// A client with keep-alive to the upstream; `https://` upstreams are verified as `tls` says,
/// and new connections wait out the route's `ConnectDelay` faults.
pub fn client(
    tls: Arc<rustls::ClientConfig>,
    ctx: &crate::proxy::ProxyContext,
    route: Arc<str>,
) -> UpstreamClient {
    Client::builder(TokioExecutor::new()).build(DelayedConnector::new(
        crate::tls::http_connector(tls),
        ctx.store.clone(),
        Arc::clone(&ctx.metrics),
        route,
        ctx.seed,
    ))
}

/// Headers that belong to one hop (RFC 9110 §7.6.1), plus those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

fn via(version: Version) -> HeaderValue {
    HeaderValue::from_static(match version {
        Version::HTTP_2 => "2 switchboard",
        Version::HTTP_10 => "1.0 switchboard",
        _ => "1.1 switchboard",
    })
}

/// The protocol a request asks to switch to (`Upgrade`, with `Connection: upgrade`).
fn upgrade_of(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    asks.then(|| headers.get(header::UPGRADE).cloned())
        .flatten()
}

/// Where a request's connection would continue as a tunnel, should it switch protocols.
pub struct TunnelSite<'a> {
    pub ctx: &'a crate::proxy::ProxyContext,
    pub route: &'a Arc<str>,
    /// Numbers the tunnel for its seeded fault draws.
    pub connection: u64,
}

/// Sends the request to `upstream` (scheme and authority) and returns its response, or a 502
/// naming the reason when the upstream cannot be reached. A protocol upgrade (WebSocket) is
/// passed through: after the upstream's 101, bytes flow both ways as a tunnel (`tunnel.rs`).
pub async fn forward(
    client: &UpstreamClient,
    upstream: &Uri,
    mut parts: Parts,
    body: Incoming,
    peer: SocketAddr,
    tls_terminated: bool,
    site: TunnelSite<'_>,
) -> Response<ProxyBody> {
    let upgrade = upgrade_of(&parts.headers);
    let client_upgrade = upgrade
        .as_ref()
        .and_then(|_| parts.extensions.remove::<hyper::upgrade::OnUpgrade>());
    let mut target = upstream.clone().into_parts();
    target.path_and_query = parts.uri.path_and_query().cloned();
    let target = match Uri::from_parts(target) {
        Ok(uri) => uri,
        Err(e) => return bad_gateway(&format!("cannot build the upstream URI: {e}")),
    };
    // An HTTP/2 request carries its host in the URI, not in a header: keep it for the upstream.
    if !parts.headers.contains_key(header::HOST)
        && let Some(authority) = parts.uri.authority()
        && let Ok(host) = HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(header::HOST, host);
    }
    strip_hop_by_hop(&mut parts.headers);
    if let Some(protocol) = &upgrade {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts.headers.insert(header::UPGRADE, protocol.clone());
    }
    let client_ip = peer.ip().to_string();
    let forwarded_for = match parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        Some(before) => format!("{before}, {client_ip}"),
        None => client_ip,
    };
    if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
        parts.headers.insert("x-forwarded-for", value);
    }
    let proto = if tls_terminated { "https" } else { "http" };
    parts
        .headers
        .insert("x-forwarded-proto", HeaderValue::from_static(proto));
    parts.headers.append(header::VIA, via(parts.version));
    parts.uri = target;
    parts.version = Version::HTTP_11;

    match client.request(Request::from_parts(parts, body)).await {
        Ok(mut response) => {
            let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
            if switching && let Some(client_upgrade) = client_upgrade {
                super::tunnel::spawn(
                    client_upgrade,
                    hyper::upgrade::on(&mut response),
                    site.ctx.clone(),
                    Arc::clone(site.route),
                    site.connection,
                    peer.ip(),
                );
            }
            let (mut parts, body) = response.into_parts();
            let upstream_upgrade = parts.headers.get(header::UPGRADE).cloned();
            strip_hop_by_hop(&mut parts.headers);
            if switching && let Some(protocol) = upstream_upgrade {
                parts
                    .headers
                    .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                parts.headers.insert(header::UPGRADE, protocol);
            }
            parts.headers.append(header::VIA, via(parts.version));
            Response::from_parts(parts, body.map_err(Into::into).boxed_unsync())
        }
        Err(e) => bad_gateway(&format!(
            "upstream {upstream} did not answer: {}",
            error_chain(&e)
        )),
    }
}

/// A 502 with a JSON body naming the reason.
pub fn bad_gateway(reason: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({ "error": reason }).to_string();
    let mut response = Response::new(full(body));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
