//! Faults a request asks for itself, on a route with `request_faults: true`:
//! `x-switchboard-fault: abort=503, delay=200ms`. Tests that share one Switchboard can then
//! fail their own requests and nobody else's. The header never reaches the upstream.
//!
//! Each asked fault becomes a one-request [`Fault`] named `x-switchboard-fault:<kind>`, so it
//! runs through the same request and response phases as a fault from the rules and is counted
//! under that name.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hyper::header::{HeaderMap, HeaderName};

use crate::faults::{
    Abort, Delay, DropRequest, FaultKind, MAX_MS, ResponseDelay, SlowBody, Truncate,
};
use crate::rules::{Direction, Fault};

/// The header's name.
pub const HEADER: HeaderName = HeaderName::from_static("x-switchboard-fault");

/// The longest header value read: a handful of faults fit many times over.
const MAX_LEN: usize = 1024;

/// A header that does not say what to do, worded for the client's 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("x-switchboard-fault: {0}")]
pub struct AskedError(String);

/// Removes every `x-switchboard-fault` header from `headers`, returning their values joined
/// with commas (None when there was none).
pub fn take(headers: &mut HeaderMap) -> Option<Result<String, AskedError>> {
    if !headers.contains_key(&HEADER) {
        return None;
    }
    let mut joined = String::new();
    let mut bad = None;
    for value in headers.get_all(&HEADER) {
        match value.to_str() {
            Ok(text) => {
                if !joined.is_empty() {
                    joined.push(',');
                }
                joined.push_str(text);
            }
            Err(_) => bad = Some(AskedError("the value is not visible ASCII".into())),
        }
    }
    headers.remove(&HEADER);
    Some(match bad {
        Some(e) => Err(e),
        None => Ok(joined),
    })
}

/// The faults `text` asks for, in the order given, each on `route`.
pub fn parse(text: &str, route: &str) -> Result<Vec<Arc<Fault>>, AskedError> {
    if text.len() > MAX_LEN {
        return Err(AskedError(format!(
            "{} bytes is longer than the {MAX_LEN} read",
            text.len()
        )));
    }
    let mut faults = Vec::new();
    for item in text.split(',').map(str::trim) {
        if item.is_empty() {
            continue;
        }
        let (key, value) = match item.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (item, None),
        };
        let kind = kind_of(key, value)?;
        kind.validate()
            .map_err(|e| AskedError(format!("{item}: {}", e.message)))?;
        faults.push(Arc::new(Fault {
            name: format!("{}:{key}", HEADER.as_str()),
            route: route.to_string(),
            enabled: true,
            probability: 1.0,
            direction: Direction::Downstream,
            kind,
            when: None,
            max_active: None,
        }));
    }
    if faults.is_empty() {
        return Err(AskedError(format!("no fault named; {USAGE}")));
    }
    Ok(faults)
}

/// What the header takes, for error messages.
const USAGE: &str = "it takes abort=STATUS, delay=DURATION, response-delay=DURATION, drop, slow-body=BYTES_PER_SEC or truncate=BYTES, comma-separated";

fn kind_of(key: &str, value: Option<&str>) -> Result<FaultKind, AskedError> {
    let needs =
        |what: &str| value.ok_or_else(|| AskedError(format!("{key} needs a value: {key}={what}")));
    let number = |what: &str| -> Result<u64, AskedError> {
        let v = needs(what)?;
        v.parse()
            .map_err(|_| AskedError(format!("{key}={v}: {v:?} is not a whole number")))
    };
    Ok(match key {
        "abort" => {
            let status = number("503")?;
            let status = u16::try_from(status)
                .map_err(|_| AskedError(format!("abort={status}: not an HTTP status")))?;
            let body = serde_json::json!({
                "error": format!("aborted with {status}, as the request's {} header asked", HEADER.as_str())
            });
            FaultKind::Abort(Abort {
                status,
                body: body.to_string(),
                headers: BTreeMap::from([("content-type".into(), "application/json".into())]),
            })
        }
        "delay" => FaultKind::Delay(Delay {
            ms: millis(key, needs("200ms")?)?,
            jitter_ms: 0,
        }),
        "response-delay" => FaultKind::ResponseDelay(ResponseDelay {
            ms: millis(key, needs("1s")?)?,
        }),
        "drop" if value.is_none() => FaultKind::Drop(DropRequest {}),
        "drop" => return Err(AskedError("drop takes no value".into())),
        "slow-body" => FaultKind::SlowBody(SlowBody {
            bytes_per_sec: number("1000")?,
        }),
        "truncate" => FaultKind::Truncate(Truncate {
            after_bytes: Some(number("100")?),
        }),
        other => {
            return Err(AskedError(format!(
                "{other:?} is not a fault it knows; {USAGE}"
            )));
        }
    })
}

