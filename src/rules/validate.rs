//! Checks a merged set of routes and faults. It knows nothing of files: it names the item and
//! field at fault, and the loader turns that into `file:line:col`.

use std::collections::HashSet;
use std::net::SocketAddr;

use super::model::{Fault, Protocol, Route};
use super::targeting;

/// Which item a finding is about, as an index into the lists passed to [`validate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Route(usize),
    Fault(usize),
}

/// One problem: the item, the field (when one field is to blame) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub subject: Subject,
    pub field: Option<&'static str>,
    pub message: String,
}

/// Whether a listen address may use port 0. Files may not (clients could not find the route),
/// rules built by tests and the control API may.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    pub allow_ephemeral_listen: bool,
}

/// The longest name a route or fault may have.
pub const MAX_NAME: usize = 128;

/// Names must be usable in a URL path, a log line and a metric label as they are:
/// `[A-Za-z0-9._:-]{1,128}` (`:` for Toxiproxy-made `proxy:toxic` names). A name outside that
/// could be created but never addressed again (`x/y` cannot be deleted through the API).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("name is empty".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "name is {} bytes long; at most {MAX_NAME} are allowed",
            name.len()
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        Some(c) => Err(format!(
            "name {name:?} contains {c:?}; names use only letters, digits, '.', '_', ':' and '-'"
        )),
        None => Ok(()),
    }
}

/// Whether two listen addresses cannot both be bound: the same port, and the same address
/// or a wildcard that covers the other (`[::]` covers IPv4 too on a dual-stack host).
fn overlap(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() != b.port() {
        return false;
    }
    let v6_any = |x: SocketAddr| x.is_ipv6() && x.ip().is_unspecified();
    a.ip() == b.ip()
        || v6_any(a)
        || v6_any(b)
        || (a.is_ipv4() == b.is_ipv4() && (a.ip().is_unspecified() || b.ip().is_unspecified()))
}

/// The longest timeout a route may set.
const MAX_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

