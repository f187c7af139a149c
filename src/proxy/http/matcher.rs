//! Which requests a fault's `when` selects.

use hyper::http::request::Parts;

use crate::rules::Match;

/// Whether `when` selects the request.
pub fn matches(when: &Match, request: &Parts) -> bool {
    if let Some(method) = &when.method
        && !request.method.as_str().eq_ignore_ascii_case(method)
    {
        return false;
    }
    if let Some(pattern) = &when.path
        && !path_matches(pattern, request.uri.path())
    {
        return false;
    }
    let headers_hold = when.headers.iter().all(|(name, value)| {
        request
            .headers
            .get_all(name.as_str())
            .iter()
            .any(|v| v.as_bytes() == value.as_bytes())
    });
    if !headers_hold {
        return false;
    }
    if when.query.is_empty() {
        return true;
    }
    let query = request.uri.query().unwrap_or("");
    when.query.iter().all(|(key, value)| {
        query.split('&').any(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            k == key && v == value
        })
    })
}

/// `/a/b` exact; `/a/*` the prefix `/a` and anything below; `*` elsewhere one segment.
fn path_matches(pattern: &str, path: &str) -> bool {
    if let Some(prefix) = pattern.strip_suffix("/*") {
        let rest = match path.strip_prefix(prefix) {
            Some(rest) => rest,
            None => return false,
        };
        let prefix_segments_hold = segments_match(prefix, &path[..path.len() - rest.len()]);
        return prefix_segments_hold && (rest.is_empty() || rest.starts_with('/'));
    }
    segments_match(pattern, path)
}

fn segments_match(pattern: &str, path: &str) -> bool {
    let mut p = pattern.split('/');
    let mut s = path.split('/');
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            (Some("*"), Some(seg)) if !seg.is_empty() => continue,
            (Some(a), Some(b)) if a == b => continue,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = hyper::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(()).expect("request").into_parts().0
    }

    fn when(
        method: Option<&str>,
        path: Option<&str>,
        headers: &[(&str, &str)],
        query: &[(&str, &str)],
    ) -> Match {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        Match {
            method: method.map(str::to_string),
            path: path.map(str::to_string),
            headers: map(headers),
            query: map(query),
        }
    }

    #[test]
    fn table() {
        let cases = [
            (
                when(None, None, &[], &[]),
                parts("GET", "/anything", &[]),
                true,
            ),
            (
                when(Some("post"), None, &[], &[]),
                parts("POST", "/orders", &[]),
                true,
            ),
            (
                when(Some("POST"), None, &[], &[]),
                parts("GET", "/orders", &[]),
                false,
            ),
            (
                when(None, Some("/orders"), &[], &[]),
                parts("GET", "/orders", &[]),
                true,
            ),
            (
                when(None, Some("/orders"), &[], &[]),
                parts("GET", "/orders/1", &[]),
                false,
            ),
            (
                when(None, Some("/orders/*"), &[], &[]),
                parts("GET", "/orders/1/items", &[]),
                true,
            ),
            (
                when(None, Some("/orders/*"), &[], &[]),
                parts("GET", "/orders", &[]),
                true,
            ),
            (
                when(None, Some("/orders/*"), &[], &[]),
                parts("GET", "/ordersX", &[]),
                false,
            ),
            (
                when(None, Some("/orders/*/items"), &[], &[]),
                parts("GET", "/orders/7/items", &[]),
                true,
            ),
            (
                when(None, Some("/orders/*/items"), &[], &[]),
                parts("GET", "/orders/7/8/items", &[]),
                false,
            ),
            (
                when(None, Some("/orders/*/items"), &[], &[]),
                parts("GET", "/orders//items", &[]),
                false,
            ),
            (
                when(None, Some("/*/health"), &[], &[]),
                parts("GET", "/api/health", &[]),
                true,
            ),
            (
                when(None, None, &[("x-tenant", "test")], &[]),
                parts("GET", "/", &[("X-Tenant", "test")]),
                true,
            ),
            (
                when(None, None, &[("x-tenant", "test")], &[]),
                parts("GET", "/", &[("x-tenant", "prod")]),
                false,
            ),
            (
                when(None, None, &[("x-tenant", "test")], &[]),
                parts("GET", "/", &[]),
                false,
            ),
            (
                when(None, None, &[], &[("dryrun", "1")]),
                parts("GET", "/a?x=2&dryrun=1", &[]),
                true,
            ),
            (
                when(None, None, &[], &[("dryrun", "1")]),
                parts("GET", "/a?dryrun=0", &[]),
                false,
            ),
            (
                when(Some("POST"), Some("/orders/*"), &[("x-tenant", "t")], &[]),
                parts("POST", "/orders/9", &[("x-tenant", "t")]),
                true,
            ),
        ];
        for (i, (when, request, want)) in cases.iter().enumerate() {
            assert_eq!(
                matches(when, request),
                *want,
                "case {i}: {when:?} vs {} {}",
                request.method,
                request.uri
            );
        }
    }
}