/// `200ms`, `1s`, `1m 30s`, or a bare number of milliseconds; at most an hour.
fn millis(key: &str, text: &str) -> Result<u64, AskedError> {
    let duration = match text.parse::<u64>() {
        Ok(ms) => Duration::from_millis(ms),
        Err(_) => humantime::parse_duration(text).map_err(|e| {
            AskedError(format!(
                "{key}={text}: not a duration ({e}); write 200ms or 1s"
            ))
        })?,
    };
    let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    if ms > MAX_MS {
        return Err(AskedError(format!(
            "{key}={text} is more than the maximum of one hour"
        )));
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Result<Vec<(String, FaultKind)>, AskedError> {
        parse(text, "api").map(|faults| {
            faults
                .iter()
                .map(|f| (f.name.clone(), f.kind.clone()))
                .collect()
        })
    }

    #[test]
    fn each_kind_and_several_at_once() {
        let got = kinds("delay=200ms, response-delay=1s,slow-body=1000, drop, truncate=5")
            .expect("valid");
        let names: Vec<_> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "x-switchboard-fault:delay",
                "x-switchboard-fault:response-delay",
                "x-switchboard-fault:slow-body",
                "x-switchboard-fault:drop",
                "x-switchboard-fault:truncate"
            ]
        );
        assert_eq!(
            got[0].1,
            FaultKind::Delay(Delay {
                ms: 200,
                jitter_ms: 0
            })
        );
        assert_eq!(
            got[1].1,
            FaultKind::ResponseDelay(ResponseDelay { ms: 1000 })
        );
        assert_eq!(
            got[2].1,
            FaultKind::SlowBody(SlowBody {
                bytes_per_sec: 1000
            })
        );
        let abort = kinds("abort=503").expect("valid");
        assert!(matches!(&abort[0].1, FaultKind::Abort(a) if a.status == 503));
        assert_eq!(
            kinds("delay=250").expect("bare ms")[0].1,
            FaultKind::Delay(Delay {
                ms: 250,
                jitter_ms: 0
            })
        );
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        for (text, says) in [
            ("abort=99", "not a final HTTP status"),
            ("abort=70000", "not an HTTP status"),
            ("abort", "abort needs a value"),
            ("delay=soon", "not a duration"),
            ("delay=2h", "maximum of one hour"),
            ("slow-body=0", "at least 1"),
            ("drop=1", "takes no value"),
            ("explode", "not a fault it knows"),
            ("", "no fault named"),
            (" , ", "no fault named"),
        ] {
            let err = kinds(text).expect_err(text).to_string();
            assert!(err.contains(says), "{text:?}: {err}");
            assert!(err.starts_with("x-switchboard-fault: "), "{err}");
        }
        let long = "drop,".repeat(300);
        assert!(kinds(&long).is_err());
    }

    #[test]
    fn take_removes_every_copy() {
        let mut headers = HeaderMap::new();
        headers.append(&HEADER, "delay=1ms".parse().expect("value"));
        headers.append(&HEADER, "abort=500".parse().expect("value"));
        headers.insert("x-other", "kept".parse().expect("value"));
        let taken = take(&mut headers).expect("present").expect("ascii");
        assert_eq!(taken, "delay=1ms,abort=500");
        assert!(!headers.contains_key(&HEADER));
        assert!(headers.contains_key("x-other"));
        assert!(take(&mut headers).is_none());
    }
}
