//! Keeps web pages away from the control endpoint. Any page a developer opens can send
//! requests to `127.0.0.1:8474` (cross-site request forgery: a "simple" `POST` with
//! `Content-Type: text/plain` needs no preflight), and through DNS rebinding a page on
//! `attacker.example` can even read the answers, because its name then resolves to loopback.
//!
//! Two checks stop both:
//! - **Host**, where rebinding is the risk (a loopback bind without a token): the `Host`
//!   header must name a loopback address, `localhost`, the bound address, or a name given with
//!   `--allowed-host`. A rebound page's requests carry the attacker's name.
//! - **Origin**, everywhere: a browser names the page's origin on cross-origin requests; one
//!   that is not this endpoint's own is refused. Clients that are not browsers (`ctl`,
//!   Toxiproxy's clients, `curl`) send no `Origin` and are unaffected.

use std::net::{IpAddr, SocketAddr};

use hyper::HeaderMap;
use hyper::StatusCode;
use hyper::header::{HOST, ORIGIN};

use super::ApiError;

/// The policy of one control endpoint.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    bound: SocketAddr,
    check_host: bool,
    allowed_hosts: Vec<String>,
}

impl OriginPolicy {
    /// For an endpoint bound to `bound`. The Host check applies when `check_host` (loopback
    /// binds reachable without a token); `allowed_hosts` are further names to accept.
    pub fn new(bound: SocketAddr, check_host: bool, allowed_hosts: Vec<String>) -> Self {
        OriginPolicy {
            bound,
            check_host,
            allowed_hosts: allowed_hosts
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
        }
    }

    /// Refuses (403) a request from another origin or, where checked, for another host.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let host = headers.get(HOST).and_then(|v| v.to_str().ok());
        if self.check_host
            && let Some(host) = host
            && !self.host_allowed(host)
        {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "Host {host:?} is not this endpoint's: requests must name a loopback \
                     address, localhost or a name given with --allowed-host (this guards \
                     against DNS rebinding)"
                ),
            ));
        }
        if let Some(origin) = headers.get(ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            let same = host.is_some_and(|host| {
                origin
                    .strip_prefix("http://")
                    .or_else(|| origin.strip_prefix("https://"))
                    .is_some_and(|o| o.eq_ignore_ascii_case(host))
            });
            if !same {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "cross-origin request from {origin:?} refused: a web page may not drive \
                         the control endpoint"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host).to_ascii_lowercase();
        if name == "localhost" || name.ends_with(".localhost") {
            return true;
        }
        if let Ok(ip) = name.trim_matches(['[', ']']).parse::<IpAddr>() {
            return ip.is_loopback() || ip == self.bound.ip();
        }
        self.allowed_hosts.contains(&name)
    }
}

/// The name in a `Host` header, without its port (`[::1]:80` → `[::1]`).
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..=h.len()]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        h
    }

    /// A policy, the request's headers, and whether it may pass.
    type Case<'a> = (&'a OriginPolicy, &'a [(&'a str, &'a str)], bool);

    #[test]
    fn table() {
        let lo = OriginPolicy::new(
            "127.0.0.1:8474".parse().expect("addr"),
            true,
            vec!["Switchboard.Test".into()],
        );
        let open = OriginPolicy::new("0.0.0.0:8474".parse().expect("addr"), false, vec![]);
        let cases: &[Case] = &[
            (&lo, &[("host", "127.0.0.1:8474")], true),
            (&lo, &[("host", "localhost:8474")], true),
            (&lo, &[("host", "[::1]:8474")], true),
            (&lo, &[("host", "127.0.0.2")], true),
            (&lo, &[("host", "switchboard.test:8474")], true),
            (&lo, &[], true),
            (&lo, &[("host", "attacker.example:8474")], false),
            (&lo, &[("host", "10.0.0.1:8474")], false),
            (
                &lo,
                &[
                    ("host", "127.0.0.1:8474"),
                    ("origin", "http://127.0.0.1:8474"),
                ],
                true,
            ),
            (
                &lo,
                &[
                    ("host", "127.0.0.1:8474"),
                    ("origin", "http://evil.example"),
                ],
                false,
            ),
            (
                &lo,
                &[("host", "127.0.0.1:8474"), ("origin", "null")],
                false,
            ),
            (&open, &[("host", "toxiproxy:8474")], true),
            (
                &open,
                &[
                    ("host", "toxiproxy:8474"),
                    ("origin", "http://evil.example"),
                ],
                false,
            ),
        ];
        for (policy, h, ok) in cases {
            assert_eq!(policy.check(&headers(h)).is_ok(), *ok, "{h:?}");
        }
    }
}