fn check_timeouts(route: &Route) -> Result<(), (&'static str, String)> {
    let t = &route.timeouts;
    let default = super::model::RouteTimeouts::default();
    let given_fields = [
        ("header", t.header != default.header),
        ("idle", t.idle != default.idle),
        ("connect", t.connect != default.connect),
        ("response", t.response.is_some()),
    ];
    let applies: &[&str] = match route.protocol {
        Protocol::Http => &["header", "idle", "connect", "response"],
        Protocol::Tcp | Protocol::Redis | Protocol::Postgres => &["connect"],
        Protocol::Udp => &["idle"],
        Protocol::Dns => &["idle", "response"],
    };
    if let Some((field, _)) = given_fields
        .iter()
        .find(|(field, given)| *given && !applies.contains(field))
    {
        return Err((
            "timeouts",
            format!(
                "timeouts.{field} does not apply to a {:?} route; it takes {}",
                route.protocol,
                applies
                    .iter()
                    .map(|f| format!("timeouts.{f}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let given = [
        ("header", Some(t.header)),
        ("idle", Some(t.idle)),
        ("connect", Some(t.connect)),
        ("response", t.response),
    ];
    for (field, value) in given {
        if let Some(d) = value
            && (d.is_zero() || d > MAX_TIMEOUT)
        {
            return Err((
                "timeouts",
                format!("timeouts.{field} must be more than 0 and at most 24h"),
            ));
        }
    }
    Ok(())
}

/// Every problem in the merged rules, in order.
pub fn validate(routes: &[&Route], faults: &[&Fault], policy: Policy) -> Vec<Finding> {
    let mut findings = Vec::new();
    check_routes(routes, policy, &mut findings);
    check_faults(routes, faults, &mut findings);
    findings
}

fn check_routes(routes: &[&Route], policy: Policy, findings: &mut Vec<Finding>) {
    let mut names = HashSet::new();
    let mut listens: Vec<(SocketAddr, &str, Protocol)> = Vec::new();
    for (i, route) in routes.iter().enumerate() {
        let mut say = |field, message: String| {
            findings.push(Finding {
                subject: Subject::Route(i),
                field: Some(field),
                message,
            })
        };
        if let Err(message) = check_name(&route.name) {
            say("name", format!("route {message}"));
        } else if !names.insert(route.name.as_str()) {
            say("name", format!("route name {:?} is used twice", route.name));
        }
        if let Err(message) = check_listen(route, policy, &mut listens) {
            say("listen", message);
        }
        let upstream = match route.protocol {
            Protocol::Http => check_http_upstream(&route.upstream),
            _ => check_upstream(&route.upstream),
        };
        if let Err(message) = upstream {
            say("upstream", message);
        }
        if let Err((field, message)) = check_tls(route) {
            say(field, message);
        }
        if let Err((field, message)) = check_timeouts(route) {
            say(field, message);
        }
        if let Err((field, message)) = targeting::check_route(route) {
            say(field, message);
        }
        if let Err(message) = check_max_flows(route) {
            say("max_flows", message);
        }
    }
}

fn check_max_flows(route: &Route) -> Result<(), String> {
    match (route.max_flows, route.protocol) {
        (None, _) => Ok(()),
        (Some(0), _) => Err("max_flows must be at least 1".into()),
        (Some(_), Protocol::Udp | Protocol::Dns) => Ok(()),
        (Some(_), other) => Err(format!(
            "max_flows bounds the client flows of Udp routes and the queries in flight of Dns routes; route {:?} is {other:?}",
            route.name
        )),
    }
}

/// Which transports a route of `protocol` listens on: (TCP, UDP).
fn transports(protocol: Protocol) -> (bool, bool) {
    match protocol {
        Protocol::Udp => (false, true),
        Protocol::Dns => (true, true),
        _ => (true, false),
    }
}

/// Whether two routes' listeners would take the same socket: a TCP and a UDP port of the same
/// number are different sockets.
fn share_transport(a: Protocol, b: Protocol) -> bool {
    let (a_tcp, a_udp) = transports(a);
    let (b_tcp, b_udp) = transports(b);
    (a_tcp && b_tcp) || (a_udp && b_udp)
}

/// The listen address parses, has a fixed port where the policy asks one, and does not
/// collide with a route already seen.
fn check_listen<'a>(
    route: &'a Route,
    policy: Policy,
    listens: &mut Vec<(SocketAddr, &'a str, Protocol)>,
) -> Result<(), String> {
    match route.listen.parse::<SocketAddr>() {
        Err(_) => Err(format!(
            "listen {:?} is not an ip:port address (e.g. \"127.0.0.1:16379\")",
            route.listen
        )),
        Ok(addr) if addr.port() == 0 && !policy.allow_ephemeral_listen => Err(format!(
            "listen {:?} uses port 0; a route in a file needs a fixed port so clients can find it",
            route.listen
        )),
        Ok(addr) if addr.port() != 0 => {
            if let Some((other, other_route, _)) = listens
                .iter()
                .find(|(a, _, p)| overlap(*a, addr) && share_transport(*p, route.protocol))
            {
                Err(format!(
                    "listen {addr} cannot be bound beside route {other_route:?}'s {other}: \
                         the same port on an overlapping address"
                ))
            } else {
                listens.push((addr, &route.name, route.protocol));
                Ok(())
            }
        }
        Ok(_) => Ok(()),
    }
}

fn check_faults(routes: &[&Route], faults: &[&Fault], findings: &mut Vec<Finding>) {
    let mut fault_names = HashSet::new();
    for (i, fault) in faults.iter().enumerate() {
        let mut say = |field, message: String| {
            findings.push(Finding {
                subject: Subject::Fault(i),
                field: Some(field),
                message,
            })
        };
        if let Err(message) = check_name(&fault.name) {
            say("name", format!("fault {message}"));
        } else if !fault_names.insert(fault.name.as_str()) {
            say("name", format!("fault name {:?} is used twice", fault.name));
        }
        let route = routes.iter().find(|r| r.name == fault.route);
        match route {
            None => say(
                "route",
                format!(
                    "fault {:?} names route {:?}, which is not defined",
                    fault.name, fault.route
                ),
            ),
            Some(route) => {
                if let Err(message) = fault.kind.fits(route.protocol) {
                    say("kind", format!("route {:?}: {message}", route.name));
                }
                if let Some(when) = &fault.when
                    && let Err(message) = check_match(when, route)
                        .and_then(|()| targeting::check_when_fits(when, fault, route))
                {
                    say("when", message);
                }
                if let Err((field, message)) = targeting::check_caps(fault, route) {
                    say(field, message);
                }
            }
        }
        if !(0.0..=1.0).contains(&fault.probability) {
            say(
                "probability",
                format!("probability {} is outside 0.0..=1.0", fault.probability),
            );
        }
        if let Err(e) = fault.kind.validate() {
            say(
                e.field,
                format!("{} {}: {}", fault.kind.name(), e.field, e.message),
            );
        }
    }
}

/// TLS settings fit the route, and their files load.
fn check_tls(route: &Route) -> Result<(), (&'static str, String)> {
    let https = route.protocol == Protocol::Http && route.upstream.starts_with("https://");
    if let Some(files) = &route.tls {
        if !matches!(route.protocol, Protocol::Http | Protocol::Postgres) {
            return Err((
                "tls",
                "TLS termination applies to Http and Postgres routes".into(),
            ));
        }
        crate::tls::server_config(&files.cert, &files.key)
            .map_err(|e| ("tls", format!("TLS: {e}")))?;
    }
    if (route.upstream_ca.is_some() || route.insecure_skip_verify) && !https {
        let field = if route.upstream_ca.is_some() {
            "upstream_ca"
        } else {
            "insecure_skip_verify"
        };
        return Err((
            field,
            format!("{field} applies to an https:// upstream of an HTTP route"),
        ));
    }
    if let Some(ca) = &route.upstream_ca {
        crate::tls::client_config(Some(ca), false)
            .map_err(|e| ("upstream_ca", format!("TLS: {e}")))?;
    }
    Ok(())
}

/// An HTTP route's upstream is `http://host:port` or `https://host:port`.
fn check_http_upstream(upstream: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "upstream {upstream:?} is not an http:// or https://host:port URL (e.g. \"http://127.0.0.1:8080\")"
        )
    };
    let uri: hyper::Uri = upstream.parse().map_err(|_| bad())?;
    match (uri.scheme_str(), uri.authority()) {
        (Some("http"), Some(authority))
            if authority.port_u16().is_some() || !authority.host().is_empty() => {}
        (Some("https"), Some(_)) => {}
        _ => return Err(bad()),
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!(
            "upstream {upstream:?}: give scheme, host and port only; request paths pass through"
        ));
    }
    Ok(())
}

fn check_match(when: &crate::rules::Match, route: &Route) -> Result<(), String> {
    let http = when.method.is_some()
        || when.path.is_some()
        || !when.headers.is_empty()
        || !when.query.is_empty();
    let redis = !when.command.is_empty() || when.key.is_some();
    let postgres = !when.statement.is_empty()
        || when.matches.is_some()
        || when.database.is_some()
        || when.user.is_some();
    let dns = when.name.is_some() || !when.qtype.is_empty();
    let given = [
        (http, Protocol::Http),
        (redis, Protocol::Redis),
        (postgres, Protocol::Postgres),
        (dns, Protocol::Dns),
    ];
    if matches!(route.protocol, Protocol::Tcp | Protocol::Udp) {
        // Only `client` fits a Tcp or Udp route; `targeting` says so for anything else.
        return Ok(());
    }
    if let Some((_, other)) = given
        .iter()
        .find(|(present, protocol)| *present && *protocol != route.protocol)
    {
        return Err(format!(
            "{}; route {:?} is {:?} ({})",
            match_fields_of(*other),
            route.name,
            route.protocol,
            how_to_match(route.protocol)
        ));
    }
    match route.protocol {
        Protocol::Tcp | Protocol::Udp => Ok(()),
        Protocol::Http => check_http_match(when),
        Protocol::Redis => crate::proxy::redis::check_match(when),
        Protocol::Postgres => crate::proxy::postgres::check_match(when),
        Protocol::Dns => crate::proxy::dns::check_match(when),
    }
}

/// What the `when` conditions of one protocol match, for error messages.
fn match_fields_of(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Http => "method, path, headers and query match HTTP requests",
        Protocol::Redis => "command and key match Redis commands",
        Protocol::Postgres => "statement, matches, database and user match SQL statements",
        Protocol::Dns => "name and qtype match DNS queries",
        Protocol::Tcp => "when does not match TCP connections",
        Protocol::Udp => "when does not match UDP datagrams",
    }
}

/// How a route of `protocol` matches, for error messages.
fn how_to_match(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Http => "match its requests with method, path, headers and query",
        Protocol::Redis => "match its commands with command and key",
        Protocol::Postgres => "match its statements with statement, matches, database and user",
        Protocol::Dns => "match its queries with name and qtype",
        Protocol::Tcp => "a Tcp route takes no when",
        Protocol::Udp => "a Udp route takes no when",
    }
}

