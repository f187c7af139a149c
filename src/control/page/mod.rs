//! `GET /`: the switchboard page, a screen for the people at a game-day table. Its HTML, CSS
//! and scripts are compiled into the binary, so it works offline and in a compose network
//! with nothing to build and nothing fetched from elsewhere. They are static and hold no
//! data: the page asks for the token and calls `/v1` like any client, which is why these
//! paths are served without one.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};

use super::http::Body;

/// What the page may load and where it may connect: its own files and its own endpoint, no
/// inline script or style, no frames.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The page's files by path, with their content types.
const FILES: &[(&str, &str, &str)] = &[
    ("/", "text/html; charset=utf-8", include_str!("index.html")),
    (
        "/page/style.css",
        "text/css; charset=utf-8",
        include_str!("style.css"),
    ),
    (
        "/page/app.js",
        "text/javascript; charset=utf-8",
        include_str!("app.js"),
    ),
    (
        "/page/api.js",
        "text/javascript; charset=utf-8",
        include_str!("api.js"),
    ),
    (
        "/page/stream.js",
        "text/javascript; charset=utf-8",
        include_str!("stream.js"),
    ),
    (
        "/page/routes.js",
        "text/javascript; charset=utf-8",
        include_str!("routes.js"),
    ),
    (
        "/page/faults.js",
        "text/javascript; charset=utf-8",
        include_str!("faults.js"),
    ),
    (
        "/page/form.js",
        "text/javascript; charset=utf-8",
        include_str!("form.js"),
    ),
    (
        "/page/events.js",
        "text/javascript; charset=utf-8",
        include_str!("events.js"),
    ),
    (
        "/page/dom.js",
        "text/javascript; charset=utf-8",
        include_str!("dom.js"),
    ),
    (
        "/page/drills.js",
        "text/javascript; charset=utf-8",
        include_str!("drills.js"),
    ),
    ("/page/icon.svg", "image/svg+xml", include_str!("icon.svg")),
];

/// The file at `path`, or `None` when the page has no such file.
pub fn file(path: &str) -> Option<Response<Body>> {
    let (_, content_type, text) = FILES.iter().find(|(p, _, _)| *p == path)?;
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())).boxed_unsync());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The binary is the version: a page from another build must not be mixed with this one.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_the_page_imports_is_served() {
        for (path, _, text) in FILES {
            for line in text.lines() {
                let Some(rest) = line.trim().strip_prefix("import ") else {
                    continue;
                };
                let Some(from) = rest.split('"').nth(1) else {
                    continue;
                };
                let served = format!("/page/{}", from.trim_start_matches("./"));
                assert!(
                    file(&served).is_some(),
                    "{path} imports {from}, which is not served"
                );
            }
        }
    }

    #[test]
    fn the_page_loads_its_own_files_only() {
        let (_, _, html) = FILES[0];
        for needle in ["<script>", "style=", "http://", "https://", "onclick"] {
            assert!(!html.contains(needle), "index.html holds {needle:?}");
        }
    }
}
