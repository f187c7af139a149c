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

/// `/a/b` exact; `/a/*` the prefix `/a` and anything below; `*` elsewhere one segment
/// (so `/t/*/o/*` is `/t/<one>/o` and anything below).
fn path_matches(pattern: &str, path: &str) -> bool {
    // Whatever comes before the first wildcard is literal: most patterns of a large rule set
    // fail here, without splitting anything.
    let body = pattern.strip_suffix("/*").unwrap_or(pattern);
    let literal = body.split('*').next().unwrap_or("");
    if !path.starts_with(literal) {
        return false;
    }
    match pattern.strip_suffix("/*") {
        Some(prefix) => {
            // The prefix's segments must hold for as many segments of the path; what follows
            // must be nothing or start a new segment.
            let depth = prefix.split('/').count();
            let mut cut = path.len();
            if let Some((i, _)) = path.match_indices('/').nth(depth - 1) {
                cut = i;
            }
            segments_match(prefix, &path[..cut])
        }
        None => segments_match(pattern, path),
    }
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
            ..Match::default()
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

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::path_matches;

    /// A path segment: non-empty, no slash.
    fn segment() -> impl Strategy<Value = String> {
        "[a-z0-9._~-]{1,8}"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any pattern and path: an answer, never a panic.
        #[test]
        fn never_panics(pattern in "(/[a-z*]{0,3}){0,5}(/\\*)?", path in "(/[a-z*]{0,3}){0,6}") {
            let _ = path_matches(&pattern, &path);
        }

        /// A path made from a pattern by putting one segment in each `*` (and anything below
        /// a trailing `/*`) matches it, wherever the wildcards are.
        #[test]
        fn a_path_built_from_a_pattern_matches_it(
            parts in prop::collection::vec(prop_oneof![segment(), Just("*".to_string())], 1..6),
            fills in prop::collection::vec(segment(), 6),
            below in prop::collection::vec(segment(), 0..3),
            trailing in any::<bool>(),
        ) {
            let mut pattern = format!("/{}", parts.join("/"));
            let mut path = String::new();
            for (i, part) in parts.iter().enumerate() {
                path.push('/');
                path.push_str(if part == "*" { &fills[i] } else { part });
            }
            if trailing {
                pattern.push_str("/*");
                for seg in &below {
                    path.push('/');
                    path.push_str(seg);
                }
            }
            prop_assert!(path_matches(&pattern, &path), "{pattern} should match {path}");
            // One segment more is outside an exact pattern (one that does not end in `/*`,
            // which by its syntax is the prefix form).
            if !pattern.ends_with("/*") {
                let longer = format!("{path}/x");
                prop_assert!(!path_matches(&pattern, &longer), "{pattern} should not match {longer}");
            }
        }
    }

    #[test]
    fn every_wildcard_placement() {
        let cases = [
            ("/t/*/o/*", "/t/1/o/2", true),
            ("/t/*/o/*", "/t/1/o", true),
            ("/t/*/o/*", "/t/*/o/2", true),
            ("/t/*/o/*", "/t/1/x/2", false),
            ("/t/*/o/*", "/t//o/2", false),
            ("/*/orders", "/eu/orders", true),
            ("/*/orders", "/eu/orders/1", false),
            ("/orders/*", "/orders", true),
            ("/orders/*", "/ordersx", false),
            ("/*", "/", true),
            ("/*", "/anything/below", true),
            ("/a/*/*", "/a/b/c/d", true),
            ("/a/*/*", "/a/b", true),
            ("/a/*/*", "/a", false),
        ];
        for (pattern, path, want) in cases {
            assert_eq!(path_matches(pattern, path), want, "{pattern} {path}");
        }
    }
}