fn check_http_match(when: &crate::rules::Match) -> Result<(), String> {
    if let Some(method) = &when.method
        && hyper::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).is_err()
    {
        return Err(format!("method {method:?} is not an HTTP method"));
    }
    if let Some(path) = &when.path
        && !path.starts_with('/')
    {
        return Err(format!("path {path:?} must start with /"));
    }
    for name in when.headers.keys() {
        if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(format!("{name:?} is not a header name"));
        }
    }
    Ok(())
}

/// An upstream is `host:port`; whether the host resolves is decided per connection.
fn check_upstream(upstream: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "upstream {upstream:?} is not host:port (e.g. \"127.0.0.1:6379\" or \"redis:6379\")"
        )
    };
    let (host, port) = upstream.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::{FaultKind, Latency, Slicer};
    use crate::rules::Direction;

    fn route(name: &str, listen: &str, upstream: &str) -> Route {
        Route::tcp(name, listen, upstream)
    }

    fn fault(name: &str, route: &str, probability: f64, kind: FaultKind) -> Fault {
        Fault {
            name: name.into(),
            route: route.into(),
            enabled: true,
            probability,
            direction: Direction::Downstream,
            kind,
            when: None,
            max_active: None,
        }
    }

    fn fields(routes: &[Route], faults: &[Fault], policy: Policy) -> Vec<(Subject, &'static str)> {
        let r: Vec<_> = routes.iter().collect();
        let f: Vec<_> = faults.iter().collect();
        validate(&r, &f, policy)
            .into_iter()
            .map(|f| (f.subject, f.field.unwrap_or("")))
            .collect()
    }

    #[test]
    fn table() {
        let lat = FaultKind::Latency(Latency {
            ms: 1,
            jitter_ms: 0,
        });
        let ok = route("a", "127.0.0.1:1000", "localhost:6379");
        type Case = (
            &'static str,
            Vec<Route>,
            Vec<Fault>,
            Policy,
            Vec<(Subject, &'static str)>,
        );
        let cases: Vec<Case> = vec![
            (
                "valid",
                vec![ok.clone()],
                vec![fault("f", "a", 0.5, lat.clone())],
                Policy::default(),
                vec![],
            ),
            (
                "port 0 in a file",
                vec![route("a", "127.0.0.1:0", "h:1")],
                vec![],
                Policy::default(),
                vec![(Subject::Route(0), "listen")],
            ),
            (
                "port 0 allowed",
                vec![route("a", "127.0.0.1:0", "h:1")],
                vec![],
                Policy {
                    allow_ephemeral_listen: true,
                },
                vec![],
            ),
            (
                "not an address",
                vec![route("a", "localhost:99", "h:1")],
                vec![],
                Policy::default(),
                vec![(Subject::Route(0), "listen")],
            ),
            (
                "bad upstream",
                vec![route("a", "127.0.0.1:1", "nohost")],
                vec![],
                Policy::default(),
                vec![(Subject::Route(0), "upstream")],
            ),
            (
                "duplicate route",
                vec![ok.clone(), route("a", "127.0.0.1:2", "h:1")],
                vec![],
                Policy::default(),
                vec![(Subject::Route(1), "name")],
            ),
            (
                "duplicate listen",
                vec![ok.clone(), route("b", "127.0.0.1:1000", "h:1")],
                vec![],
                Policy::default(),
                vec![(Subject::Route(1), "listen")],
            ),
            (
                "missing route",
                vec![ok.clone()],
                vec![fault("f", "zzz", 1.0, lat.clone())],
                Policy::default(),
                vec![(Subject::Fault(0), "route")],
            ),
            (
                "probability",
                vec![ok.clone()],
                vec![fault("f", "a", 1.5, lat.clone())],
                Policy::default(),
                vec![(Subject::Fault(0), "probability")],
            ),
            (
                "NaN probability",
                vec![ok.clone()],
                vec![fault("f", "a", f64::NAN, lat.clone())],
                Policy::default(),
                vec![(Subject::Fault(0), "probability")],
            ),
            (
                "duplicate fault",
                vec![ok.clone()],
                vec![
                    fault("f", "a", 1.0, lat.clone()),
                    fault("f", "a", 1.0, lat.clone()),
                ],
                Policy::default(),
                vec![(Subject::Fault(1), "name")],
            ),
            (
                "kind parameter",
                vec![ok.clone()],
                vec![fault(
                    "f",
                    "a",
                    1.0,
                    FaultKind::Slicer(Slicer {
                        avg_bytes: 0,
                        variation_bytes: 0,
                        delay_us: 0,
                    }),
                )],
                Policy::default(),
                vec![(Subject::Fault(0), "avg_bytes")],
            ),
        ];
        for (what, routes, faults, policy, want) in cases {
            assert_eq!(fields(&routes, &faults, policy), want, "{what}");
        }
    }
}
